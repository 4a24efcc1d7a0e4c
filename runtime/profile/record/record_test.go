package record

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/molgen/molgen/runtime"
	"github.com/molgen/molgen/runtime/profile"
)

func TestRecorderCountsCallsAndHandlers(t *testing.T) {
	r := New()
	ctx := context.Background()
	end := func(c runtime.CallInfo, err error) {
		ctx := r.Start(ctx, &c)
		r.End(ctx, &c, err)
	}
	var wg sync.WaitGroup
	for range 10 { // concurrently, as nodes call
		wg.Add(1)
		go func() {
			defer wg.Done()
			// posts calls users.Get over Kafka: 3 ms, 1 ms of it in the handler on the other node.
			end(runtime.CallInfo{Service: "users", Method: "Get", Caller: "posts", Remote: true, Duration: 3 * time.Millisecond, RequestBytes: 10, ReplyBytes: 30}, nil)
			// A direct call: handler time too.
			end(runtime.CallInfo{Service: "users", Method: "Get", Caller: "gateway", Duration: time.Millisecond}, errors.New("not found"))
			// A request served here for another node.
			end(runtime.CallInfo{Service: "posts", Method: "List", Caller: "edge/1", Remote: true, Server: true, Duration: 5 * time.Millisecond}, nil)
			end(runtime.CallInfo{Service: "posts", Method: "View", Caller: "gateway", Remote: true, Oneway: true, Duration: time.Millisecond, RequestBytes: 8}, nil)
		}()
	}
	wg.Wait()
	p := r.Profile(Run{Node: "n", Instance: "i", App: "blog", PlacementFile: "p.yaml", Placement: "app: blog\n"})
	wantCalls := []profile.Call{
		{Caller: "gateway", Service: "posts", Method: "View", Oneway: true, Calls: 10, Remote: 10, RequestBytes: 80, RemoteSeconds: 0.01},
		{Caller: "gateway", Service: "users", Method: "Get", Calls: 10, Errors: 10, LocalSeconds: 0.01},
		{Caller: "posts", Service: "users", Method: "Get", Calls: 10, Remote: 10, RequestBytes: 100, ReplyBytes: 300, RemoteSeconds: 0.03},
	}
	if !reflect.DeepEqual(p.Calls, wantCalls) {
		t.Errorf("calls\n%+v\nwant\n%+v", p.Calls, wantCalls)
	}
	wantHandlers := []profile.Handler{
		{Service: "posts", Method: "List", Calls: 10, Seconds: 0.05},
		{Service: "users", Method: "Get", Calls: 10, Errors: 10, Seconds: 0.01},
	}
	if !reflect.DeepEqual(p.Handlers, wantHandlers) {
		t.Errorf("handlers\n%+v\nwant\n%+v", p.Handlers, wantHandlers)
	}
	if p.App != "blog" || p.Placement != "app: blog\n" || len(p.Windows) != 1 || p.Windows[0].Node != "n" || !p.Windows[0].End.After(p.Windows[0].Start) || p.Seconds <= 0 {
		t.Errorf("profile header %+v", p)
	}
	// Round trip through the file format.
	file := t.TempDir() + "/p.json"
	if err := p.WriteFile(file); err != nil {
		t.Fatal(err)
	}
	q, err := profile.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(q.Calls, p.Calls) || q.Windows[0].Start != p.Windows[0].Start {
		t.Errorf("read back %+v", q)
	}
}

// BenchmarkRecorder is the cost a call pays for being recorded.
func BenchmarkRecorder(b *testing.B) {
	r := New()
	ctx := context.Background()
	c := runtime.CallInfo{Service: "users", Method: "Get", Caller: "posts", Remote: true, Duration: time.Millisecond}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.End(r.Start(ctx, &c), &c, nil)
		}
	})
}

// order is an Observer that notes when it starts and ends.
type order struct {
	name string
	log  *[]string
}

type orderKey struct{}

func (o order) Start(ctx context.Context, c *runtime.CallInfo) context.Context {
	*o.log = append(*o.log, "start "+o.name)
	return context.WithValue(ctx, orderKey{}, o.name) // the next observer sees it
}

func (o order) End(ctx context.Context, c *runtime.CallInfo, err error) {
	*o.log = append(*o.log, "end "+o.name+" in "+ctx.Value(orderKey{}).(string))
}

func TestMultiObserver(t *testing.T) {
	if runtime.MultiObserver(nil, nil) != nil {
		t.Error("MultiObserver of nothing is not nil")
	}
	r := New()
	if runtime.MultiObserver(nil, r) != runtime.Observer(r) {
		t.Error("MultiObserver of one observer is not that observer")
	}
	var log []string
	m := runtime.MultiObserver(order{"a", &log}, nil, order{"b", &log}, r)
	c := &runtime.CallInfo{Service: "s", Method: "m", Caller: "x"}
	m.End(m.Start(context.Background(), c), c, nil)
	if want := []string{"start a", "start b", "end b in b", "end a in b"}; !reflect.DeepEqual(log, want) {
		t.Errorf("order %q, want %q", log, want)
	}
	if p := r.Profile(Run{}); len(p.Calls) != 1 || p.Calls[0].Calls != 1 {
		t.Errorf("the recorder behind MultiObserver saw %+v", p.Calls)
	}
}

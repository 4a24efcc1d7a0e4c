package testsvc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/runtime"
)

// recorder is an Observer that keeps every call it sees.
type recorder struct {
	mu    sync.Mutex
	calls []string
	infos []runtime.CallInfo
}

type spanKey struct{}

func (r *recorder) Start(ctx context.Context, c *runtime.CallInfo) context.Context {
	return context.WithValue(ctx, spanKey{}, c.Service+"."+c.Method)
}

func (r *recorder) End(ctx context.Context, c *runtime.CallInfo, err error) {
	if ctx.Value(spanKey{}) != c.Service+"."+c.Method {
		panic("End did not get the context Start returned")
	}
	side := "local"
	switch {
	case c.Server:
		side = "server"
	case c.Remote:
		side = "remote"
	}
	line := fmt.Sprintf("%s %s.%s caller=%s oneway=%t err=%v", side, c.Service, c.Method, c.Caller, c.Oneway, err != nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, line)
	r.infos = append(r.infos, *c)
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]string(nil), r.calls...)
	sort.Strings(out)
	return out
}

// TestObserverSeesEveryCall: an Observer installed in Options sees local
// calls, local oneway calls, remote calls and the requests a node serves,
// with the caller's service, sizes of remote messages, a duration and the
// error, and the context it returned from Start reaches End and nested
// calls.
func TestObserverSeesEveryCall(t *testing.T) {
	// Local: the test calls relay, which calls calc (caller "relay").
	rec := &recorder{}
	n, err := runtime.NewNode(runtime.Options{Logger: discard, Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	impl := &CalcImpl{}
	if err := RegisterCalc(n, impl); err != nil {
		t.Fatal(err)
	}
	if err := RegisterRelay(n, NewRelay(NewCalcClient(n))); err != nil {
		t.Fatal(err)
	}
	ctx := runtime.WithCaller(context.Background(), "test")
	if _, err := NewRelayClient(n).Sqrt(ctx, -1); !errors.Is(err, ErrNegative) {
		t.Fatalf("Relay.Sqrt(-1) = %v", err)
	}
	if err := NewCalcClient(n).Hold(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil { // waits for the oneway call
		t.Fatal(err)
	}
	want := []string{
		"local calc.Hold caller=test oneway=true err=false",
		"local calc.Sqrt caller=relay oneway=false err=true",
		"local relay.Sqrt caller=test oneway=false err=true",
	}
	if got := rec.seen(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("local calls observed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Remote: every call crosses Kafka; the server side is observed too.
	rec = &recorder{}
	n = remoteNodeWith(t, kafkatest.App("observe"), allRemote, "all", func(o *runtime.Options) { o.Observer = rec }, hostAll(&CalcImpl{}))
	if got, err := NewCalcClient(n).Concat(ctx, "a", "b", "c"); err != nil || got != "a|b|c" {
		t.Fatalf("Concat = %q, %v", got, err)
	}
	wait := time.Now().Add(5 * time.Second)
	for len(rec.seen()) < 2 && time.Now().Before(wait) {
		time.Sleep(10 * time.Millisecond)
	}
	got := rec.seen()
	if len(got) != 2 || got[0] != "remote calc.Concat caller=test oneway=false err=false" ||
		!strings.HasPrefix(got[1], "server calc.Concat caller=all/") {
		t.Fatalf("remote call observed as:\n%s", strings.Join(got, "\n"))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, info := range rec.infos {
		// Three strings of one byte each: 6 bytes; "a|b|c": 6 bytes.
		if info.RequestBytes != 6 || info.ReplyBytes != 6 || info.Duration <= 0 || info.Start.IsZero() {
			t.Errorf("%+v: want 6 request and reply bytes, a start and a duration", info)
		}
	}
}

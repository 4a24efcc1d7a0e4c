package testsvc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/short"
	v1 "github.com/molgen/molgen/internal/testsvc/evolve/v1"
	v2 "github.com/molgen/molgen/internal/testsvc/evolve/v2"
	"github.com/molgen/molgen/runtime"
)

// The placements of the two versions: version 2 adds service "audit".
// Callers sit on node "client" (which hosts codec: a node hosts something).
const (
	evolveV1Placement = `
app: APP
kafka:
  partitions: 4
nodes:
  server: [inventory]
  client: [codec]
`
	evolveV2Placement = `
app: APP
kafka:
  partitions: 4
nodes:
  server: [inventory, audit]
  client: [codec]
`
)

// TestMixedVersionsRollingUpgrade is a rolling upgrade under load, with
// every call through Kafka: two instances of version 1 of service
// "inventory" (package evolve/v1) serve one consumer group while a caller
// of version 1 and a caller of version 2 (package evolve/v2: two fields
// appended to Item, method Remove and service "audit" added) call it
// without pause; the version 1 instances are then replaced one by one by
// version 2 instances. Every call succeeds — an appended field reaches a
// version 2 reader intact and is zero where a version 1 writer did not
// send it — except Remove served by a version 1 instance, which fails
// with ErrUnknownMethod; no decoding error, no call lost or timed out.
func TestMixedVersionsRollingUpgrade(t *testing.T) {
	short.Skip(t, "waits out four rebalances under load")
	app := kafkatest.App("evolve")
	serverV1 := func(name string) *runtime.Node {
		return remoteNodeWith(t, app, evolveV1Placement, "server", func(o *runtime.Options) { o.Instance = name },
			func(n *runtime.Node) error { return v1.RegisterInventory(n, v1.New()) })
	}
	serverV2 := func(name string) *runtime.Node {
		return remoteNodeWith(t, app, evolveV2Placement, "server", func(o *runtime.Options) { o.Instance = name },
			func(n *runtime.Node) error {
				return errors.Join(v2.RegisterInventory(n, v2.New()), v2.RegisterAudit(n, v2.NewAudit()))
			})
	}
	old1, old2 := serverV1("v1-a"), serverV1("v1-b")
	callerV1 := remoteNodeWith(t, app, evolveV1Placement, "client", func(o *runtime.Options) { o.Instance = "caller-v1" },
		func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	callerV2 := remoteNodeWith(t, app, evolveV2Placement, "client", func(o *runtime.Options) { o.Instance = "caller-v2" },
		func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	inv1, inv2, audit := v1.NewInventoryClient(callerV1), v2.NewInventoryClient(callerV2), v2.NewAuditClient(callerV2)

	// The first call waits for the consumer group to settle.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	if _, err := inv1.Put(ctx, v1.Item{SKU: "warm-up"}); err != nil {
		t.Fatalf("first call: %v", err)
	}
	cancel()

	var (
		mu       sync.Mutex
		failures []string
		counts   = map[string]*atomic.Int64{}
	)
	for _, k := range []string{"v1 Put", "v2 Put", "v2 Put seen by v2", "v2 Put seen by v1", "v2 Remove", "v2 Remove unknown", "v2 Log"} {
		counts[k] = new(atomic.Int64)
	}
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	var v1Gone atomic.Int64 // when the last version 1 instance had closed (unix ns)
	afterV1 := func(start time.Time) bool { g := v1Gone.Load(); return g != 0 && start.UnixNano() > g }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	loop := func(call func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				call(i)
			}
		}()
	}
	const deadline = 30 * time.Second
	loop(func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		in := v1.Item{SKU: fmt.Sprintf("a%d", i), Count: i}
		got, err := inv1.Put(ctx, in)
		if err != nil {
			fail("v1 Put %d: %v", i, err)
			return
		}
		if got != (v1.Item{SKU: in.SKU, Count: i + 1}) {
			fail("v1 Put %d = %+v", i, got)
		}
		counts["v1 Put"].Add(1)
	})
	loop(func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		in := v2.Item{SKU: fmt.Sprintf("b%d", i), Count: i, Note: "n", Tags: []string{"x"}}
		start := time.Now()
		got, err := inv2.Put(ctx, in)
		if err != nil {
			fail("v2 Put %d: %v", i, err)
			return
		}
		counts["v2 Put"].Add(1)
		switch {
		case got.SKU == in.SKU && got.Count == i+1 && got.Note == "v2 saw n" && len(got.Tags) == 1 && got.Tags[0] == "x":
			counts["v2 Put seen by v2"].Add(1) // the appended fields went there and back
		case got.SKU == in.SKU && got.Count == i+1 && got.Note == "" && got.Tags == nil && !afterV1(start):
			counts["v2 Put seen by v1"].Add(1) // a v1 server skipped them; the reply left them zero
		default:
			fail("v2 Put %d = %+v", i, got)
		}
	})
	loop(func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		start := time.Now()
		err := inv2.Remove(ctx, fmt.Sprintf("c%d", i))
		switch {
		case err == nil:
			counts["v2 Remove"].Add(1)
		case errors.Is(err, runtime.ErrUnknownMethod) && !errors.Is(err, runtime.ErrBadRequest) && strings.Contains(err.Error(), "Remove") && !afterV1(start):
			counts["v2 Remove unknown"].Add(1)
		default:
			fail("v2 Remove %d: %v", i, err)
		}
	})

	// Replace the version 1 instances one by one while calls flow.
	time.Sleep(2 * time.Second)
	new1 := serverV2("v2-a")
	loop(func(i int) { // "audit" runs from now on: only version 2 has it
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		msg := strings.Repeat("m", i%10)
		n, err := audit.Log(ctx, msg)
		if err != nil || n != len(msg) {
			fail("v2 Log %d: %d, %v", i, n, err)
			return
		}
		counts["v2 Log"].Add(1)
	})
	time.Sleep(2 * time.Second)
	if err := old1.Close(); err != nil {
		t.Errorf("closing v1-a: %v", err)
	}
	time.Sleep(2 * time.Second)
	new2 := serverV2("v2-b")
	time.Sleep(2 * time.Second)
	if err := old2.Close(); err != nil {
		t.Errorf("closing v1-b: %v", err)
	}
	// Only version 2 serves now: Remove must succeed from here on.
	v1Gone.Store(time.Now().UnixNano())
	v1PutsBefore := counts["v1 Put"].Load()
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	_, _ = new1, new2
	if counts["v1 Put"].Load() == v1PutsBefore {
		t.Errorf("no version 1 call was served by version 2 instances alone")
	}

	for _, f := range failures {
		t.Error(f)
	}
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		t.Logf("%-20s %d", k, counts[k].Load())
	}
	for _, k := range []string{"v1 Put", "v2 Put seen by v2", "v2 Put seen by v1", "v2 Remove", "v2 Remove unknown", "v2 Log"} {
		if counts[k].Load() == 0 {
			t.Errorf("no call counted as %q: the test did not exercise it", k)
		}
	}
}

// deepPlacement places service "deep" alone on a server node.
const deepPlacement = `
app: APP
kafka:
  partitions: 2
nodes:
  server: [deep]
  client: [codec]
`

// TestEvolutionAtEveryDepth: version 2 of package evolve appends a field
// to a struct at each of three levels (Top, Mid in a slice in a map and
// behind a pointer, Leaf in a slice, a map and a pointer). Over Kafka,
// through the generated code, in both directions: a version 1 server
// reads a version 2 request, skipping the appended fields at every level,
// and its reply leaves them zero for the version 2 caller; a version 2
// server reads a version 1 request with them zero and sets them, and the
// version 1 caller skips them in the reply at every level.
func TestEvolutionAtEveryDepth(t *testing.T) {
	t.Run("new caller, old server", func(t *testing.T) {
		app := kafkatest.App("deep-new-old")
		remoteNodeWith(t, app, deepPlacement, "server", nil, func(n *runtime.Node) error { return v1.RegisterDeep(n, v1.NewDeep()) })
		caller := remoteNodeWith(t, app, deepPlacement, "client", nil, func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
		leaf := func(a string) v2.Leaf { return v2.Leaf{A: a, B: 7} }
		mid := func(s string) v2.Mid {
			p := leaf(s + "p")
			return v2.Mid{Leaves: []v2.Leaf{leaf(s + "0"), leaf(s + "1")}, ByKey: map[string]v2.Leaf{"k": leaf(s + "k")}, Ptr: &p, Note: "note"}
		}
		head := mid("h")
		in := v2.Top{ID: "t", Mids: map[string][]v2.Mid{"x": {mid("x0"), mid("x1")}}, Head: &head, Extra: []string{"e"}}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		got, err := v2.NewDeepClient(caller).Echo(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		// What version 1 knows came back; what it does not is zero.
		zl := func(a string) v2.Leaf { return v2.Leaf{A: a} }
		zm := func(s string) v2.Mid {
			p := zl(s + "p")
			return v2.Mid{Leaves: []v2.Leaf{zl(s + "0"), zl(s + "1")}, ByKey: map[string]v2.Leaf{"k": zl(s + "k")}, Ptr: &p}
		}
		zh := zm("h")
		want := v2.Top{ID: "t", Mids: map[string][]v2.Mid{"x": {zm("x0"), zm("x1")}}, Head: &zh}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("v2 caller, v1 server:\n got %+v\nwant %+v", got, want)
		}
	})
	t.Run("new caller, new server", func(t *testing.T) {
		app := kafkatest.App("deep-new-new")
		remoteNodeWith(t, app, deepPlacement, "server", nil, func(n *runtime.Node) error { return v2.RegisterDeep(n, v2.NewDeep()) })
		caller := remoteNodeWith(t, app, deepPlacement, "client", nil, func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
		p := v2.Leaf{A: "p", B: 1}
		head := v2.Mid{Leaves: []v2.Leaf{{A: "0", B: 2}}, ByKey: map[string]v2.Leaf{"k": {A: "k", B: 3}}, Ptr: &p}
		in := v2.Top{ID: "t", Mids: map[string][]v2.Mid{"x": {{Note: "n", Leaves: []v2.Leaf{{A: "y", B: 4}}}}}, Head: &head}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		got, err := v2.NewDeepClient(caller).Echo(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		// Every appended field went there and back, at every level.
		wp := v2.Leaf{A: "p", B: 2}
		wantHead := v2.Mid{Leaves: []v2.Leaf{{A: "0", B: 3}}, ByKey: map[string]v2.Leaf{"k": {A: "k", B: 4}}, Ptr: &wp, Note: "v2"}
		want := v2.Top{ID: "t", Mids: map[string][]v2.Mid{"x": {{Note: "n", Leaves: []v2.Leaf{{A: "y", B: 5}}}}}, Head: &wantHead, Extra: []string{"v2"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("v2 caller, v2 server:\n got %+v\nwant %+v", got, want)
		}
	})
	t.Run("old caller, new server", func(t *testing.T) {
		app := kafkatest.App("deep-old-new")
		remoteNodeWith(t, app, deepPlacement, "server", nil, func(n *runtime.Node) error { return v2.RegisterDeep(n, v2.NewDeep()) })
		caller := remoteNodeWith(t, app, deepPlacement, "client", nil, func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
		mid := func(s string) v1.Mid {
			p := v1.Leaf{A: s + "p"}
			return v1.Mid{Leaves: []v1.Leaf{{A: s + "0"}}, ByKey: map[string]v1.Leaf{"k": {A: s + "k"}}, Ptr: &p}
		}
		head := mid("h")
		in := v1.Top{ID: "t", Mids: map[string][]v1.Mid{"x": {mid("x0"), mid("x1")}}, Head: &head}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		got, err := v1.NewDeepClient(caller).Echo(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		// The version 2 server set B, Note and Extra at every level; the
		// version 1 caller skipped them and read the rest intact.
		if !reflect.DeepEqual(got, in) {
			t.Errorf("v1 caller, v2 server:\n got %+v\nwant %+v", got, in)
		}
	})
}

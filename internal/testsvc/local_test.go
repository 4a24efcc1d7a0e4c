package testsvc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/molgen/molgen/runtime"
)

// newMonolith returns a started zero-Options node hosting Calc.
func newMonolith(t testing.TB) (*runtime.Node, *CalcImpl) {
	t.Helper()
	n, err := runtime.NewNode(runtime.Options{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	impl := &CalcImpl{}
	if err := RegisterCalc(n, impl); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, impl
}

func TestLocalCallReachesImplementation(t *testing.T) {
	n, _ := newMonolith(t)
	c := NewCalcClient(n)
	got, err := c.Add(context.Background(), 2, 40)
	if err != nil || got != 42 {
		t.Fatalf("Add = %d, %v; want 42, nil", got, err)
	}
}

func TestLocalCallPassesArgumentsWithoutCopy(t *testing.T) {
	n, err := runtime.NewNode(runtime.Options{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterCodec(n, &aliasCheck{}); err != nil {
		t.Fatal(err)
	}
	c := NewCodecClient(n)
	in := []Kinds{{String: "x"}}
	_, _, out, _, err := c.Many(context.Background(), 0, "", in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if &out[0] != &in[0] {
		t.Fatal("a local call copied its slice argument")
	}
}

type aliasCheck struct{ echo }

func TestLocalErrorsKeepIdentityAndMessage(t *testing.T) {
	n, _ := newMonolith(t)
	c := NewCalcClient(n)
	_, err := c.Sqrt(context.Background(), -4)
	if !errors.Is(err, ErrNegative) || err.Error() != "sqrt(-4): testsvc: negative input" {
		t.Fatalf("Sqrt(-4) err = %v", err)
	}
	err = c.Fail(context.Background(), 3)
	if !errors.Is(err, ErrWrapped) || !strings.HasPrefix(err.Error(), "layer 2: layer 1: layer 0:") {
		t.Fatalf("Fail(3) err = %v", err)
	}
}

func TestLocalPanicBecomesErrorAndNodeKeepsServing(t *testing.T) {
	n, _ := newMonolith(t)
	c := NewCalcClient(n)
	err := c.Panic(context.Background(), "boom")
	var pe *runtime.PanicError
	if !errors.Is(err, runtime.ErrPanic) || !errors.As(err, &pe) || pe.Value != "boom" || pe.Method != "Panic" {
		t.Fatalf("Panic err = %#v", err)
	}
	if got, err := c.Add(context.Background(), 1, 1); err != nil || got != 2 {
		t.Fatalf("after a panic, Add = %d, %v", got, err)
	}
}

func TestLocalMethodTimeoutApplies(t *testing.T) {
	n, _ := newMonolith(t)
	c := NewCalcClient(n)
	start := time.Now()
	err := c.Sleep(context.Background(), 5*time.Second) // //molgen:timeout 50ms
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sleep err = %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("Sleep returned after %v, want about 50ms", el)
	}
	// A deadline from the caller wins over the method's timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := c.Sleep(ctx, 100*time.Millisecond); err != nil {
		t.Fatalf("Sleep(100ms) under a 200ms deadline: %v", err)
	}
}

func TestLocalOnewayRuns(t *testing.T) {
	n, impl := newMonolith(t)
	c := NewCalcClient(n)
	for range 3 {
		if err := c.Count(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Local oneway calls run on their own goroutines, as remote ones run on
	// the server; Close waits for them.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if got := impl.Counter.Load(); got != 3 {
		t.Fatalf("counter = %d after 3 local oneway calls and Close", got)
	}
}

func TestUnregisteredServiceGivesNoRoute(t *testing.T) {
	n, err := runtime.NewNode(runtime.Options{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	n.Start(context.Background())
	defer n.Close()
	_, err = NewCalcClient(n).Add(context.Background(), 1, 2)
	if !errors.Is(err, runtime.ErrNoRoute) || !strings.Contains(err.Error(), `"calc" is not registered`) {
		t.Fatalf("err = %v, want ErrNoRoute naming the service", err)
	}
}

func TestRegisterTwiceFails(t *testing.T) {
	n, _ := runtime.NewNode(runtime.Options{Logger: discard})
	if err := RegisterCalc(n, &CalcImpl{}); err != nil {
		t.Fatal(err)
	}
	if err := RegisterCalc(n, &CalcImpl{}); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("second Register: %v", err)
	}
	if err := RegisterCalc(n, nil); err == nil {
		t.Fatal("Register(nil) succeeded")
	}
}

// TestNodeLifecycleErrors: registering after Start, registering a service
// that the placement puts on another node, and starting twice all fail with
// a message that says what went wrong.
func TestNodeLifecycleErrors(t *testing.T) {
	n, _ := newMonolith(t) // started
	if err := RegisterCodec(n, echo{}); err == nil || !strings.Contains(err.Error(), `"codec" registered after the node started`) {
		t.Errorf("Register after Start: %v", err)
	}
	if err := n.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Errorf("second Start: %v", err)
	}
	n.Close()
	if err := RegisterCodec(n, echo{}); err == nil || !strings.Contains(err.Error(), "closed node") {
		t.Errorf("Register after Close: %v", err)
	}
	if err := n.Start(context.Background()); err == nil {
		t.Error("Start after Close succeeded")
	}

	pl, err := runtime.ParsePlacement("p.yaml", []byte("app: x\nnodes:\n  a: [calc]\n  b: [codec, relay]\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := runtime.NewNode(runtime.Options{Placement: pl, Node: "a", Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterCodec(a, echo{}); err == nil || !strings.Contains(err.Error(), `service "codec" is not placed on node "a" by p.yaml (it is on node b)`) {
		t.Errorf("Register of a service placed elsewhere: %v", err)
	}
	if _, err := runtime.NewNode(runtime.Options{Placement: pl, Node: "c"}); err == nil || !strings.Contains(err.Error(), `node "c" is not in placement p.yaml`) {
		t.Errorf("NewNode for a node not in the placement: %v", err)
	}
	if _, err := runtime.NewNode(runtime.Options{Placement: pl}); err == nil || !strings.Contains(err.Error(), "Options.Node is required") {
		t.Errorf("NewNode with a placement and no node: %v", err)
	}
}

package testsvc

import (
	"context"
	"testing"

	"github.com/molgen/molgen/runtime"
)

// TestAllocLocalCallAllocatesNothing guards DESIGN.md §3: a local call
// through the generated client (target hosted on the same node) passes the
// arguments straight to the implementation and adds no allocation. Calc.Add
// and its implementation allocate nothing, so any allocation is molgen's:
// a boxed interface, a copied argument, a log line or a request built on
// the local path. (Methods with a //molgen:timeout may allocate: they
// create a context when the caller's has no deadline.)
func TestAllocLocalCallAllocatesNothing(t *testing.T) {
	n, _ := newMonolith(t)
	c := NewCalcClient(n)
	ctx := context.Background()
	var total int
	allocs := testing.AllocsPerRun(1000, func() {
		v, err := c.Add(ctx, total, 1)
		if err != nil {
			t.Fatalf("Add: %v", err)
		}
		total = v
	})
	if total != 1001 {
		t.Fatalf("after 1001 calls of Add(total, 1) total = %d: the calls did not reach the implementation", total)
	}
	if allocs != 0 {
		t.Fatalf("a local call of Calc.Add through the generated client allocates %v times per call, want 0", allocs)
	}
}

// TestAllocLocalCallWithSeveralArgumentsAllocatesNothing does the same for
// a method with several arguments and results of reference types
// (Codec.Many): they are passed and returned as they are, not copied or
// encoded.
func TestAllocLocalCallWithSeveralArgumentsAllocatesNothing(t *testing.T) {
	n, err := runtime.NewNode(runtime.Options{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterCodec(n, echo{}); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	c := NewCodecClient(n)
	ctx := context.Background()
	ks := []Kinds{{String: "x"}}
	m := map[Level]Blob{1: Blob("b")}
	allocs := testing.AllocsPerRun(1000, func() {
		a, b, gotKs, gotM, err := c.Many(ctx, 7, "s", ks, m)
		if err != nil || a != 7 || b != "s" || &gotKs[0] != &ks[0] || len(gotM) != 1 {
			t.Fatalf("Many did not return its arguments: %v, %q, %v, %v, %v", a, b, gotKs, gotM, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a local call of Codec.Many through the generated client allocates %v times per call, want 0", allocs)
	}
}

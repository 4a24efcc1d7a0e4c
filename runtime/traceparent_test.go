package runtime

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// w3cNode returns a node with the default propagator, whose lone
// traceparents are written and read by hand.
func w3cNode(t *testing.T) *Node {
	t.Helper()
	n, err := NewNode(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if !n.w3c {
		t.Fatal("a node with the default propagator does not take the fast path")
	}
	return n
}

// otelPropagator is what the fast path must match: otel's own W3C
// propagators.
var otelPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

func randomSpanContext(r *rand.Rand, state bool) trace.SpanContext {
	var cfg trace.SpanContextConfig
	for i := range cfg.TraceID {
		cfg.TraceID[i] = byte(r.UintN(256))
	}
	for i := range cfg.SpanID {
		cfg.SpanID[i] = byte(r.UintN(256))
	}
	if r.UintN(8) == 0 {
		cfg.TraceID[3] = 0
	}
	cfg.TraceFlags = trace.TraceFlags(r.UintN(256)) // every bit, defined or not
	if r.UintN(2) == 0 {
		cfg.TraceFlags &= trace.FlagsSampled | trace.FlagsRandom
	}
	cfg.Remote = r.UintN(2) == 0
	if state {
		ts, err := trace.ParseTraceState(fmt.Sprintf("vendor%d=v%d,other=x", r.UintN(100), r.UintN(100)))
		if err != nil {
			panic(err)
		}
		cfg.TraceState = ts
	}
	return trace.NewSpanContext(cfg)
}

// TestInjectTraceMatchesOtel: on random span contexts, sampled or not,
// with flags otel drops, with or without tracestate and baggage, the
// headers a node with the default propagator writes are those of otel's
// propagator, byte for byte and in the same order.
func TestInjectTraceMatchesOtel(t *testing.T) {
	n := w3cNode(t)
	r := rand.New(rand.NewPCG(1, 2))
	member, err := baggage.NewMember("user", "alice")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(member)
	if err != nil {
		t.Fatal(err)
	}
	fast := 0
	for i := range 2000 {
		state, withBaggage := i%3 == 1, i%5 == 2
		ctx := trace.ContextWithSpanContext(context.Background(), randomSpanContext(r, state))
		if withBaggage {
			ctx = baggage.ContextWithBaggage(ctx, bag)
		}
		var want transport.Headers
		otelPropagator.Inject(ctx, &want)
		got := n.injectTrace(ctx)
		if !reflect.DeepEqual([]transport.Header(got), []transport.Header(want)) {
			t.Fatalf("injected %q, otel %q", got, want)
		}
		if !state && !withBaggage && trace.SpanContextFromContext(ctx).IsValid() {
			fast++
		}
	}
	if fast < 500 {
		t.Fatalf("only %d contexts took the fast path", fast)
	}

	// A made-up root: a sampled traceparent otel reads back and writes
	// the same; with baggage, the baggage goes along.
	for _, ctx := range []context.Context{context.Background(), baggage.ContextWithBaggage(context.Background(), bag)} {
		got := n.injectTrace(ctx)
		sc := trace.SpanContextFromContext(otelPropagator.Extract(context.Background(), &got))
		if !sc.IsValid() || !sc.IsSampled() {
			t.Fatalf("made-up trace context %q: otel reads %v", got, sc)
		}
		var want transport.Headers
		otelPropagator.Inject(baggage.ContextWithBaggage(trace.ContextWithSpanContext(context.Background(), sc), baggage.FromContext(ctx)), &want)
		if !reflect.DeepEqual([]transport.Header(got), []transport.Header(want)) {
			t.Fatalf("made-up trace context %q, otel writes it %q", got, want)
		}
	}
}

// TestExtractTraceMatchesOtel: on random traceparents, well formed or
// not (upper case, other versions, undefined flags, zero ids, extra
// fields, wrong lengths), alone or with tracestate and baggage, the
// context a node with the default propagator reads is otel's.
func TestExtractTraceMatchesOtel(t *testing.T) {
	n := w3cNode(t)
	r := rand.New(rand.NewPCG(3, 4))
	mutations := []func(string) string{
		func(s string) string { return s },
		func(s string) string { return s },
		func(s string) string { return s },
		strings.ToUpper,
		func(s string) string { return "01" + s[2:] },
		func(s string) string { return "ff" + s[2:] },
		func(s string) string { return s[:53] + "04" },
		func(s string) string { return s[:53] + "ff" },
		func(s string) string { return s[:53] + "0A" },
		func(s string) string { return s + "-00" },
		func(s string) string { return s[:len(s)-1] },
		func(s string) string { return s[:3] + strings.Repeat("0", 32) + s[35:] },
		func(s string) string { return s[:36] + strings.Repeat("0", 16) + s[52:] },
		func(s string) string { return s[:35] + "_" + s[36:] },
		func(s string) string { return s[:10] + "g" + s[11:] },
		func(s string) string { return "" },
	}
	fast := 0
	for i := range 4000 {
		sc := randomSpanContext(r, false)
		tid, sid := sc.TraceID(), sc.SpanID()
		tp := fmt.Sprintf("00-%s-%s-%s", hex.EncodeToString(tid[:]), hex.EncodeToString(sid[:]), hex.EncodeToString([]byte{byte(r.UintN(4))}))
		tp = mutations[i%len(mutations)](tp)
		h := transport.Headers{{Key: "traceparent", Value: tp}}
		switch i % 7 {
		case 1:
			h = append(h, transport.Header{Key: "tracestate", Value: "vendor=x"})
		case 2:
			h = append(h, transport.Header{Key: "baggage", Value: "user=alice"})
		case 3:
			h = append(transport.Headers{{Key: "tracestate", Value: "a=b,c=d"}}, h...)
		default:
			if _, ok := parseTraceparent(tp); ok {
				fast++
			}
		}
		parent := context.WithValue(context.Background(), callKey{}, i)
		hc := append(transport.Headers(nil), h...)
		want := otelPropagator.Extract(parent, &hc)
		got := n.extractTrace(parent, h)
		wsc, gsc := trace.SpanContextFromContext(want), trace.SpanContextFromContext(got)
		if !gsc.Equal(wsc) || gsc.IsRemote() != wsc.IsRemote() {
			t.Fatalf("headers %q: read %v (remote %v), otel %v (remote %v)", h, gsc, gsc.IsRemote(), wsc, wsc.IsRemote())
		}
		if (want == parent) != (got == parent) {
			t.Fatalf("headers %q: the context is the parent: %v, otel's %v", h, got == parent, want == parent)
		}
		if gb, wb := baggage.FromContext(got).String(), baggage.FromContext(want).String(); gb != wb {
			t.Fatalf("headers %q: baggage %q, otel %q", h, gb, wb)
		}
		if got.Value(callKey{}) != i {
			t.Fatalf("headers %q: the parent's values are lost", h)
		}
	}
	if fast < 300 {
		t.Fatalf("only %d traceparents took the fast path", fast)
	}
}

// TestTraceFastPathOnlyWithTheDefaultPropagator: a node with a
// propagator of its own always uses it.
func TestTraceFastPathOnlyWithTheDefaultPropagator(t *testing.T) {
	n, err := NewNode(Options{Logger: slog.New(slog.DiscardHandler), Propagator: propagation.TraceContext{}})
	if err != nil {
		t.Fatal(err)
	}
	if n.w3c {
		t.Fatal("a node with its own propagator takes the fast path")
	}
}

// TestTraceFastPathAllocations: a made-up traceparent is one allocation,
// and reading one back one context (and its span).
func TestTraceFastPathAllocations(t *testing.T) {
	n := w3cNode(t)
	ctx := context.Background()
	if a := testing.AllocsPerRun(100, func() { n.injectTrace(ctx) }); a > 1 {
		t.Errorf("injecting a made-up trace context: %v allocations", a)
	}
	h := n.injectTrace(ctx)
	if a := testing.AllocsPerRun(100, func() { n.extractTrace(ctx, h) }); a > 2 {
		t.Errorf("extracting a traceparent: %v allocations", a)
	}
}

package runtime

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestInjectTraceMakesUpATrace: a call whose context has no span still
// gets a valid, sampled W3C traceparent, a new trace for each call.
func TestInjectTraceMakesUpATrace(t *testing.T) {
	n, err := NewNode(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	a, b := n.injectTrace(context.Background()).Get("traceparent"), n.injectTrace(context.Background()).Get("traceparent")
	for _, tp := range []string{a, b} {
		parts := strings.Split(tp, "-")
		if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 || parts[3] != "01" {
			t.Errorf("traceparent %q", tp)
		}
	}
	if a[3:35] == b[3:35] {
		t.Errorf("two calls outside any trace share trace id %s", a[3:35])
	}
	// Extracted on a server, passed on by a node without a tracer.
	ctx := n.extractTrace(context.Background(), n.injectTrace(context.Background()))
	if got := n.injectTrace(ctx).Get("traceparent"); got[3:35] != n.injectTrace(ctx).Get("traceparent")[3:35] {
		t.Errorf("a server without a tracer does not pass the trace on")
	}
}

// BenchmarkInjectTrace measures the traceparent of a remote call made
// outside any trace.
func BenchmarkInjectTrace(b *testing.B) {
	n, _ := NewNode(Options{Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if len(n.injectTrace(ctx)) == 0 {
			b.Fatal("no header")
		}
	}
}

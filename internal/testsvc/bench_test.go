package testsvc

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

var sink int

// BenchmarkLocalCall compares calling Calc.Add through the generated client
// (target on the same node: a direct call) with calling the implementation
// through the interface, side by side. The difference is molgen's overhead.
//
//	go test ./internal/testsvc -run '^$' -bench LocalCall -count 10
func BenchmarkLocalCall(b *testing.B) {
	n, impl := newMonolith(b)
	ctx := context.Background()
	var direct Calc = impl
	client := NewCalcClient(n)
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			v, _ := direct.Add(ctx, i, 1)
			sink += v
		}
	})
	b.Run("client", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			v, _ := client.Add(ctx, i, 1)
			sink += v
		}
	})
}

// testLogger logs to t when -v is given, and drops logs otherwise.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return discard
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

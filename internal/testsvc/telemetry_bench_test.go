package testsvc

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/runtime"
)

// withTelemetry makes a node trace every call (all sampled, spans handed
// to a batcher that drops them) and record its metrics (read by a manual
// reader that nobody reads).
func withTelemetry(b *testing.B) func(*runtime.Options) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		tp.Shutdown(context.Background())
		mp.Shutdown(context.Background())
	})
	return func(o *runtime.Options) { o.TracerProvider, o.MeterProvider = tp, mp }
}

// BenchmarkTelemetry measures what tracing and metrics cost a call,
// local and remote (over the test broker):
//
//	go test ./internal/testsvc -run '^$' -bench Telemetry -count 5
func BenchmarkTelemetry(b *testing.B) {
	ctx := context.Background()
	b.Run("local/off", func(b *testing.B) {
		n, _ := newMonolith(b)
		benchAdd(b, ctx, NewCalcClient(n))
	})
	b.Run("local/on", func(b *testing.B) {
		o := runtime.Options{Logger: discard}
		withTelemetry(b)(&o)
		n, err := runtime.NewNode(o)
		if err != nil {
			b.Fatal(err)
		}
		if err := RegisterCalc(n, &CalcImpl{}); err != nil {
			b.Fatal(err)
		}
		if err := n.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Close() })
		benchAdd(b, ctx, NewCalcClient(n))
	})
	b.Run("remote/off", func(b *testing.B) {
		n := remoteNode(b, kafkatest.App("bench"), allRemote, "all", hostAll(&CalcImpl{}))
		benchAdd(b, ctx, NewCalcClient(n))
	})
	b.Run("remote/on", func(b *testing.B) {
		n := remoteNodeWith(b, kafkatest.App("bench"), allRemote, "all", withTelemetry(b), hostAll(&CalcImpl{}))
		benchAdd(b, ctx, NewCalcClient(n))
	})
}

func benchAdd(b *testing.B, ctx context.Context, c Calc) {
	if _, err := c.Add(ctx, 1, 2); err != nil { // warm up: topics, metadata
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, err := c.Add(ctx, i, 1)
		if err != nil {
			b.Fatal(err)
		}
		sink += v
	}
}

package testsvc

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/runtime"
)

// TestNodeMetrics: with a MeterProvider, a node records the calls it makes
// and serves over Kafka (counts, errors by kind), its own counters (served
// requests, panics) and the consumer lag of the request topics it reads.
func TestNodeMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	n := remoteNodeWith(t, kafkatest.App("metrics"), allRemote, "all", func(o *runtime.Options) { o.MeterProvider = mp }, hostAll(&CalcImpl{}))
	ctx := runtime.WithCaller(context.Background(), "test")
	c := NewCalcClient(n)
	for i := 0; i < 5; i++ {
		if _, err := c.Add(ctx, i, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Panic(ctx, "boom"); !errors.Is(err, runtime.ErrPanic) {
		t.Fatalf("Panic: %v", err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	find := func(name string) metricdata.Aggregation {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == name {
					return m.Data
				}
			}
		}
		t.Fatalf("no metric %s", name)
		return nil
	}
	has := func(set attribute.Set, kv ...attribute.KeyValue) bool {
		for _, want := range kv {
			if v, ok := set.Value(want.Key); !ok || v != want.Value {
				return false
			}
		}
		return true
	}
	histCount := func(name string, kv ...attribute.KeyValue) uint64 {
		var n uint64
		for _, p := range find(name).(metricdata.Histogram[float64]).DataPoints {
			if has(p.Attributes, kv...) {
				n += p.Count
			}
		}
		return n
	}
	remote := attribute.Bool("molgen.remote", true)
	if got := histCount("rpc.client.call.duration", attribute.String("rpc.method", "Add"), attribute.String("molgen.caller", "test"), remote); got != 5 {
		t.Errorf("client Add calls: %d, want 5", got)
	}
	if got := histCount("rpc.server.call.duration", attribute.String("rpc.method", "Add"), remote); got != 5 {
		t.Errorf("served Add calls: %d, want 5", got)
	}
	for _, side := range []string{"rpc.client.call.duration", "rpc.server.call.duration"} {
		if got := histCount(side, attribute.String("rpc.method", "Panic"), attribute.String("error.type", "panic")); got != 1 {
			t.Errorf("%s of Panic with error.type=panic: %d, want 1", side, got)
		}
	}
	sum := func(name string) int64 {
		var n int64
		for _, p := range find(name).(metricdata.Sum[int64]).DataPoints {
			n += p.Value
		}
		return n
	}
	if got := sum("molgen.requests.served"); got != 6 {
		t.Errorf("molgen.requests.served = %d, want 6", got)
	}
	if got := sum("molgen.panics"); got != 1 {
		t.Errorf("molgen.panics = %d, want 1", got)
	}
	if got := sum("molgen.calls.in_flight"); got != 0 {
		t.Errorf("molgen.calls.in_flight = %d after the calls, want 0", got)
	}
	lag := find("molgen.kafka.consumer.lag").(metricdata.Gauge[int64])
	seen := false
	for _, p := range lag.DataPoints {
		if has(p.Attributes, attribute.String("rpc.service", "calc")) {
			seen = true
			if p.Value != 0 {
				t.Errorf("lag of a partition served to its end: %d", p.Value)
			}
		}
	}
	if !seen {
		t.Errorf("no consumer lag of calc's request topic: %+v", lag.DataPoints)
	}
}

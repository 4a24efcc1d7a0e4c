package testsvc

import (
	"context"
	"strings"
	"testing"

	"github.com/molgen/molgen/internal/kafkatest"
)

// traceID returns the trace id of a traceparent header value.
func traceID(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 {
		return ""
	}
	return parts[1]
}

// TestTraceContextWithoutTracer: a node without a tracer still writes a
// W3C traceparent on every request and reply, and a request it serves
// passes its trace on: test → relay → calc (all through Kafka) is one
// trace id on all four records.
func TestTraceContextWithoutTracer(t *testing.T) {
	app := kafkatest.App("propagate")
	n := remoteNode(t, app, allRemote, "all", hostAll(&CalcImpl{}))
	if got, err := NewRelayClient(n).Sqrt(context.Background(), 49); err != nil || got != 7 {
		t.Fatalf("Sqrt = %d, %v", got, err)
	}
	var ids []string
	for _, topic := range []string{"molgen." + app + ".req.relay", "molgen." + app + ".req.calc", "molgen." + app + ".reply.all." + n.Instance()} {
		for _, m := range kafkatest.Records(t, topic) {
			tp := ""
			heartbeat := false
			for _, h := range m.Headers {
				switch h.Key {
				case "traceparent":
					tp = string(h.Value)
				case "molgen-heartbeat":
					heartbeat = true
				}
			}
			if heartbeat {
				continue
			}
			id := traceID(tp)
			if id == "" {
				t.Errorf("a record in %s has no valid traceparent (%q): %v", topic, tp, m.Headers)
			}
			ids = append(ids, id)
		}
	}
	if len(ids) != 4 {
		t.Errorf("%d records, want 2 requests and 2 replies: %v", len(ids), ids)
	}
	first := ""
	for _, id := range ids {
		if first == "" {
			first = id
		}
		if id != first {
			t.Errorf("records of one call chain are in different traces: %v", ids)
			break
		}
	}
}

package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/runtime/internal/transport"
)

// TestReadyOnlyOnceAssigned: a transport is ready once its reply topic is
// read (not before) and, for each service it serves, never before its consumer group
// gave it a generation (checked at every poll); it is not ready from the
// moment Drain begins. Its lag is known for the partitions it read.
func TestReadyOnlyOnceAssigned(t *testing.T) {
	tr := testTransport(t, kafkatest.App("ready"), nil)
	wait := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 30s (Ready: %v)", what, tr.Ready())
			}
			time.Sleep(time.Millisecond)
		}
	}
	// The first heartbeat is written a watch tick after the start.
	if err := tr.Ready(); err == nil || !strings.Contains(err.Error(), "reply topic") {
		t.Errorf("Ready before any reply was read = %v, want an error naming the reply topic", err)
	}
	wait("reply topic read", func() bool { return tr.Ready() == nil })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	handle := func(ctx context.Context, req *transport.Request) transport.Reply {
		return transport.Reply{Status: transport.StatusOK, Payload: req.Payload}
	}
	if err := tr.Serve(ctx, transport.Service{Name: "svc", Handle: handle, Slots: make(chan struct{}, 4)}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Ready(); err == nil || !strings.Contains(err.Error(), "svc") {
		t.Fatalf("Ready right after Serve = %v, want an error naming svc", err)
	}
	joined := func() bool {
		tr.serversMu.Lock()
		defer tr.serversMu.Unlock()
		return len(tr.servers) == 1 && tr.servers[0].joined.Load()
	}
	wait("ready after joining", func() bool {
		if tr.Ready() != nil {
			return false
		}
		if !joined() {
			t.Fatal("ready before the consumer group assigned the service's partitions")
		}
		return true
	})

	if _, err := tr.Call(ctx, testRequest("svc")); err != nil {
		t.Fatal(err)
	}
	if lag := tr.Lag(); len(lag) == 0 || lag[0].Service != "svc" || lag[0].Requests != 0 {
		t.Errorf("Lag after serving every request = %+v, want svc's partition at 0", lag)
	}
	if err := tr.Healthy(); err != nil {
		t.Errorf("Healthy: %v", err)
	}
	if err := tr.Drain(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Ready(); err == nil || !strings.Contains(err.Error(), "draining") {
		t.Errorf("Ready after Drain = %v, want draining", err)
	}
}

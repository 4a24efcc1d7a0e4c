package kafka

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/runtime/internal/transport"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// TestHealthyIsLivenessOnly: Healthy ignores a Kafka outage (that is
// Ready's matter) and fails only when the watch stops finishing rounds.
func TestHealthyIsLivenessOnly(t *testing.T) {
	tr := &Transport{}
	tr.watch = newWatch(tr)
	tr.watch.outage.down = true
	tr.watch.lastRound.Store(time.Now().UnixNano())
	if err := tr.Healthy(); err != nil {
		t.Errorf("Healthy during a Kafka outage = %v, want nil", err)
	}
	tr.watch.lastRound.Store(time.Now().Add(-2 * wedgedAfter).UnixNano())
	if err := tr.Healthy(); err == nil || !strings.Contains(err.Error(), "wedged") {
		t.Errorf("Healthy with a watch stuck for %v = %v, want an error saying the process is wedged", 2*wedgedAfter, err)
	}
}

// TestOneHungBrokerIsNoOutage: of three brokers, two stop answering
// metadata requests (they hang, as SIGSTOPped brokers would). The watch
// probes whichever broker the client picks, and when that one hangs it
// asks every broker at once: one answers, so Kafka answers, and the node
// stays ready.
func TestOneHungBrokerIsNoOutage(t *testing.T) {
	cl, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	set := DefaultSettings()
	set.MetadataProbe = 500 * time.Millisecond
	tr, err := New(ctx, Config{App: "hung", Node: "n", Instance: randomHex(4), Brokers: cl.ListenAddrs(), Partitions: 2,
		Logger: testLogger(t), ErrorReply: func(err error) []byte { return nil }, Settings: set})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Drain()
	// Once the watch knows the brokers, two of them hang.
	for tr.Ready() != nil || tr.watch.lastRound.Load() == 0 {
		if ctx.Err() != nil {
			t.Fatal("not ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	release := make(chan struct{})
	defer close(release)
	var hung atomic.Int32
	cl.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		cl.KeepControl()
		if cl.CurrentNode() != 0 {
			hung.Add(1)
			cl.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if err := tr.Ready(); err != nil {
			t.Fatalf("with one broker of three answering: Ready = %v, want nil (%d metadata requests hung)", err, hung.Load())
		}
	}
	if hung.Load() == 0 {
		t.Fatal("no metadata request went to a hung broker: the test tested nothing")
	}
	t.Logf("%d metadata requests hung; Kafka answered all along", hung.Load())
}

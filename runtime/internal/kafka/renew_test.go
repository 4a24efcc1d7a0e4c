package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/runtime/internal/transport"
)

// TestForgettingATopicNeverDropsLaterRecords: when the writer must forget
// a topic it has written to (its size limit is learned again; the watch
// takes it for lost and makes it again), the records it writes to that
// topic afterwards are all served. A producer that forgot the topic under
// its old producer id would number them from 0 again, and the broker
// would take each for a duplicate of the batches it already holds and
// drop it: calls that time out.
func TestForgettingATopicNeverDropsLaterRecords(t *testing.T) {
	tr := testTransport(t, kafkatest.App("renew"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	handle := func(ctx context.Context, req *transport.Request) transport.Reply {
		return transport.Reply{Status: transport.StatusOK, Payload: req.Payload}
	}
	if err := tr.Serve(ctx, transport.Service{Name: "svc", Handle: handle, Slots: make(chan struct{}, 4)}); err != nil {
		t.Fatal(err)
	}
	topic := "molgen." + tr.cfg.App + ".req.svc"
	calls := func(when string) {
		t.Helper()
		// Two partitions, one record a batch: each call's batch goes to
		// the partition the last one did not, so both see each sequence.
		for i := range 6 {
			req := testRequest("svc")
			req.Deadline = time.Now().Add(15 * time.Second)
			if _, err := tr.Call(ctx, req); err != nil {
				t.Fatalf("%s, call %d: %v", when, i, err)
			}
		}
	}
	calls("before")
	first := tr.w.producer()
	tr.topics.relearn(topic)
	calls("after the topic's limit was learned again")
	tr.watch.lost(ctx, []string{topic}, "a test says so")
	calls("after the watch took the topic for lost")
	if tr.w.producer() == first {
		t.Error("the producer was not renewed")
	}
	// Renewals for one cause make one producer.
	p := tr.w.producer()
	tr.w.renew(first, "a stale cause")
	if tr.w.producer() != p {
		t.Error("a renewal from a producer already replaced made another")
	}
}

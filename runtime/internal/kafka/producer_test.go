package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/molgen/molgen/internal/kafkatest"
)

// TestProducerSendsAtOnceAndGathersWhileBusy: a write to an idle producer
// is one produce request of its own (no linger); writes that come while
// the requests allowed in flight are busy share the next ones; every
// record arrives, once.
func TestProducerSendsAtOnceAndGathersWhileBusy(t *testing.T) {
	tr, topic, ctx := transportWithTopic(t, "natural", ".reply.x", 1, nil)
	// A producer of its own, so that no other write of the transport (a
	// heartbeat) is counted.
	set := tr.set
	set.ProduceInflight = 1
	p := newProducer(tr.tr, tr.prod.addr, tr.dialProducer, set, tr.batchLimit)
	defer p.close()
	write := func(i int) error {
		return p.write(ctx, []kafkago.Message{{Topic: topic, Value: []byte(fmt.Sprint(i))}}, false)
	}
	if err := write(-1); err != nil {
		t.Fatal(err)
	}
	before := p.requests.Load()
	if err := write(0); err != nil {
		t.Fatal(err)
	}
	if n := p.requests.Load() - before; n != 1 {
		t.Fatalf("one write to an idle producer took %d produce requests, want 1", n)
	}
	const n = 200
	before = p.requests.Load()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- write(i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if reqs := p.requests.Load() - before; reqs >= n {
		t.Errorf("%d concurrent writes with one produce request in flight took %d requests; want them to share requests", n, reqs)
	} else {
		t.Logf("%d concurrent writes: %d produce requests", n, reqs)
	}
	seen := map[string]int{}
	for _, m := range kafkatest.Records(t, topic) {
		seen[string(m.Value)]++
	}
	for i := -1; i <= n; i++ {
		if seen[fmt.Sprint(i)] != 1 {
			t.Fatalf("record %d is in the topic %d times, want once", i, seen[fmt.Sprint(i)])
		}
	}
}

// TestProducerBufferIsBounded: writes hold at most ProduceBuffer bytes; a
// write that does not fit waits for room (or for its context), and one
// larger than the whole buffer goes when the buffer is empty.
func TestProducerBufferIsBounded(t *testing.T) {
	p := &producer{buffer: 100}
	ctx := context.Background()
	if err := p.reserve(ctx, time.Time{}, 60); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := p.reserve(short, time.Time{}, 60); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a write over the buffer did not wait: %v", err)
	}
	if err := p.reserve(ctx, time.Now().Add(50*time.Millisecond), 60); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a write over the buffer did not wait until its deadline: %v", err)
	}
	got := make(chan error, 1)
	go func() { got <- p.reserve(ctx, time.Time{}, 60) }()
	select {
	case err := <-got:
		t.Fatalf("a write over the buffer went through: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	p.release(60)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	p.release(60)
	if err := p.reserve(ctx, time.Time{}, 500); err != nil || p.buffered != 500 {
		t.Fatalf("a write larger than the buffer, into an empty one: %v, %d bytes buffered", err, p.buffered)
	}
}

package kafka

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// handed records what a gather hands to the producer, in order.
type handed struct {
	mu   sync.Mutex
	recs []*write
	at   []time.Time
}

func (h *handed) produce(w *write) {
	h.mu.Lock()
	h.recs = append(h.recs, w)
	h.at = append(h.at, time.Now())
	h.mu.Unlock()
}

func (h *handed) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.recs)
}

// reaches waits up to a second for n records handed over (an outcome
// hands a group over from a goroutine), and returns the count.
func (h *handed) reaches(n int) int {
	for deadline := time.Now().Add(time.Second); h.count() < n && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	return h.count()
}

// TestGatherGroupsRecordsWrittenWhileOthersAreUnanswered: a record
// written when none is unanswered goes at once; those written while it
// is wait, and go together when its outcome comes; a lone record after
// that goes at once again.
func TestGatherGroupsRecordsWrittenWhileOthersAreUnanswered(t *testing.T) {
	h := &handed{}
	g := &gather{hold: time.Hour, produce: h.produce}
	first := &write{}
	g.submit(first)
	if h.count() != 1 {
		t.Fatalf("the first record waited: %d handed over", h.count())
	}
	for range 5 {
		g.submit(&write{})
	}
	if h.count() != 1 {
		t.Fatalf("records written while one is unanswered went at once: %d handed over", h.count())
	}
	g.done() // the first one's outcome
	if h.reaches(6) != 6 {
		t.Fatalf("the outcome released %d records, want all 5 held", h.count()-1)
	}
	for range 4 {
		g.done()
	}
	g.submit(&write{})
	if h.count() != 6 {
		t.Fatalf("a record went while one of the group had no outcome")
	}
	g.done()
	if h.reaches(7) != 7 {
		t.Fatalf("the group's last outcome did not release the record held")
	}
	g.done()
	g.submit(&write{})
	if h.reaches(8) != 8 {
		t.Fatalf("a record written when none is unanswered waited")
	}
}

// TestGatherHoldsNoLongerThanItsHold: a record whose outcome never comes
// (its partition's leader is gone) holds the others for Settings.Gather
// at most.
func TestGatherHoldsNoLongerThanItsHold(t *testing.T) {
	h := &handed{}
	const hold = 20 * time.Millisecond
	g := &gather{hold: hold, produce: h.produce}
	g.submit(&write{}) // never answered
	start := time.Now()
	g.submit(&write{})
	g.submit(&write{})
	deadline := time.Now().Add(5 * time.Second)
	for h.count() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if h.count() != 3 {
		t.Fatalf("held records never went: %d handed over", h.count())
	}
	if took := h.at[1].Sub(start); took < hold/2 || took > hold+time.Second {
		t.Errorf("held records went after %v, want about %v", took, hold)
	}
	// The next group is timed afresh.
	g.submit(&write{})
	start = time.Now()
	for h.count() < 4 && time.Since(start) < 5*time.Second {
		time.Sleep(time.Millisecond)
	}
	if h.count() != 4 {
		t.Fatalf("the second group never went")
	}
}

// TestGatherFlushHandsEverythingOver: flush (the writer's flush and
// close) hands the held records over at once, so that nothing written is
// left out of a drain; with no hold every record goes at once.
func TestGatherFlushHandsEverythingOver(t *testing.T) {
	h := &handed{}
	g := &gather{hold: time.Hour, produce: h.produce}
	for range 3 {
		g.submit(&write{})
	}
	g.flush()
	if h.count() != 3 {
		t.Fatalf("flush left %d records held", 3-h.count())
	}
	g.flush() // nothing held: nothing happens
	if h.count() != 3 {
		t.Fatalf("an empty flush handed records over")
	}

	h = &handed{}
	g = &gather{produce: h.produce}
	for range 3 {
		g.submit(&write{})
	}
	if h.count() != 3 {
		t.Fatalf("with no hold, %d of 3 records went at once", h.count())
	}
}

// TestGatherUnderConcurrentWrites: many writers and outcomes at once
// (run with -race): every record is handed over exactly once.
func TestGatherUnderConcurrentWrites(t *testing.T) {
	var mu sync.Mutex
	seen := map[*write]int{}
	var g *gather
	outcomes := make(chan struct{}, 10000)
	g = &gather{hold: 200 * time.Microsecond, produce: func(w *write) {
		mu.Lock()
		seen[w]++
		mu.Unlock()
		outcomes <- struct{}{}
	}}
	stop := make(chan struct{})
	var answered sync.WaitGroup
	answered.Add(1)
	go func() { // the producer's outcomes
		defer answered.Done()
		for {
			select {
			case <-outcomes:
				g.done()
			case <-stop:
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				g.submit(&write{})
			}
		}()
	}
	wg.Wait()
	g.flush()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == 16*500 {
			break
		}
	}
	close(stop)
	answered.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 16*500 {
		t.Fatalf("%d records handed over, want %d", len(seen), 16*500)
	}
	for _, n := range seen {
		if n != 1 {
			t.Fatalf("a record was handed over %d times", n)
		}
	}
}

// TestHeldWritesGoOutOnFlush: with a hold far longer than the test, the
// writer's flush (what Drain does before closing the producer) hands the
// held records to the producer and waits for them: every write that was
// started is acknowledged.
func TestHeldWritesGoOutOnFlush(t *testing.T) {
	tr := testTransport(t, kafkatest.App("gather"), func(s *Settings) { s.Gather = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := tr.calls.topic
	// One record unanswered holds the others.
	const n = 20
	var ws []*write
	for i := range n {
		w := newWrite()
		w.rec = kgo.Record{Topic: topic, Value: []byte{byte(i)}}
		if err := tr.w.start(ctx, time.Time{}, w); err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	tr.w.gather.mu.Lock()
	held := len(tr.w.gather.held)
	tr.w.gather.mu.Unlock()
	if held == 0 {
		t.Fatalf("no record was held: the test proves nothing")
	}
	if err := tr.w.flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, w := range ws {
		select {
		case err := <-w.done:
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		default:
			t.Errorf("write %d has no outcome after the flush (%d were held)", i, held)
		}
		w.unref()
	}
}

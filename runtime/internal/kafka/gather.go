package kafka

import (
	"sync"
	"time"
)

// gather hands records to the producer in groups, so that concurrent
// writes share produce requests.
//
// franz-go's idempotent producer keeps up to five produce requests in
// flight per broker, and no option lowers that, so records written one
// by one by concurrent calls leave in requests of two or three: each a
// request for the broker to handle, and on a small machine the broker's
// time per request is what bounds the calls per second
// (docs/PERFORMANCE.md, internal/bench/prodprobe). So while records the
// writer handed over have no outcome yet, new ones wait here, and go to
// the producer together when the last outcome comes, or after
// Settings.Gather at the latest: a record to a partition whose leader is
// gone holds no other for longer than that. A record written when none is
// unanswered goes at once: a lone call pays nothing.
type gather struct {
	hold    time.Duration // Settings.Gather; 0: every record goes at once
	produce func(*write)  // hands one record to the producer

	mu      sync.Mutex
	pending int      // records handed over without an outcome
	held    []*write // waiting for pending to reach 0
	timer   *time.Timer
}

// submit hands w over, now or with the next group.
func (g *gather) submit(w *write) {
	g.mu.Lock()
	if g.hold <= 0 || g.pending == 0 && len(g.held) == 0 {
		g.pending++
		g.mu.Unlock()
		g.produce(w)
		return
	}
	if len(g.held) == 0 {
		if g.timer == nil {
			g.timer = time.AfterFunc(g.hold, g.flush)
		} else {
			g.timer.Reset(g.hold)
		}
	}
	g.held = append(g.held, w)
	g.mu.Unlock()
}

// done is called with each outcome of a record submit handed over: the
// last one releases the group held meanwhile. It runs in franz-go's
// promise worker, which must not produce itself (a record that fails at
// once is delivered through that same worker, which could then wait on
// itself): the group is handed over from a goroutine of its own.
func (g *gather) done() {
	g.mu.Lock()
	g.pending--
	if g.pending > 0 || len(g.held) == 0 {
		g.mu.Unlock()
		return
	}
	group := g.take() // unlocks
	go g.hand(group)
}

// flush hands every held record over now (the timer, and a writer that
// flushes or closes: nothing waits here while the producer flushes).
func (g *gather) flush() {
	g.mu.Lock()
	if len(g.held) == 0 {
		g.mu.Unlock()
		return
	}
	g.hand(g.take())
}

// take takes the held records as handed over; g.mu is held, and released.
func (g *gather) take() []*write {
	group := g.held
	g.held = nil
	g.pending += len(group)
	if g.timer != nil {
		g.timer.Stop()
	}
	g.mu.Unlock()
	return group
}

// hand gives group to the producer.
func (g *gather) hand(group []*write) {
	for _, w := range group {
		g.produce(w)
	}
}

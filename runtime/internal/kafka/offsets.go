package kafka

import "sync"

// partition tracks the requests of one partition fetched in one generation
// of the group, so that an offset is committed only when every request
// before it is done (requests of a partition finish out of order): a
// crash then loses none (at-least-once). Each generation starts a fresh
// partition at the group's committed offset; offsets with gaps (compacted
// records, transaction markers) need nothing special.
type partition struct {
	id    int
	start int64 // where the generation starts reading (may be kafka-go's FirstOffset)

	mu         sync.Mutex
	inflight   map[int64]bool // fetched, not done
	next       int64          // one past the last offset fetched
	anyFetched bool           // something was fetched
	committed  int64          // the last offset committed (the next to read), -1 for none
}

// fetched records a request taken at offset.
func (p *partition) fetched(offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight[offset] = true
	p.next = offset + 1
	p.anyFetched = true
}

// done records that the request at offset is finished.
func (p *partition) done(offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inflight, offset)
}

// committable returns the offset below which every fetched request is
// done, and whether it is past what was committed.
func (p *partition) committable() (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.anyFetched {
		return 0, false
	}
	next := p.next
	for o := range p.inflight {
		next = min(next, o)
	}
	return next, next > p.committed
}

// committedTo records a successful commit of next.
func (p *partition) committedTo(next int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.committed = max(p.committed, next)
}

// running returns how many fetched requests are not done.
func (p *partition) running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inflight)
}

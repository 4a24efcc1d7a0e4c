package kafka

import "sync"

// partition tracks the requests a member took from one partition while it
// is assigned, so that an offset is committed only when every request
// before it is done (requests of a partition finish out of order): a crash
// then loses none (at-least-once). Each assignment starts a fresh
// partition; offsets with gaps (compacted records, transaction markers)
// need nothing special.
type partition struct {
	id       int32
	revoked  chan struct{}  // closed when the member gives the partition up
	requests sync.WaitGroup // the requests taken and not done

	mu         sync.Mutex
	inflight   map[int64]bool // taken, not done
	next       int64          // one past the last offset taken
	anyFetched bool           // something was taken
	committed  int64          // the last offset marked (the next to read), -1 for none
}

func newPartition(id int32) *partition {
	return &partition{id: id, revoked: make(chan struct{}), inflight: map[int64]bool{}, committed: -1}
}

// fetched records a request taken at offset.
func (p *partition) fetched(offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight[offset] = true
	p.next = offset + 1
	p.anyFetched = true
}

// skipped records that the records before next were skipped (a batch
// that could not be read): they are done.
func (p *partition) skipped(next int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if next > p.next {
		p.next = next
		p.anyFetched = true
	}
}

// done records that the request at offset is finished.
func (p *partition) done(offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inflight, offset)
}

// committable returns the offset below which every request taken is done,
// and whether it is past what was marked.
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

// committedTo records that next was marked for commit.
func (p *partition) committedTo(next int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.committed = max(p.committed, next)
}

// running returns how many requests taken are not done.
func (p *partition) running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inflight)
}

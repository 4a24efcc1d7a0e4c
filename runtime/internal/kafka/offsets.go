package kafka

import (
	"sort"
	"sync"
)

// offsetTracker knows, per partition, which fetched requests are still in
// flight, so that an offset is committed only when every request before it
// is done (requests of a partition finish out of order).
//
// After a rebalance kafka-go fetches a partition again from its committed
// offset: a fetch that goes back, or one that skips ahead across a
// rebalance (another member committed further meanwhile), starts a new
// session of the partition, and requests of older sessions (whose messages
// are fetched again, here or elsewhere) no longer hold its commits back. A
// fetch that skips ahead with no rebalance (offsets with gaps, e.g. a
// compacted topic or transaction markers) stays in its session. Before
// committing, the server reads the group's offsets and never moves one
// backwards (another member may own the partition now).
type offsetTracker struct {
	mu    sync.Mutex
	parts map[int]*partitionOffsets
}

type partitionOffsets struct {
	session   int
	inflight  map[int64]int // offset -> session
	next      int64         // one past the last offset fetched
	committed int64         // the last offset committed (the next to read)
	changes   int           // starts and ends seen
	clean     int           // changes covered by the last commit
}

type partitionCommit struct {
	partition int
	next      int64
	changes   int // the partition's changes when next was computed
}

// start records a request fetched at offset. rebalanced reports whether
// the group rebalanced since it was last asked; it is asked only when the
// fetch does not follow the previous one.
func (t *offsetTracker) start(partition int, offset int64, rebalanced func() bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[partition]
	if p == nil {
		p = &partitionOffsets{inflight: map[int64]int{}, committed: -1, next: offset}
		t.parts[partition] = p
	}
	if offset != p.next {
		// Always ask (the answer covers the time since the last question),
		// but a fetch that goes back is a new session whatever it says.
		if r := rebalanced(); r || offset < p.next {
			p.session++
			p.committed = -1
		}
	}
	p.inflight[offset] = p.session
	p.next = offset + 1
	p.changes++
}

func (t *offsetTracker) done(partition int, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[partition]
	delete(p.inflight, offset)
	p.changes++
}

// committable returns, for each partition with news, the offset below which
// every request of its current session is done.
func (t *offsetTracker) committable() []partitionCommit {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []partitionCommit
	for id, p := range t.parts {
		if p.changes == p.clean {
			continue
		}
		next := p.next
		for o, session := range p.inflight {
			if session == p.session {
				next = min(next, o)
			}
		}
		if next > p.committed {
			out = append(out, partitionCommit{id, next, p.changes})
		} else if !t.holdsBack(p) {
			p.clean = p.changes // nothing more to commit until something changes
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].partition < out[j].partition })
	return out
}

// holdsBack reports whether requests of p's current session are running.
func (t *offsetTracker) holdsBack(p *partitionOffsets) bool {
	for _, session := range p.inflight {
		if session == p.session {
			return true
		}
	}
	return false
}

// committed records a successful commit made from c.
func (t *offsetTracker) committed(c partitionCommit) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[c.partition]
	if p == nil {
		return
	}
	p.committed = max(p.committed, c.next)
	// Changes since committable ran (a request started or ended while the
	// commit was in flight) keep the partition due for the next commit.
	if p.changes == c.changes && !t.holdsBack(p) {
		p.clean = c.changes
	}
}

package kafka

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// Duplicate suppression: an instance remembers the calls it ran, by
// service and call id, until their deadline, and runs none of them
// twice. A copy of a request (a //molgen:retry resend, which goes to the
// partition of the first copy; a request written again by anyone) that
// reaches the instance while the first runs is dropped (the first one
// answers); one that comes after is answered with the first one's reply,
// kept while the replies kept stay under Settings.DedupBytes, or else
// with an error matching ErrMayHaveRun. A copy must match the first in
// method, reply topic and payload: a request that reuses a call id for
// something else is run as its own call (it gains nothing from the id).
//
// What it does not cover: a request redelivered to another instance
// after its partition moved (the new owner never saw the call), or one
// that arrives after its first copy's deadline (not run anyway: it has
// expired). At most Settings.DedupCalls calls are remembered; beyond
// that the oldest are forgotten first.

// dedup is the table of the calls an instance ran.
type dedup struct {
	seed     maphash.Seed
	maxCalls int
	maxBytes int64

	mu    sync.Mutex
	calls map[dedupKey]*ran
	order []*ran // in the order they came, for forgetting
	head  int    // order[head:] are remembered
	bytes int64  // of the replies kept
}

type dedupKey struct{ service, id string }

// ran is one call an instance ran (or runs).
type ran struct {
	key      dedupKey
	sum      uint64
	deadline time.Time
	done     bool
	reply    transport.Reply // when kept
	kept     bool
	size     int64
	gone     bool // forgotten
}

// verdict is what to do with a request.
type verdict int

const (
	runIt       verdict = iota // a new call: run it
	dupRunning                 // its first copy runs: drop this one
	dupAnswered                // it ran: answer with the first one's reply
	dupNoReply                 // it ran, its reply is no longer kept
)

func newDedup(calls int, bytes int64) *dedup {
	return &dedup{seed: maphash.MakeSeed(), maxCalls: calls, maxBytes: bytes, calls: map[dedupKey]*ran{}}
}

// fingerprint sums what a copy of a request must share with the first.
func (d *dedup) fingerprint(method, replyTo string, payload []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(d.seed)
	h.WriteString(method)
	h.WriteByte(0)
	h.WriteString(replyTo)
	h.WriteByte(0)
	h.Write(payload)
	return h.Sum64()
}

// begin looks a request up: a new call is remembered (as running) and
// returned with runIt; a copy of one is returned with what to do.
func (d *dedup) begin(service, id string, sum uint64, deadline time.Time, now time.Time) (*ran, verdict) {
	key := dedupKey{service, id}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forgetLocked(now)
	if r, ok := d.calls[key]; ok && r.sum == sum {
		switch {
		case !r.done:
			return r, dupRunning
		case r.kept:
			return r, dupAnswered
		default:
			return r, dupNoReply
		}
	} else if ok {
		return nil, runIt // the id names another call: it is not remembered
	}
	r := &ran{key: key, sum: sum, deadline: deadline}
	d.calls[key] = r
	d.order = append(d.order, r)
	return r, runIt
}

// finish records that r ran, with reply (a oneway call's is empty): the
// reply is kept for copies that come later, while the replies kept stay
// within the budget.
func (d *dedup) finish(r *ran, reply transport.Reply) {
	if r == nil {
		return
	}
	size := int64(len(reply.Payload) + len(reply.Schema) + 64)
	d.mu.Lock()
	defer d.mu.Unlock()
	r.done = true
	if r.gone || d.bytes+size > d.maxBytes {
		return
	}
	r.reply, r.kept, r.size = reply, true, size
	d.bytes += size
}

// forgetLocked forgets calls whose deadline has passed (a copy that comes
// later has expired too) from the oldest, and the oldest beyond
// maxCalls. A call with a far deadline holds those behind it until then,
// or until maxCalls pushes it out.
func (d *dedup) forgetLocked(now time.Time) {
	for d.head < len(d.order) {
		r := d.order[d.head]
		if len(d.order)-d.head <= d.maxCalls && now.Before(r.deadline) {
			break
		}
		d.order[d.head] = nil
		d.head++
		r.gone = true
		if d.calls[r.key] == r {
			delete(d.calls, r.key)
		}
		if r.kept {
			d.bytes -= r.size
			r.reply, r.kept = transport.Reply{}, false
		}
	}
	// Reuse the slice once most of it is forgotten.
	if d.head > 1024 && d.head*2 > len(d.order) {
		n := copy(d.order, d.order[d.head:])
		clear(d.order[n:])
		d.order, d.head = d.order[:n], 0
	}
}

// remembered returns how many calls the table holds and the bytes of
// the replies it keeps.
func (d *dedup) remembered() (int, int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.calls), d.bytes
}

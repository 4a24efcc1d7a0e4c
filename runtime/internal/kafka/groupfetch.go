package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// groupReader reads the partitions of a request topic assigned to this
// member in one generation, for their consumers (generation.consume): one
// fetch request per leader broker asks for all of its partitions (but
// those whose consumer has queueLimit records waiting), and each
// partition's records wait in its queue.
// Reading each partition on its own cost one fetch per partition, about
// one per call at 256 calls in flight on 8 partitions, and as much work
// again for the broker.
//
// A partition's reading follows partReader's rules: before the first
// offset it skips to it; past the end it waits for records; a moved
// leader or a topic not (or no longer) there makes it look the leader up
// again; errors reach its consumer once they repeat (maxAttempts in a
// row).
type groupReader struct {
	t       *Transport
	topic   string
	log     *slog.Logger
	spec    fetchSpec
	backMin time.Duration
	backMax time.Duration
	ctx     context.Context // ends with close
	stop    context.CancelFunc
	loops   sync.WaitGroup

	parts map[int32]*groupPart // made by newGroupReader, never changed after

	mu      sync.Mutex             // guards the groupParts, leaders, users
	leaders map[string]*leaderLoop // by address
	lookup  chan struct{}          // cap 1: a partition has no leader
	users   int                    // consumers that have not left
}

// groupPart is the state of one partition.
type groupPart struct {
	id     int32
	offset int64 // the next to fetch, after what is queued
	queue  []kafkago.Message
	next   int           // queue[next] is returned next
	ready  chan struct{} // cap 1: records or an error came
	err    error         // returned once by fetchMessage
	fails  int           // errors in a row
	leader string        // address; "" until looked up
	pause  time.Time     // past the end: not fetched before then
}

// queueLimit is how many records a partition's queue may hold before
// its partition is left out of fetches until its consumer takes some.
const queueLimit = 256

// leaderLoop fetches the partitions led by one broker.
type leaderLoop struct {
	addr string
	want chan struct{} // cap 1: one of its partitions emptied its queue
}

// newGroupReader starts reading partitions, each from its offset (or
// kafkago.FirstOffset, LastOffset).
func (t *Transport) newGroupReader(topic string, starts map[int]int64, log *slog.Logger) *groupReader {
	g := &groupReader{
		t: t, topic: topic, log: log, spec: fetchSpecOf(t.set),
		backMin: t.set.ReadBackoffMin, backMax: t.set.ReadBackoffMax,
		parts:   map[int32]*groupPart{},
		leaders: map[string]*leaderLoop{},
		lookup:  make(chan struct{}, 1),
		users:   len(starts),
	}
	g.ctx, g.stop = context.WithCancel(context.Background())
	for id, off := range starts {
		g.parts[int32(id)] = &groupPart{id: int32(id), offset: off, ready: make(chan struct{}, 1)}
	}
	g.loops.Add(1)
	go g.lookupLoop()
	return g
}

// leave says a consumer fetches no more; the last one closes the reader.
func (g *groupReader) leave() {
	g.mu.Lock()
	g.users--
	last := g.users == 0
	g.mu.Unlock()
	if last {
		g.close()
	}
}

// close stops fetching and waits for the fetch loops to end (a fetch in
// flight is broken off).
func (g *groupReader) close() {
	g.stop()
	g.loops.Wait()
}

// fetchMessage returns the next record of a partition, waiting for one
// until ctx ends.
func (g *groupReader) fetchMessage(ctx context.Context, id int) (kafkago.Message, error) {
	p := g.parts[int32(id)]
	if p == nil {
		return kafkago.Message{}, fmt.Errorf("molgen: partition %d of %s is not read here", id, g.topic)
	}
	for {
		g.mu.Lock()
		if p.next < len(p.queue) {
			m := p.queue[p.next]
			p.queue[p.next] = kafkago.Message{}
			p.next++
			if p.next == len(p.queue) {
				p.queue, p.next = nil, 0
				g.wantLocked(p)
			}
			g.mu.Unlock()
			return m, nil
		}
		if err := p.err; err != nil {
			p.err = nil
			g.wantLocked(p)
			g.mu.Unlock()
			return kafkago.Message{}, err
		}
		g.mu.Unlock()
		select {
		case <-p.ready:
		case <-ctx.Done():
			return kafkago.Message{}, ctx.Err()
		case <-g.ctx.Done():
			return kafkago.Message{}, io.EOF
		}
	}
}

// wantLocked wakes the loop that fetches p (under g.mu).
func (g *groupReader) wantLocked(p *groupPart) {
	if l := g.leaders[p.leader]; l != nil {
		select {
		case l.want <- struct{}{}:
		default:
		}
	}
}

// signal wakes p's consumer.
func (p *groupPart) signal() {
	select {
	case p.ready <- struct{}{}:
	default:
	}
}

// failLocked counts an error of p; once they repeat, its consumer gets it
// (under g.mu).
func (g *groupReader) failLocked(p *groupPart, err error) {
	p.fails++
	if p.fails >= maxAttempts {
		p.fails = 0
		p.err = err
		p.signal()
	}
}

// lookupLoop finds the leaders of the partitions that have none and
// starts a fetch loop per leader.
func (g *groupReader) lookupLoop() {
	defer g.loops.Done()
	attempt := 0
	for {
		g.mu.Lock()
		missing := false
		for _, p := range g.parts {
			missing = missing || p.leader == ""
		}
		g.mu.Unlock()
		if missing {
			if err := g.lookupLeaders(); err != nil {
				attempt++
				g.log.Debug("looking up leaders", "topic", g.topic, "err", err)
				g.mu.Lock()
				for _, p := range g.parts {
					if p.leader == "" {
						g.failLocked(p, err)
					}
				}
				g.mu.Unlock()
				sleep(g.ctx, backoffOf(attempt, g.backMin, g.backMax))
				if g.ctx.Err() != nil {
					return
				}
				continue
			}
			attempt = 0
		}
		select {
		case <-g.lookup:
		case <-g.ctx.Done():
			return
		}
	}
}

// lookupLeaders gives every partition without a leader its leader, and
// starts the fetch loops of new leaders.
func (g *groupReader) lookupLeaders() error {
	var errs []error
	g.mu.Lock()
	var ids []int32
	for id, p := range g.parts {
		if p.leader == "" {
			ids = append(ids, id)
		}
	}
	g.mu.Unlock()
	for _, id := range ids {
		addr, err := g.t.leaderOf(g.ctx, g.topic, int(id))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		g.mu.Lock()
		g.parts[id].leader = addr
		if g.leaders[addr] == nil {
			l := &leaderLoop{addr: addr, want: make(chan struct{}, 1)}
			g.leaders[addr] = l
			g.loops.Add(1)
			go g.fetchLoop(l)
		}
		g.wantLocked(g.parts[id])
		g.mu.Unlock()
	}
	return errors.Join(errs...)
}

// fetchLoop fetches the partitions l leads until the reader closes or it
// leads none.
func (g *groupReader) fetchLoop(l *leaderLoop) {
	defer g.loops.Done()
	var c *brokerConn
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	var req []byte
	var parts []fetchPart
	fails := 0
	for g.ctx.Err() == nil {
		// The partitions to fetch: l's, unless their consumer has enough
		// queued already (it waits for slots of the service). A fetch
		// asks for all the others, so that it returns as soon as any of
		// them has records.
		parts = parts[:0]
		var resolve []fetchPart // symbolic offsets, resolved before fetching
		led := false
		now := time.Now()
		var wake time.Duration // the earliest end of a pause
		g.mu.Lock()
		for _, p := range g.parts {
			if p.leader != l.addr {
				continue
			}
			led = true
			switch {
			case len(p.queue)-p.next >= queueLimit || p.err != nil:
			case now.Before(p.pause):
				if d := p.pause.Sub(now); wake == 0 || d < wake {
					wake = d
				}
			case p.offset < 0:
				resolve = append(resolve, fetchPart{partition: p.id, offset: p.offset})
			default:
				parts = append(parts, fetchPart{partition: p.id, offset: p.offset})
			}
		}
		if !led {
			delete(g.leaders, l.addr)
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		for _, fp := range resolve {
			g.reposition(g.parts[fp.partition], fp.offset)
		}
		if len(resolve) > 0 {
			continue
		}
		if len(parts) == 0 {
			var timer <-chan time.Time
			if wake > 0 {
				timer = time.After(wake)
			}
			select {
			case <-l.want:
			case <-timer:
			case <-g.ctx.Done():
			}
			continue
		}

		var err error
		if c == nil {
			c, err = g.t.dialBroker(g.ctx, l.addr)
		}
		if err == nil {
			stop := context.AfterFunc(g.ctx, c.breakOff)
			err = c.fetch(&req, g.spec, g.topic, parts)
			stop()
		}
		if err != nil {
			if c != nil {
				c.close()
				c = nil
			}
			if g.ctx.Err() != nil {
				return
			}
			fails++
			g.log.Debug("fetching requests", "topic", g.topic, "broker", l.addr, "err", err)
			g.mu.Lock()
			for _, fp := range parts {
				p := g.parts[fp.partition]
				g.failLocked(p, err)
				if fails >= maxAttempts {
					// The broker may be gone for good: look the leaders
					// up again.
					p.leader = ""
				}
			}
			g.mu.Unlock()
			if fails >= maxAttempts {
				fails = 0
				g.relookup()
			}
			sleep(g.ctx, backoffOf(fails+1, g.backMin, g.backMax))
			continue
		}
		fails = 0
		for i := range parts {
			if g.take(&parts[i]) {
				g.reposition(g.parts[parts[i].partition], parts[i].offset)
			}
		}
	}
}

// take hands what a fetch brought of one partition to its consumer. It
// reports whether the offset fetched was out of the partition's range.
func (g *groupReader) take(fp *fetchPart) (outOfRange bool) {
	var msgs []kafkago.Message
	var err error
	if fp.errorCode == 0 {
		msgs, err = decodeRecords(nil, fp.records, g.topic, int(fp.partition), fp.offset, fp.highWater)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.parts[fp.partition]
	if p.offset != fp.offset {
		return false
	}
	switch code := kafkago.Error(fp.errorCode); {
	case fp.errorCode == 0 && err != nil:
		g.failLocked(p, fmt.Errorf("reading %s/%d at offset %d: %w", g.topic, p.id, fp.offset, err))
	case fp.errorCode == 0:
		p.fails = 0
		if len(msgs) > 0 {
			if p.next < len(p.queue) {
				msgs = append(append(make([]kafkago.Message, 0, len(p.queue)-p.next+len(msgs)), p.queue[p.next:]...), msgs...)
			}
			p.queue, p.next = msgs, 0
			p.offset = msgs[len(msgs)-1].Offset + 1
			p.signal()
		}
	case code == kafkago.RequestTimedOut:
	case code == kafkago.OffsetOutOfRange:
		return true
	default:
		// A moved leader, a topic gone or not yet there, ...
		p.leader = ""
		g.failLocked(p, fmt.Errorf("fetching %s/%d at offset %d: %w", g.topic, p.id, fp.offset, code))
		g.relookupLocked()
	}
	return false
}

// reposition moves p from an offset it cannot fetch at: a symbolic one
// (kafkago.FirstOffset, LastOffset) or one outside the partition (see
// placeOffset). Past the end, p is not fetched for a while.
func (g *groupReader) reposition(p *groupPart, offset int64) {
	next, past, err := g.t.placeOffset(g.ctx, g.log, g.topic, int(p.id), offset)
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case p.offset != offset:
	case err != nil:
		g.failLocked(p, err)
		p.pause = time.Now().Add(g.backMin)
	case past:
		p.pause = time.Now().Add(g.backMax)
	default:
		p.offset = next
	}
}

func (g *groupReader) relookup() {
	g.mu.Lock()
	g.relookupLocked()
	g.mu.Unlock()
}

func (g *groupReader) relookupLocked() {
	select {
	case g.lookup <- struct{}{}:
	default:
	}
}

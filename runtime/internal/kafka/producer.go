package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// producer writes records with Kafka's Produce API, built for
// request/reply rather than pipelines (kafka-go's Writer waits
// BatchTimeout before each batch and keeps one produce request in flight
// per partition). It learns partition leaders through kafka-go's
// Transport, and writes produce requests itself (produceconn.go):
//
//   - natural batching: a record goes out at once when its broker's lane
//     has a free slot; while Settings.ProduceInflight produce requests are
//     in flight to that broker, the records that come meanwhile gather
//     and leave together in the next request (of up to
//     Settings.BatchSize records and the batch limit in bytes);
//   - several produce requests in flight per broker, pipelined on one
//     connection (pipeConn): the broker works through them one at a time,
//     so the next request is there when one is done; order is kept only
//     within one request, which RPC does not need between independent
//     calls;
//   - acks=all: a record counts as written once every in-sync replica has
//     it;
//   - bounded memory: records waiting to be sent and in flight hold at most
//     Settings.ProduceBuffer bytes; a write beyond it waits for room.
//
// It makes one attempt per record: Transport.produce owns the retry,
// size, orphan and drain rules, as it did with the Writer. A failed write
// reports kafka.WriteErrors, one entry per message.
type producer struct {
	tr      *kafkago.Transport
	addr    net.Addr
	timeout time.Duration // bounds one produce request, and the broker's wait for acks
	ttl     time.Duration // how long a topic's leaders are trusted
	linger  time.Duration // an idle lane waits this long before sending (tests)
	// batch returns the most bytes of one record batch (a partition's
	// records in one request), and so of one produce request.
	batch    func() int64
	records  int // the most records of one produce request
	inflight int // the most produce requests in flight per broker
	buffer   int64

	mu       sync.Mutex
	lanes    map[int32]*lane
	buffered int64
	room     chan struct{} // closed when bytes are released, if someone waits
	closed   bool
	sends    sync.WaitGroup

	dial func(addr string) (*brokerConn, error)

	metaMu  sync.Mutex
	meta    map[string]*topicLeaders
	brokers map[int32]string // broker id -> address, as learned with leaders

	requests atomic.Int64 // produce requests sent (for tests)
}

// lane is the queue of records to one broker and its requests in flight.
type lane struct {
	broker   int32
	queue    []*record
	inflight int
	conn     *pipeConn  // to broker; nil until needed, or after it died
	dialing  sync.Mutex // one dial at a time
	lingers  bool       // a linger timer is pending
	lingered bool       // the linger is over: send what is queued
}

// topicLeaders is the partition leaders of a topic, as learned.
type topicLeaders struct {
	leaders []int32 // by partition id; -1 when it has none
	at      time.Time
	next    atomic.Uint32 // round robin over partitions
}

// record is one message on its way.
type record struct {
	msg       *kafkago.Message // &m
	m         kafkago.Message  // a copy: the caller's slice stays its own
	ctx       context.Context
	deadline  time.Time // zero: ctx alone bounds the write
	partition int32
	size      int64
	alone     bool // sent in a produce request of its own
	err       error
	done      chan struct{} // buffered: signalled once, when err is final
}

// records keeps the records of finished writes for the next ones.
var records = sync.Pool{New: func() any { return &record{done: make(chan struct{}, 1)} }}

func newProducer(tr *kafkago.Transport, addr net.Addr, dial func(addr string) (*brokerConn, error), set Settings, batch func() int64) *producer {
	return &producer{
		tr: tr, addr: addr, dial: dial,
		timeout:  set.WriteTimeout,
		ttl:      set.MetadataTTL,
		linger:   set.Linger,
		batch:    batch,
		records:  max(set.BatchSize, 1),
		inflight: max(set.ProduceInflight, 1),
		buffer:   set.ProduceBuffer,
		lanes:    map[int32]*lane{},
		meta:     map[string]*topicLeaders{},
		brokers:  map[int32]string{},
	}
}

// write sends msgs (alone: each in a produce request of its own) and
// waits until each is written or has failed, or ctx ends. It returns nil,
// kafka.WriteErrors with one entry per message, or ctx's error (messages
// already handed over may still be written).
func (p *producer) write(ctx context.Context, msgs []kafkago.Message, alone bool) error {
	return p.writeBy(ctx, time.Time{}, msgs, alone)
}

// writeBy is write, ending at deadline too (when not zero), as if ctx had
// it (context.DeadlineExceeded).
func (p *producer) writeBy(ctx context.Context, deadline time.Time, msgs []kafkago.Message, alone bool) error {
	if d, ok := ctx.Deadline(); ok && !deadline.Before(d) {
		deadline = time.Time{} // ctx ends first
	}
	var one [1]*record
	recs := one[:]
	if len(msgs) > 1 {
		recs = make([]*record, len(msgs))
	}
	var total int64
	failed := false
	for i := range msgs {
		r := records.Get().(*record)
		recs[i] = r
		r.m = msgs[i]
		r.msg, r.ctx, r.deadline, r.alone, r.size = &r.m, ctx, deadline, alone, messageSize(&r.m)
		if limit := p.batch(); r.size > limit {
			r.err = &tooLargeError{topic: msgs[i].Topic, size: r.size, limit: limit}
		} else {
			r.partition, r.err = p.partition(msgs[i].Topic)
		}
		if r.err != nil {
			r.done <- struct{}{}
			failed = true
			continue
		}
		total += r.size
	}
	if total > 0 {
		if err := p.reserve(ctx, deadline, total); err != nil {
			return err
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			p.release(total)
			return transport.ErrClosed
		}
		for _, r := range recs {
			if r.err != nil {
				continue
			}
			l := p.laneOf(p.leader(r.msg.Topic, r.partition))
			l.queue = append(l.queue, r)
			p.kick(l)
		}
		p.mu.Unlock()
	}
	// A deadline of its own is waited for with a pooled timer, not a
	// context of its own: most writes end long before it.
	var expire <-chan time.Time
	if !deadline.IsZero() {
		t := timers.Get().(*time.Timer)
		t.Reset(time.Until(deadline))
		defer func() {
			t.Stop() // no stale tick is received after Stop (Go 1.23)
			timers.Put(t)
		}()
		expire = t.C
	}
	for _, r := range recs {
		select {
		case <-r.done:
			failed = failed || r.err != nil
		case <-ctx.Done():
			return ctx.Err() // the records may still be in a queue: not reused
		case <-expire:
			return context.DeadlineExceeded // likewise
		}
	}
	var errs kafkago.WriteErrors
	if failed {
		errs = make(kafkago.WriteErrors, len(recs))
	}
	for i, r := range recs {
		if failed {
			errs[i] = r.err
		}
		*r = record{done: r.done}
		records.Put(r)
	}
	if !failed {
		return nil
	}
	return errs
}

// timers are the stopped timers of writes with a deadline.
var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// expired reports whether r's writer stopped waiting, and why.
func (r *record) expired(now time.Time) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if !r.deadline.IsZero() && !now.Before(r.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// reserve waits until n more bytes fit in the buffer (one write larger
// than the buffer goes when it is empty), until ctx ends or deadline
// passes (when not zero).
func (p *producer) reserve(ctx context.Context, deadline time.Time, n int64) error {
	for {
		p.mu.Lock()
		if p.buffered == 0 || p.buffered+n <= p.buffer {
			p.buffered += n
			p.mu.Unlock()
			return nil
		}
		if p.room == nil {
			p.room = make(chan struct{})
		}
		room := p.room
		p.mu.Unlock()
		if !deadline.IsZero() {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
			deadline = time.Time{}
		}
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *producer) release(n int64) {
	p.mu.Lock()
	p.releaseLocked(n)
	p.mu.Unlock()
}

func (p *producer) releaseLocked(n int64) {
	p.buffered -= n
	if p.room != nil {
		close(p.room)
		p.room = nil
	}
}

func (p *producer) laneOf(broker int32) *lane {
	l := p.lanes[broker]
	if l == nil {
		l = &lane{broker: broker}
		p.lanes[broker] = l
	}
	return l
}

// kick sends what l has queued while it has free slots (under p.mu).
func (p *producer) kick(l *lane) {
	if p.linger > 0 && l.inflight == 0 && !l.lingers && !l.lingered && len(l.queue) > 0 {
		l.lingers = true
		time.AfterFunc(p.linger, func() {
			p.mu.Lock()
			l.lingers, l.lingered = false, true
			p.kick(l)
			l.lingered = false
			p.mu.Unlock()
		})
	}
	for !l.lingers && l.inflight < p.inflight && len(l.queue) > 0 {
		batch := p.take(l)
		if len(batch) == 0 {
			continue
		}
		l.inflight++
		p.sends.Add(1)
		go p.send(l, batch)
	}
}

// take removes the next produce request's records from l's queue: those
// whose writer still waits, up to the record and byte limits; a record
// that goes alone, alone. Records whose writer has gone are dropped.
func (p *producer) take(l *lane) []*record {
	limit := p.batch()
	var batch []*record
	var bytes int64
	n := 0
	now := time.Now()
	for ; n < len(l.queue) && len(batch) < p.records; n++ {
		r := l.queue[n]
		if err := r.expired(now); err != nil {
			r.err = err
			p.releaseLocked(r.size)
			r.done <- struct{}{}
			continue
		}
		if len(batch) > 0 && (r.alone || batch[0].alone || bytes+r.size > limit) {
			break
		}
		batch = append(batch, r)
		bytes += r.size
	}
	clear(l.queue[:n])
	l.queue = l.queue[n:]
	if len(l.queue) == 0 {
		l.queue = nil // let a long queue's array go
	}
	return batch
}

// send writes batch in one produce request and hands each record its
// result.
func (p *producer) send(l *lane, batch []*record) {
	defer p.sends.Done()
	// The records of a topic in one request go to one partition (that of
	// the first, led by this lane's broker): one record batch per topic is
	// less work for the broker than one per partition, and the first
	// record's partition rotates from request to request.
	var one [1]producePart
	parts := one[:0]
	for _, r := range batch {
		i := 0
		for i < len(parts) && parts[i].topic != r.msg.Topic {
			i++
		}
		if i == len(parts) {
			parts = append(parts, producePart{topic: r.msg.Topic, partition: r.partition})
		}
		r.partition = parts[i].partition
		parts[i].records = append(parts[i].records, r)
	}
	p.requests.Add(1)
	err := p.produce(l, parts)
	var bytes int64
	for i := range parts {
		pt := &parts[i]
		if err != nil {
			pt.err = err
		}
		if pt.err != nil {
			p.forget(pt.topic)
		}
		for _, r := range pt.records {
			r.err = pt.err
			bytes += r.size
			r.done <- struct{}{}
		}
	}
	p.mu.Lock()
	p.releaseLocked(bytes)
	l.inflight--
	p.kick(l)
	p.mu.Unlock()
}

// produce sends one produce request of parts to l's broker on a
// connection of l's pool and reads the broker's answer for each part. An
// error says nothing of any part.
func (p *producer) produce(l *lane, parts []producePart) error {
	if l.broker < 0 {
		return protocol.ErrNoLeader // nothing was written
	}
	bp := requestBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 1<<20 { // let a large request's buffer go
			requestBufs.Put(bp)
		}
	}()
	*bp = appendProduce((*bp)[:0], p.timeout, parts, time.Now())
	for attempt := 1; ; attempt++ {
		c, err := p.connOf(l)
		if err != nil {
			return err
		}
		res, err := c.roundTrip(*bp, time.Now().Add(p.timeout))
		if errors.Is(err, errIdleClosed) && attempt < 3 {
			continue // nothing written: on a new connection
		}
		if err != nil {
			return err
		}
		return parseProduce(res, parts)
	}
}

var requestBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// connOf returns the connection to l's broker, dialing it when there is
// none or it died.
func (p *producer) connOf(l *lane) (*pipeConn, error) {
	p.mu.Lock()
	c := l.conn
	p.mu.Unlock()
	if c != nil && !c.dead.Load() {
		return c, nil
	}
	l.dialing.Lock()
	defer l.dialing.Unlock()
	p.mu.Lock()
	c = l.conn
	closed := p.closed
	p.mu.Unlock()
	if c != nil && !c.dead.Load() {
		return c, nil
	}
	if closed {
		return nil, transport.ErrClosed
	}
	if c != nil {
		c.close()
	}
	p.metaMu.Lock()
	addr, ok := p.brokers[l.broker]
	p.metaMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no address of broker %d: %w", l.broker, kafkago.LeaderNotAvailable)
	}
	bc, err := p.dial(addr)
	if err != nil {
		return nil, err
	}
	c = newPipeConn(bc, p.inflight)
	p.mu.Lock()
	l.conn = c
	p.mu.Unlock()
	return c, nil
}

// partition picks the partition of a record to topic: round robin over
// the topic's partitions, so that requests spread over the instances of
// the consumer group (a reply topic has one).
func (p *producer) partition(topic string) (int32, error) {
	tl, err := p.leaders(topic)
	if err != nil {
		return 0, err
	}
	n := uint32(len(tl.leaders))
	return int32(tl.next.Add(1) % n), nil
}

// leader returns the broker leading a partition, as last learned.
func (p *producer) leader(topic string, partition int32) int32 {
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	if tl := p.meta[topic]; tl != nil && int(partition) < len(tl.leaders) {
		return tl.leaders[partition]
	}
	return -1
}

// leaders returns topic's partition leaders from the Transport's metadata
// cache (kept fresh every MetadataTTL), learned again after a failure or
// once older than the TTL.
func (p *producer) leaders(topic string) (*topicLeaders, error) {
	p.metaMu.Lock()
	tl := p.meta[topic]
	p.metaMu.Unlock()
	if tl != nil && time.Since(tl.at) < p.ttl {
		return tl, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	res, err := p.tr.RoundTrip(ctx, p.addr, &metadataAPI.Request{TopicNames: []string{topic}})
	if err != nil {
		return nil, err
	}
	md := res.(*metadataAPI.Response)
	if len(md.Topics) != 1 || md.Topics[0].Name != topic {
		return nil, kafkago.UnknownTopicOrPartition
	}
	if md.Topics[0].ErrorCode != 0 {
		return nil, kafkago.Error(md.Topics[0].ErrorCode)
	}
	if len(md.Topics[0].Partitions) == 0 {
		return nil, kafkago.UnknownTopicOrPartition
	}
	leaders := make([]int32, len(md.Topics[0].Partitions))
	for i := range leaders {
		leaders[i] = -1
	}
	for _, pa := range md.Topics[0].Partitions {
		if int(pa.PartitionIndex) < len(leaders) && pa.ErrorCode == 0 {
			leaders[pa.PartitionIndex] = pa.LeaderID
		}
	}
	fresh := &topicLeaders{leaders: leaders, at: time.Now()}
	p.metaMu.Lock()
	if tl != nil {
		fresh.next.Store(tl.next.Load())
	}
	if len(p.meta) > 10000 {
		clear(p.meta) // callers come and go; relearning one costs a cache lookup
	}
	p.meta[topic] = fresh
	for _, b := range md.Brokers {
		p.brokers[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	p.metaMu.Unlock()
	return fresh, nil
}

// forget drops what p knows of topic's leaders, after a failed write.
func (p *producer) forget(topic string) {
	p.metaMu.Lock()
	delete(p.meta, topic)
	p.metaMu.Unlock()
}

// close refuses new writes and waits for the produce requests in flight
// (each bounded by the write timeout).
func (p *producer) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.sends.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lanes {
		if l.conn != nil {
			l.conn.close()
			l.conn = nil
		}
	}
}

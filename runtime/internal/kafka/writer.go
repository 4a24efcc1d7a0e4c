package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/semaphore"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// Producing: every record the transport writes (requests, replies,
// heartbeats) goes through one writer, one franz-go client that is
// idempotent (a record retried after a lost connection or a moved leader
// is written once), waits for every in-sync replica, and batches what
// concurrent calls write while a produce request is in flight.
//
// A write waits for its record's outcome until its deadline, never
// longer, whatever the brokers do: a record in flight to a broker that
// stopped answering stays in the client (an idempotent write cannot be
// taken back), and its outcome is dropped when it comes. A record is
// never given a context that ends: the client fails every record buffered
// for a partition when the context of the first one ends, and a call that
// gives up must not fail the calls behind it.

// writer writes records.
//
// A producer that forgets a topic (franz-go's PurgeTopicsFromProducing)
// numbers its next records to it from sequence 0 again under the same
// producer id: a broker that still holds that producer's last batches on
// the topic takes a batch numbered like one of them for a duplicate,
// acknowledges it and drops it. So the writer never makes its producer
// forget a topic that may hold its records (one created again and already
// written to, one whose size limit changed): it renews the producer
// instead (renew), a new client with a new producer id and nothing
// pinned, and lets the old one finish what it has in flight.
type writer struct {
	t   *Transport
	cl  *kgo.Client         // the admin and metadata client, and the first producer
	buf *semaphore.Weighted // bytes of records buffered and in flight (Settings.ProduceBuffer)

	gather  gather                     // records wait here for a group (gather.go)
	prod    atomic.Pointer[kgo.Client] // the producer records go to
	renewMu sync.Mutex
	renewed int            // producers made after the first
	retired sync.WaitGroup // old producers finishing their records
}

// producer returns the client records go to now.
func (wr *writer) producer() *kgo.Client { return wr.prod.Load() }

// renew replaces the producer by a new one, unless it is no longer from
// (nil: whatever it is): concurrent renewals for one cause make one. The
// old producer's records in flight keep their outcome; it closes once
// they have it, or after Settings.CloseTimeout. A producer that cannot
// be made (it never fails for options that made one before) leaves the
// old one forgetting topics instead.
func (wr *writer) renew(from *kgo.Client, why string, topics ...string) {
	wr.renewMu.Lock()
	defer wr.renewMu.Unlock()
	old := wr.prod.Load()
	if from != nil && old != from {
		return
	}
	cl, err := wr.t.cfg.newClient(producerOpts(wr.t.set, wr.t.topics.limit)...)
	if err != nil {
		wr.t.log.Warn("renewing the producer", "why", why, "err", err)
		old.PurgeTopicsFromProducing(topics...)
		return
	}
	wr.prod.Store(cl)
	wr.renewed++
	wr.t.log.Debug("renewed the producer: a new producer id, no topic pinned", "why", why, "topics", strings.Join(topics, ","))
	if old == wr.cl {
		return // it stays, for admin requests; it writes no more records
	}
	wr.retired.Add(1)
	go func() {
		defer wr.retired.Done()
		ctx, cancel := context.WithTimeout(context.Background(), wr.t.set.CloseTimeout)
		defer cancel()
		_ = old.Flush(ctx)
		old.Close()
	}()
}

// flush waits until every record written has its outcome, or ctx ends,
// for the producer and those it replaced.
func (wr *writer) flush(ctx context.Context) error {
	wr.gather.flush()
	err := wr.producer().Flush(ctx)
	done := make(chan struct{})
	go func() { wr.retired.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return err
}

// close closes the producer and the admin client.
func (wr *writer) close() {
	wr.gather.flush()
	if p := wr.producer(); p != wr.cl {
		p.Close()
	}
	wr.cl.Close()
}

// recordOverhead is what the writer counts for a record beyond its key,
// value and headers: the buffer bounds their number too.
const recordOverhead = 64

// write is one record on its way: the record, and the channel its outcome
// comes on. It is the record's context (which never ends), so that one
// function serves as every record's promise, with no allocation.
type write struct {
	context.Context
	rec  kgo.Record
	done chan error // cap 1: the outcome
	size int64
	buf  *semaphore.Weighted
	// refs counts who still needs the write: its writer until the outcome
	// came, and its owner until it stopped waiting. The last one gives it
	// back (release), since the owner may give up first.
	refs    atomic.Int32
	release func(*write)
	// job, when set, is the served request whose reply this is: the
	// outcome goes to it (job.replied), not to done. call, when set, is
	// the waiting call whose request this is: a failure goes to its
	// channel, an acknowledgement to its sent time.
	job    *job
	call   *waiter
	prod   *kgo.Client // the producer it went to
	gather *gather     // told of the outcome
	// pin, when pinned, is the partition the record must go to (a copy
	// of a request goes where the first went).
	pin    int32
	pinned bool
}

// written is every record's promise.
func written(r *kgo.Record, err error) {
	w := r.Context.(*write)
	w.buf.Release(w.size)
	if w.gather != nil {
		w.gather.done()
	}
	switch {
	case w.job != nil:
		w.job.replied(err)
		return
	case w.call != nil:
		if err == nil {
			w.call.sent.Store(time.Now().UnixNano())
		} else {
			select {
			case w.call.ch <- outcome{err: err}:
			default: // the call has its reply already
			}
		}
	default:
		w.done <- err
	}
	w.unref()
}

func (w *write) unref() {
	if w.refs.Add(-1) == 0 && w.release != nil {
		select {
		case <-w.done: // an outcome nobody read
		default:
		}
		w.release(w)
	}
}

// newWrite returns a write held by its owner (one reference).
func newWrite() *write {
	w := &write{Context: context.Background(), done: make(chan error, 1)}
	w.refs.Store(1)
	return w
}

// recordSize is what rec takes in the buffer.
func recordSize(rec *kgo.Record) int64 {
	n := recordOverhead + len(rec.Key) + len(rec.Value)
	for _, h := range rec.Headers {
		n += len(h.Key) + len(h.Value) + 8
	}
	return int64(n)
}

// start hands w.rec to the client once the buffer has room for it,
// waiting until ctx ends or deadline (when not zero) passes. The owner
// then waits for w.done (or stops waiting) and calls w.unref.
func (wr *writer) start(ctx context.Context, deadline time.Time, w *write) error {
	w.size = recordSize(&w.rec)
	if w.size > wr.t.set.ProduceBuffer {
		return &tooLargeError{topic: w.rec.Topic, size: w.size, limit: wr.t.set.ProduceBuffer}
	}
	if !wr.buf.TryAcquire(w.size) {
		actx, cancel := bounded(ctx, deadline)
		err := wr.buf.Acquire(actx, w.size)
		cancel()
		if err != nil {
			return fmt.Errorf("%w (waiting for room in the write buffer, %d bytes in use)", err, wr.t.set.ProduceBuffer)
		}
	}
	w.Context, w.buf = context.Background(), wr.buf
	w.refs.Add(1) // the client's, until the outcome comes
	w.rec.Context = w
	w.gather = &wr.gather
	wr.gather.submit(w)
	return nil
}

// produce hands w to the producer (gather.produce).
func (wr *writer) produce(w *write) {
	w.prod = wr.producer()
	w.prod.Produce(w, &w.rec, written)
}

// writeNow writes rec and waits for its outcome until ctx ends or
// deadline passes; errors are those of outcome.
func (wr *writer) writeNow(ctx context.Context, deadline time.Time, rec kgo.Record) error {
	w := newWrite()
	w.rec = rec
	if err := wr.start(ctx, deadline, w); err != nil {
		return err
	}
	defer w.unref()
	return wr.wait(ctx, deadline, w)
}

// wait waits for the outcome of w until ctx ends, deadline (when not zero)
// passes or the transport has drained.
func (wr *writer) wait(ctx context.Context, deadline time.Time, w *write) error {
	var expire <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expire = t.C
	}
	select {
	case err := <-w.done:
		return wr.outcome(w.rec.Topic, err)
	case <-ctx.Done():
		return ctx.Err()
	case <-expire:
		return context.DeadlineExceeded
	case <-wr.t.done.Done():
		return transport.ErrClosed
	}
}

// outcome turns the error a record was written with into the transport's
// words.
func (wr *writer) outcome(topic string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kgo.ErrClientClosed):
		return transport.ErrClosed
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return &tooLargeError{topic: topic, err: err}
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return &topicGoneError{topic: topic, err: err}
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		return &notAuthorizedError{what: "write to topic " + topic, err: err}
	}
	return &writeFailed{topic: topic, brokers: wr.t.cfg.Brokers, err: err}
}

// purged reports whether a record failed because its topic was purged
// from the writer while it was buffered (the client's errPurged is not
// exported): it may be written again.
func purged(err error) bool {
	wf, ok := err.(*writeFailed)
	return ok && strings.Contains(wf.err.Error(), "purged while buffered")
}

// tooLargeError says that a message is over the size limit of its topic.
// It matches transport.ErrTooLarge.
type tooLargeError struct {
	what  string // "the request", "molgen: the reply of calc.Concat"
	topic string
	size  int64
	limit int64 // 0: a broker refused the message
	err   error
}

func (e *tooLargeError) Error() string {
	what := e.what
	if what == "" {
		what = "the message"
	}
	if e.limit > 0 {
		return fmt.Sprintf("%s is %d bytes, over the limit of %d bytes for topic %s (the smaller of Kafka's max.message.bytes, less %d bytes for the record batch, and molgen's own limit)",
			what, e.size, e.limit, e.topic, batchOverhead)
	}
	return fmt.Sprintf("%s is more than the broker accepts for topic %s (its max.message.bytes): %v", what, e.topic, e.err)
}

// Unwrap returns transport.ErrTooLarge, and the broker's answer when a
// broker refused the message.
func (e *tooLargeError) Unwrap() []error {
	if e.err != nil {
		return []error{transport.ErrTooLarge, e.err}
	}
	return []error{transport.ErrTooLarge}
}

// batchOverhead is what a record batch adds to its records (61 bytes of
// header in Kafka's format v2), with room to spare: a broker measures
// max.message.bytes against the whole batch.
const batchOverhead = 128

// topicGoneError says that a record's topic does not exist (any more).
type topicGoneError struct {
	topic string
	err   error
}

func (e *topicGoneError) Error() string {
	return fmt.Sprintf("topic %s does not exist: %v", e.topic, e.err)
}

func (e *topicGoneError) Unwrap() error { return e.err }

// notAuthorizedError says that the node's principal lacks a right it
// needs: an operator's matter, said at once.
type notAuthorizedError struct {
	what string
	err  error
}

func (e *notAuthorizedError) Error() string {
	return fmt.Sprintf("Kafka does not authorize this node to %s (%v): grant the node's principal the ACLs of its place in the call graph ('molgen acls' writes them)", e.what, e.err)
}

func (e *notAuthorizedError) Unwrap() error { return e.err }

// writeFailed is a write that failed for good: it names the topic and the
// brokers.
type writeFailed struct {
	topic   string
	brokers []string
	err     error
}

func (e *writeFailed) Error() string {
	var ke *kerr.Error
	if errors.As(e.err, &ke) {
		return fmt.Sprintf("writing to topic %s: %v", e.topic, e.err)
	}
	return fmt.Sprintf("writing to topic %s (brokers %s): %v", e.topic, strings.Join(e.brokers, ","), e.err)
}

func (e *writeFailed) Unwrap() error { return e.err }

// writeError prefers the context's error, so that a write cut short by the
// deadline matches context.DeadlineExceeded.
func writeError(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (writing the request: %v)", ctx.Err(), err)
	}
	return err
}

// bounded returns ctx ending at deadline too (when not zero). A request
// carries its deadline (transport.Request.Deadline), which its caller's
// context need not have: Call and Send wait for it with a timer of their
// own, and make a context of it only on slow paths (a route to prepare, a
// full write buffer, an instance check).
func bounded(ctx context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); deadline.IsZero() || ok && !deadline.Before(d) {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, deadline)
}

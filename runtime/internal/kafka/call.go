package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/molgen/molgen/runtime/internal/envelope"
	"github.com/molgen/molgen/runtime/internal/transport"
)

// The call path: Call writes a request (route.go, writer.go) and waits for
// its reply, which the reply reader (replies.go) hands over by the
// request's correlation id. Send writes a oneway request and waits only
// until it is durable.

// waiter is what a call waits with, kept for the next call: the request's
// record and write, the channel its reply is handed over on, the timer of
// its deadline, resends and instance checks, and what the reply reader
// needs to check a reply's signature.
type waiter struct {
	write
	ch              chan outcome // cap 1: the reply, or the failure of the request's write
	sent            atomic.Int64 // unix nanoseconds: when the request's write was acknowledged
	timer           *time.Timer  // nil until needed; stopped while in the pool
	service, method string
	ring            *envelope.Ring
}

// outcome is what ends a call: its reply (rec), the failure of its
// request's write (err), or neither (the node drained).
type outcome struct {
	rec *kgo.Record
	err error
}

// waiterPool keeps waiters for the next calls (its New is set by init: a
// waiter puts itself back).
var waiterPool sync.Pool

func init() { waiterPool.New = newWaiter }

func newWaiter() any {
	w := &waiter{ch: make(chan outcome, 1)}
	w.write = write{Context: context.Background(), done: make(chan error, 1)}
	w.release = func(*write) {
		if w.timer != nil {
			w.timer.Stop() // no stale tick is received after Stop (Go 1.23)
		}
		select {
		case <-w.ch: // a reply handed over as the call ended
		default:
		}
		w.ring, w.prod = nil, nil
		w.sent.Store(0)
		waiterPool.Put(w)
	}
	return w
}

// getWaiter returns a waiter held by its caller (one reference).
func getWaiter() *waiter {
	w := waiterPool.Get().(*waiter)
	w.refs.Store(1)
	w.rec = kgo.Record{}
	return w
}

// Send writes a oneway request: durably in Kafka (every in-sync replica)
// is all it waits for, until ctx ends or req.Deadline passes.
func (t *Transport) Send(ctx context.Context, req *transport.Request) error {
	w := getWaiter()
	w.call = nil // the write's outcome goes to w.done
	defer w.unref()
	r, err := t.request(ctx, &w.rec, req, t.calls.nextID.Add(1), false)
	if err != nil {
		return err
	}
	if err := t.checkSize(&w.rec, "the request"); err != nil {
		return err
	}
	for {
		if err := t.w.start(ctx, req.Deadline, &w.write); err != nil {
			return writeError(ctx, err)
		}
		err := t.w.wait(ctx, req.Deadline, &w.write)
		if !t.topicGone(ctx, req.Deadline, r, w.write.prod, err) {
			return t.requestError(ctx, req.Deadline, err)
		}
	}
}

// topicGone reports whether err says that r's request topic is gone, and
// it was created again: the write may be tried again. A request topic
// deleted under running nodes comes back with molgen's settings.
func (t *Transport) topicGone(ctx context.Context, deadline time.Time, r *route, prod *kgo.Client, err error) bool {
	var gone *topicGoneError
	if !errors.As(err, &gone) {
		return false
	}
	t.log.Info("a request topic is gone: creating it again", "topic", r.topic)
	r.ready.Store(false)
	t.topics.forget(r.topic)
	t.w.renew(prod, "a request topic was created again", r.topic) // the producer holds the old topic's id
	ctx, cancel := bounded(ctx, deadline)
	defer cancel()
	return t.prepareRoute(ctx, r) == nil
}

// requestError is the error of a request's failed write, cut short at
// deadline (when not zero) or when ctx ended.
func (t *Transport) requestError(ctx context.Context, deadline time.Time, err error) error {
	var tl *tooLargeError
	if errors.As(err, &tl) {
		tl.what = "the request"
		return err
	}
	if err == nil {
		return nil
	}
	var gone *topicGoneError
	if errors.As(err, &gone) && t.draining.Load() {
		// The topic could not be made again because the node drains.
		return transport.ErrClosed
	}
	ctx, cancel := bounded(ctx, deadline)
	defer cancel()
	return writeError(ctx, err)
}

// Call sends one request and waits for its reply until ctx ends or
// req.Deadline passes (context.DeadlineExceeded), and never longer, even
// while the brokers do not answer. Unless Config.WaitForInstances, a call
// to a service whose consumer group is known to have no members fails
// with ErrNoInstance before its request is written (admit), so that it
// never runs; a call whose reply has not come after
// Settings.InstanceCheck, and whose service has lost its instances
// meanwhile, fails with an error matching ErrMayHaveRun. Every failure
// after the request may have been written matches ErrMayHaveRun too.
func (t *Transport) Call(ctx context.Context, req *transport.Request) (transport.Reply, error) {
	c := t.calls
	id := c.nextID.Add(1)
	w := getWaiter()
	r, err := t.request(ctx, &w.rec, req, id, true)
	if err == nil {
		err = t.checkSize(&w.rec, "the request")
	}
	if err != nil {
		w.unref()
		return transport.Reply{}, err
	}
	t.stats.calls.Add(1)
	w.service, w.method, w.ring = req.Service, req.Method, t.cfg.Keys.For(req.Service)
	w.call = w // the write's failure comes on w.ch, its acknowledgement to w.sent
	if !c.register(id, w) {
		w.unref()
		return transport.Reply{}, transport.ErrClosed
	}
	defer func() {
		c.unregister(id, w)
		w.unref()
	}()

	// With //molgen:retry N the request is sent again, with the same id,
	// when no reply came within an equal share of the time left; the first
	// reply to arrive answers the call and later ones are dropped. One
	// timer serves the deadline, the resends and the instance checks.
	attempts := 1 + req.Retry
	deadline := req.Deadline
	if d, ok := ctx.Deadline(); ok && !deadline.Before(d) {
		deadline = time.Time{} // ctx ends first
	}
	if !t.cfg.WaitForInstances && t.set.InstanceCheck > 0 {
		if err := t.admit(ctx, req.Deadline, r); err != nil {
			return transport.Reply{}, err // nothing written
		}
	}
	if err := t.w.start(ctx, req.Deadline, &w.write); err != nil {
		return transport.Reply{}, writeError(ctx, err)
	}
	// From here on the request may be in Kafka: a call that ends without
	// its reply may have run (maybeRan).
	var resendAt, checkAt time.Time // zero: none due
	if !t.cfg.WaitForInstances && t.set.InstanceCheck > 0 {
		checkAt = time.Now().Add(t.set.InstanceCheck)
	}
	if attempts > 1 {
		resendAt = time.Now().Add(time.Until(req.Deadline) / time.Duration(attempts))
	}
	attempt := 1
	for {
		var wake <-chan time.Time
		if next := earliest(deadline, earliest(resendAt, checkAt)); !next.IsZero() {
			if w.timer == nil {
				w.timer = time.NewTimer(time.Until(next))
			} else {
				w.timer.Reset(time.Until(next))
			}
			wake = w.timer.C
		}
		select {
		case o := <-w.ch:
			if o.err == nil {
				reply, err := t.received(r, o.rec, w.sent.Load())
				if o.rec == nil {
					err = maybeRan(err) // the node drained
				}
				return reply, err
			}
			// The request's write failed (its outcome comes here only
			// then; an acknowledgement only sets w.sent).
			err := t.w.outcome(r.topic, o.err)
			if t.topicGone(ctx, req.Deadline, r, w.write.prod, err) {
				if err := t.w.start(ctx, req.Deadline, &w.write); err != nil {
					return transport.Reply{}, writeError(ctx, err)
				}
				continue
			}
			return transport.Reply{}, t.requestError(ctx, req.Deadline, err)
		case <-ctx.Done():
			return transport.Reply{}, maybeRan(ctx.Err())
		case now := <-wake:
			if !deadline.IsZero() && !now.Before(deadline) {
				return transport.Reply{}, maybeRan(context.DeadlineExceeded)
			}
			if !checkAt.IsZero() && !now.Before(checkAt) {
				if t.noInstance(ctx, deadline, r) {
					select {
					case o := <-w.ch: // it came meanwhile
						if o.err == nil {
							return t.received(r, o.rec, w.sent.Load())
						}
					default:
					}
					return transport.Reply{}, &lostInstancesError{service: req.Service, group: groupID(t.cfg.App, req.Service)}
				}
				checkAt = time.Now().Add(t.set.InstanceCheck / 2)
			}
			if !resendAt.IsZero() && !now.Before(resendAt) {
				attempt++
				t.log.Debug("no reply yet: sending the request again", "service", req.Service, "method", req.Method, "attempt", attempt)
				t.resend(ctx, req.Deadline, &w.rec, w.sent.Load() != 0)
				resendAt = time.Time{}
				if attempt < attempts {
					resendAt = time.Now().Add(time.Until(req.Deadline) / time.Duration(attempts-attempt+1))
				}
			}
		}
	}
}

// resend writes a copy of a request's record (its first write may still
// be in flight); its outcome is only logged: the call waits for a reply.
// Once the first was acknowledged (acked), the copy goes to its
// partition, and so to the instance that runs or ran it, which answers
// the copy without running the call again.
func (t *Transport) resend(ctx context.Context, deadline time.Time, rec *kgo.Record, acked bool) {
	wr := newWrite()
	wr.rec = kgo.Record{Topic: rec.Topic, Value: rec.Value, Headers: rec.Headers}
	if acked {
		wr.pin, wr.pinned = rec.Partition, true
	}
	if err := t.w.start(ctx, deadline, wr); err != nil {
		wr.unref()
		t.log.Debug("sending a request again", "topic", rec.Topic, "err", err)
		return
	}
	go func() {
		defer wr.unref()
		if err := t.w.wait(context.Background(), deadline, wr); err != nil {
			t.log.Debug("sending a request again", "topic", rec.Topic, "err", err)
		}
	}()
}

// received reads the reply a call was handed (nil: the node drained);
// sent is when its request was acknowledged (unix nanoseconds, 0: not
// yet).
func (t *Transport) received(r *route, m *kgo.Record, sent int64) (transport.Reply, error) {
	if m == nil {
		return transport.Reply{}, transport.ErrClosed
	}
	reply, err := readReply(m)
	reply.Sent = reply.Received // the reply came before the acknowledgement
	if sent != 0 {
		reply.Sent = time.Unix(0, sent)
	}
	reply.Topic = r.topic
	return reply, err
}

// earliest returns the earlier of two times, ignoring zero ones.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// readReply reads a reply's status and value.
func readReply(m *kgo.Record) (transport.Reply, error) {
	switch status := header(m, hStatus); status {
	case statusOK:
		return transport.Reply{Status: transport.StatusOK, Payload: m.Value, Schema: header(m, hSchema), Trace: traceHeaders(m.Headers), Written: m.Timestamp, Received: time.Now()}, nil
	case statusError:
		return transport.Reply{Status: transport.StatusError, Payload: m.Value, Trace: traceHeaders(m.Headers), Written: m.Timestamp, Received: time.Now()}, nil
	default:
		return transport.Reply{}, fmt.Errorf("reply with unknown %s %q", hStatus, clip(status))
	}
}

package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/molgen/molgen/runtime/internal/envelope"
	"github.com/molgen/molgen/runtime/internal/transport"
)

// route is what requests of one service share: their topic, whether the
// topic is known to exist and how large a request to it may be, per method
// the headers that never change, and whether the service has instances.
type route struct {
	topic   string
	ready   atomic.Bool
	limit   atomic.Int64 // the most bytes of a request; 0 until learned
	inst    instanceState
	caller  []byte
	service []byte
	mu      sync.RWMutex
	headers map[methodKey][]kafkago.Header
}

type methodKey struct{ method, schema string }

// routeOf returns the route of service, made on first use.
func (t *Transport) routeOf(service string) *route {
	t.routesMu.RLock()
	r := t.routes[service]
	t.routesMu.RUnlock()
	if r != nil {
		return r
	}
	t.routesMu.Lock()
	defer t.routesMu.Unlock()
	if r = t.routes[service]; r == nil {
		r = &route{
			topic:   requestTopic(t.cfg.App, service),
			caller:  []byte(t.cfg.Node + "/" + t.cfg.Instance),
			service: []byte(service),
			headers: map[methodKey][]kafkago.Header{},
		}
		t.routes[service] = r
	}
	return r
}

// staticHeaders returns the headers that are the same for every request of
// a method (version, service, method, caller, schema), built once:
// kafka-go only reads header values, so requests share them.
func (r *route) staticHeaders(method, schema string) []kafkago.Header {
	key := methodKey{method, schema}
	r.mu.RLock()
	h, ok := r.headers[key]
	r.mu.RUnlock()
	if ok {
		return h
	}
	h = []kafkago.Header{
		{Key: hVersion, Value: wireVersion},
		{Key: hService, Value: r.service},
		{Key: hMethod, Value: []byte(method)},
		{Key: hCaller, Value: r.caller},
	}
	if schema != "" {
		h = append(h, kafkago.Header{Key: hSchema, Value: []byte(schema)})
	}
	r.mu.Lock()
	r.headers[key] = h
	r.mu.Unlock()
	return h
}

// message builds the Kafka message of req, preparing the service's route
// (its request topic and size limit) on first use. A request awaiting a
// reply (id not 0) carries its correlation id and reply topic.
func (t *Transport) message(ctx context.Context, req *transport.Request, id uint64) (kafkago.Message, *route, error) {
	if err := t.cfg.Keys.Missing(req.Service); err != nil {
		return kafkago.Message{}, nil, err
	}
	r := t.routeOf(req.Service)
	if !r.ready.Load() || r.limit.Load() == 0 {
		ctx, cancel := bounded(ctx, req.Deadline)
		defer cancel()
		if err := t.prepareRoute(ctx, r); err != nil {
			return kafkago.Message{}, nil, writeError(ctx, err)
		}
	}
	static := r.staticHeaders(req.Method, req.Schema)
	n := len(static) + 1 + len(req.Trace)
	if id != 0 {
		n += 2
	}
	ring := t.cfg.Keys.For(req.Service)
	if ring != nil {
		n++
	}
	// The deadline and the id share one buffer (RFC 3339 with nanoseconds
	// in UTC is at most 30 bytes, a decimal uint64 20), and usually one
	// allocation with the headers; a signature takes envelope.SigLen more.
	size := 30 + len(t.session) + 1 + 20
	if ring != nil {
		size += envelope.SigLen
	}
	var headers []kafkago.Header
	var buf []byte
	if mh := (*messageHeaders)(nil); n <= len(mh.h) && size <= len(mh.buf) {
		mh = new(messageHeaders)
		headers, buf = mh.h[:len(static):n], mh.buf[:0:size]
	} else {
		headers, buf = make([]kafkago.Header, len(static), n), make([]byte, 0, size)
	}
	copy(headers, static)
	buf = appendDeadline(buf, req.Deadline)
	headers = append(headers, kafkago.Header{Key: hDeadline, Value: buf[:len(buf):len(buf)]})
	headers = withTrace(headers, req.Trace)
	if id != 0 {
		start := len(buf)
		buf = append(buf, t.session...)
		buf = append(buf, '.')
		buf = strconv.AppendUint(buf, id, 10)
		headers = append(headers,
			kafkago.Header{Key: hID, Value: buf[start:]},
			kafkago.Header{Key: hReplyTo, Value: stringBytes(t.replyTopic)}, // kafka-go only reads it
		)
	}
	if ring != nil {
		f := envelope.Fields{Kind: envelope.KindRequest, Version: WireVersion, Service: req.Service, Method: req.Method,
			Deadline: bytesString(headers[len(static)].Value), Schema: req.Schema, Payload: req.Payload}
		if id != 0 {
			f.ID, f.ReplyTo = bytesString(headers[len(headers)-2].Value), t.replyTopic
		}
		start := len(buf)
		buf = ring.Sign(buf, &f)
		headers = append(headers, kafkago.Header{Key: hSig, Value: buf[start:]})
	}
	return kafkago.Message{Topic: r.topic, Value: req.Payload, Headers: headers}, r, nil
}

// messageHeaders holds the headers of a request and the bytes of its
// deadline and id.
type messageHeaders struct {
	h   [12]kafkago.Header
	buf [72 + envelope.SigLen]byte // 30 + a session of 16 + 1 + 20, and a signature
}

// checkSize fails a request over the size limit of its topic at once,
// before it reaches the producer.
func checkSize(r *route, msg *kafkago.Message) error {
	if size, limit := messageSize(msg), r.limit.Load(); limit > 0 && size > limit {
		return &tooLargeError{what: "the request", topic: r.topic, size: size, limit: limit}
	}
	return nil
}

// requestError is the error of a request's failed write, cut short at
// deadline (when not zero) or when ctx ended.
func requestError(ctx context.Context, deadline time.Time, err error) error {
	var tl *tooLargeError
	if errors.As(err, &tl) {
		tl.what = "the request"
		return err
	}
	ctx, cancel := bounded(ctx, deadline)
	defer cancel()
	return writeError(ctx, err)
}

// bounded returns ctx ending at deadline too (when not zero). A request
// carries its deadline (transport.Request.Deadline), which its caller's
// context need not have: Call and Send wait for it with a timer of their
// own, and make a context of it only on slow paths (a route to prepare,
// a failed write, an instance check).
func bounded(ctx context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); deadline.IsZero() || ok && !deadline.Before(d) {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, deadline)
}

// Send writes a oneway request: durably in Kafka (acks=all) is all it
// waits for, until ctx ends or req.Deadline passes. A oneway request has
// no id that would tell a copy from the original, so a write is retried
// only after errors that say nothing was written.
func (t *Transport) Send(ctx context.Context, req *transport.Request) error {
	msg, r, err := t.message(ctx, req, 0)
	if err != nil {
		return err
	}
	if err := checkSize(r, &msg); err != nil {
		return err
	}
	if err := t.produceBy(ctx, req.Deadline, false, false, nil, msg); err != nil {
		return requestError(ctx, req.Deadline, err)
	}
	return nil
}

// Call sends one request and waits for its reply until ctx ends or
// req.Deadline passes (context.DeadlineExceeded). Unless
// Config.WaitForInstances, a call whose reply has not come after
// Settings.InstanceCheck fails with ErrNoInstance once the service's
// consumer group is known to have no members (see noInstance).
func (t *Transport) Call(ctx context.Context, req *transport.Request) (transport.Reply, error) {
	id := t.nextID.Add(1)
	msg, r, err := t.message(ctx, req, id)
	if err != nil {
		return transport.Reply{}, err
	}
	if err := checkSize(r, &msg); err != nil {
		return transport.Reply{}, err
	}
	t.stats.calls.Add(1)
	w := waiterPool.Get().(*waiter)
	ch := w.ch
	w.service, w.method, w.ring = req.Service, req.Method, t.cfg.Keys.For(req.Service)
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		waiterPool.Put(w)
		return transport.Reply{}, transport.ErrClosed
	}
	t.pending[id] = w
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		_, mine := t.pending[id] // not: close() has closed ch
		delete(t.pending, id)
		t.mu.Unlock()
		if mine {
			// Replies are handed over under t.mu, to pending calls only:
			// none comes any more, and at most one waits unread.
			select {
			case <-ch:
			default:
			}
			if w.timer != nil {
				w.timer.Stop() // no stale tick is received after Stop (Go 1.23)
			}
			waiterPool.Put(w)
		}
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
	var resendAt, checkAt time.Time // zero: none due
	for attempt := 1; ; attempt++ {
		// A request has the id its reply is matched with: a copy written
		// twice is answered once, so every retriable error is retried.
		if err := t.produceBy(ctx, req.Deadline, false, true, nil, msg); err != nil {
			return transport.Reply{}, requestError(ctx, req.Deadline, err)
		}
		sent := time.Now()
		received := func(m kafkago.Message, ok bool) (transport.Reply, error) {
			reply, err := received(m, ok)
			reply.Topic, reply.Sent = r.topic, sent
			return reply, err
		}
		if attempt == 1 && !t.cfg.WaitForInstances && t.set.InstanceCheck > 0 {
			checkAt = time.Now().Add(t.set.InstanceCheck)
		}
		resendAt = time.Time{}
		if attempt < attempts {
			resendAt = time.Now().Add(time.Until(req.Deadline) / time.Duration(attempts-attempt+1))
		}
	wait:
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
			case reply, ok := <-ch:
				return received(reply, ok)
			case <-ctx.Done():
				return transport.Reply{}, ctx.Err()
			case now := <-wake:
				if !deadline.IsZero() && !now.Before(deadline) {
					return transport.Reply{}, context.DeadlineExceeded
				}
				if !checkAt.IsZero() && !now.Before(checkAt) {
					if t.noInstance(ctx, deadline, r) {
						select {
						case reply, ok := <-ch: // it came meanwhile
							return received(reply, ok)
						default:
						}
						return transport.Reply{}, &noInstanceError{service: req.Service, group: groupID(t.cfg.App, req.Service)}
					}
					checkAt = time.Now().Add(t.set.InstanceCheck / 2)
				}
				if !resendAt.IsZero() && !now.Before(resendAt) {
					t.log.Debug("no reply yet: sending the request again", "service", req.Service, "method", req.Method, "attempt", attempt+1)
					break wait
				}
			}
		}
	}
}

// waiter is what a call waits with, kept for the next call: the channel
// its reply is handed over on, the timer of its resends and instance
// checks, and what the reply loop needs to check a reply's signature (the
// service and method called, the keys that sign the service's replies).
type waiter struct {
	ch              chan kafkago.Message
	timer           *time.Timer // nil until needed; stopped while in the pool
	service, method string
	ring            *envelope.Ring
}

var waiterPool = sync.Pool{New: func() any { return &waiter{ch: make(chan kafkago.Message, 1)} }}

// received reads the reply a call was handed (ok false: the node drained).
func received(reply kafkago.Message, ok bool) (transport.Reply, error) {
	if !ok {
		return transport.Reply{}, transport.ErrClosed
	}
	return readReply(reply)
}

// earliest returns the earlier of two times, ignoring zero ones.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// readReply reads a reply's status and value.
func readReply(m kafkago.Message) (transport.Reply, error) {
	switch status := header(m, hStatus); status {
	case statusOK:
		return transport.Reply{Status: transport.StatusOK, Payload: m.Value, Schema: header(m, hSchema), Trace: traceHeaders(m.Headers), Written: m.Time, Received: time.Now()}, nil
	case statusError:
		return transport.Reply{Status: transport.StatusError, Payload: m.Value, Trace: traceHeaders(m.Headers), Written: m.Time, Received: time.Now()}, nil
	default:
		return transport.Reply{}, fmt.Errorf("reply with unknown %s %q", hStatus, status)
	}
}

// writeError prefers the context's error, so that a write cut short by the
// deadline matches context.DeadlineExceeded.
func writeError(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (writing the request: %v)", ctx.Err(), err)
	}
	return err
}

// traceHeaders returns the trace context headers of a message (nil when
// it has none).
func traceHeaders(hs []kafkago.Header) transport.Headers {
	var out transport.Headers
	for _, h := range hs {
		for _, name := range transport.TraceHeaders {
			if h.Key == name {
				out = append(out, transport.Header{Key: name, Value: bytesString(h.Value)}) // a record's header values are its own
			}
		}
	}
	return out
}

// withTrace returns headers followed by the trace context headers th.
func withTrace(headers []kafkago.Header, th transport.Headers) []kafkago.Header {
	for _, h := range th {
		headers = append(headers, kafkago.Header{Key: h.Key, Value: stringBytes(h.Value)}) // kafka-go only reads it
	}
	return headers
}

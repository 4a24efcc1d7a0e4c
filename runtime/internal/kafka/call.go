package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// route is what requests of one service share: their topic, whether the
// topic is known to exist, and per method the headers that never change.
type route struct {
	topic   string
	ready   atomic.Bool
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

// message builds the Kafka message of req, creating the request topic on
// first use.
func (t *Transport) message(ctx context.Context, req *transport.Request, extra int) (kafkago.Message, error) {
	r := t.routeOf(req.Service)
	if !r.ready.Load() {
		if !t.enter() {
			return kafkago.Message{}, transport.ErrClosed
		}
		err := t.ensureTopic(ctx, r.topic, t.cfg.Partitions, t.set.RequestRetention)
		t.exit()
		if err != nil {
			return kafkago.Message{}, writeError(ctx, err)
		}
		r.ready.Store(true)
	}
	static := r.staticHeaders(req.Method, req.Schema)
	headers := make([]kafkago.Header, len(static), len(static)+1+extra)
	copy(headers, static)
	return kafkago.Message{
		Topic:   r.topic,
		Value:   req.Payload,
		Headers: append(headers, kafkago.Header{Key: hDeadline, Value: []byte(formatDeadline(req.Deadline))}),
	}, nil
}

// Send writes a oneway request: durably in Kafka (acks=all) is all it
// waits for.
func (t *Transport) Send(ctx context.Context, req *transport.Request) error {
	msg, err := t.message(ctx, req, 0)
	if err != nil {
		return err
	}
	if err := t.write(ctx, msg); err != nil {
		return writeError(ctx, err)
	}
	return nil
}

// Call sends one request and waits for its reply until ctx ends.
func (t *Transport) Call(ctx context.Context, req *transport.Request) (transport.Reply, error) {
	msg, err := t.message(ctx, req, 2)
	if err != nil {
		return transport.Reply{}, err
	}
	t.stats.calls.Add(1)
	id := t.nextID.Add(1)
	msg.Headers = append(msg.Headers,
		kafkago.Header{Key: hID, Value: []byte(t.session + "." + formatID(id))},
		kafkago.Header{Key: hReplyTo, Value: []byte(t.replyTopic)},
	)
	ch := make(chan kafkago.Message, 1)
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return transport.Reply{}, transport.ErrClosed
	}
	t.pending[id] = ch
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.pending, id)
		t.mu.Unlock()
	}()

	// With //molgen:retry N the request is sent again, with the same id,
	// when no reply came within an equal share of the time left; the first
	// reply to arrive answers the call and later ones are dropped.
	attempts := 1 + req.Retry
	var resend *time.Timer
	var resendC <-chan time.Time
	for attempt := 1; ; attempt++ {
		if err := t.write(ctx, msg); err != nil {
			return transport.Reply{}, writeError(ctx, err)
		}
		if attempt < attempts {
			share := time.Until(req.Deadline) / time.Duration(attempts-attempt+1)
			if resend == nil {
				resend = time.NewTimer(share)
				defer resend.Stop()
			} else {
				resend.Reset(share)
			}
			resendC = resend.C
		} else {
			resendC = nil
		}
		select {
		case reply, ok := <-ch:
			if !ok {
				return transport.Reply{}, transport.ErrClosed
			}
			return readReply(reply)
		case <-ctx.Done():
			return transport.Reply{}, ctx.Err()
		case <-resendC:
			t.log.Debug("no reply yet: sending the request again", "service", req.Service, "method", req.Method, "attempt", attempt+1)
		}
	}
}

// readReply reads a reply's status and value.
func readReply(m kafkago.Message) (transport.Reply, error) {
	switch status := header(m, hStatus); status {
	case statusOK:
		return transport.Reply{Status: transport.StatusOK, Payload: m.Value}, nil
	case statusError:
		return transport.Reply{Status: transport.StatusError, Payload: m.Value}, nil
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

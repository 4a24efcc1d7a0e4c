package kafka

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/molgen/molgen/runtime/internal/envelope"
	"github.com/molgen/molgen/runtime/internal/transport"
)

// route is what requests of one service share: their topic, whether the
// topic is known to exist, per method the headers that never change, and
// what is known of the service's instances.
type route struct {
	topic   string
	service string
	ready   atomic.Bool
	inst    instanceState
	caller  []byte
	mu      sync.RWMutex
	headers map[methodKey][]kgo.RecordHeader
}

type methodKey struct{ method, schema string }

// routes holds the route of every service the node has called.
type routes struct {
	mu sync.RWMutex
	m  map[string]*route
}

// of returns the route of service, made on first use.
func (rs *routes) of(t *Transport, service string) *route {
	rs.mu.RLock()
	r := rs.m[service]
	rs.mu.RUnlock()
	if r != nil {
		return r
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if r = rs.m[service]; r == nil {
		r = &route{
			topic:   requestTopic(t.cfg.App, service),
			service: service,
			caller:  []byte(t.cfg.Node + "/" + t.cfg.Instance),
			headers: map[methodKey][]kgo.RecordHeader{},
		}
		if rs.m == nil {
			rs.m = map[string]*route{}
		}
		rs.m[service] = r
	}
	return r
}

// topics returns the request topics of the routes made so far.
func (rs *routes) topics() []string {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	out := make([]string, 0, len(rs.m))
	for _, r := range rs.m {
		out = append(out, r.topic)
	}
	return out
}

// forget marks the routes of topics (none: all) as needing their topic
// checked again.
func (rs *routes) forget(topics ...string) {
	drop := make(map[string]bool, len(topics))
	for _, topic := range topics {
		drop[topic] = true
	}
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	for _, r := range rs.m {
		if len(topics) == 0 || drop[r.topic] {
			r.ready.Store(false)
		}
	}
}

// staticHeaders returns the headers that are the same for every request of
// a method (version, service, method, caller, schema), built once: the
// client only reads header values, so requests share them.
func (r *route) staticHeaders(method, schema string) []kgo.RecordHeader {
	key := methodKey{method, schema}
	r.mu.RLock()
	h, ok := r.headers[key]
	r.mu.RUnlock()
	if ok {
		return h
	}
	h = []kgo.RecordHeader{
		{Key: hVersion, Value: wireVersion},
		{Key: hService, Value: []byte(r.service)},
		{Key: hMethod, Value: []byte(method)},
		{Key: hCaller, Value: r.caller},
	}
	if schema != "" {
		h = append(h, kgo.RecordHeader{Key: hSchema, Value: []byte(schema)})
	}
	r.mu.Lock()
	r.headers[key] = h
	r.mu.Unlock()
	return h
}

// prepare makes sure the request topic of r exists with leaders and knows
// the most bytes a request to it may take (before the first batch to it:
// the producer asks once). Concurrent first calls of a service share one
// preparation.
func (t *Transport) prepareRoute(ctx context.Context, r *route) error {
	if err := t.topics.ensure(ctx, r.topic, t.cfg.Partitions, t.set.RequestRetention); err != nil {
		return err
	}
	err := t.topics.shared(ctx, "limit "+r.topic, t.set.AdminTimeout, func(actx context.Context) error {
		if _, err := t.topics.learnLimit(actx, r.topic); err != nil {
			// Without an answer, the brokers' limit holds.
			t.log.Debug("reading the size limit of a request topic", "topic", r.topic, "err", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.ready.Store(true)
	return nil
}

// request fills rec with req, preparing the service's route (its request
// topic and size limit) on first use. Every request carries its call id
// (this process's session and id); one awaiting a reply (replies) its
// reply topic too; with keys, a signature.
func (t *Transport) request(ctx context.Context, rec *kgo.Record, req *transport.Request, id uint64, replies bool) (*route, error) {
	if err := t.cfg.Keys.Missing(req.Service); err != nil {
		return nil, err
	}
	r := t.routes.of(t, req.Service)
	if !r.ready.Load() {
		ctx, cancel := bounded(ctx, req.Deadline)
		defer cancel()
		if err := t.prepareRoute(ctx, r); err != nil {
			return nil, writeError(ctx, err)
		}
	}
	static := r.staticHeaders(req.Method, req.Schema)
	n := len(static) + 2 + len(req.Trace)
	if replies {
		n++
	}
	ring := t.cfg.Keys.For(req.Service)
	if ring != nil {
		n++
	}
	// The deadline and the id share one buffer (RFC 3339 with nanoseconds
	// in UTC is at most 30 bytes, a decimal uint64 20), and usually one
	// allocation with the headers; a signature takes envelope.SigLen more.
	size := 30 + len(t.calls.session) + 1 + 20
	if ring != nil {
		size += envelope.SigLen
	}
	var headers []kgo.RecordHeader
	var buf []byte
	if mh := (*messageHeaders)(nil); n <= len(mh.h) && size <= len(mh.buf) {
		mh = new(messageHeaders)
		headers, buf = mh.h[:len(static):n], mh.buf[:0:size]
	} else {
		headers, buf = make([]kgo.RecordHeader, len(static), n), make([]byte, 0, size)
	}
	copy(headers, static)
	buf = appendDeadline(buf, req.Deadline)
	headers = append(headers, kgo.RecordHeader{Key: hDeadline, Value: buf[:len(buf):len(buf)]})
	headers = withTrace(headers, req.Trace)
	start := len(buf)
	buf = append(buf, t.calls.session...)
	buf = append(buf, '.')
	buf = strconv.AppendUint(buf, id, 10)
	idHeader := len(headers)
	if replies {
		headers = append(headers,
			kgo.RecordHeader{Key: hID, Value: buf[start:len(buf):len(buf)]},
			kgo.RecordHeader{Key: hReplyTo, Value: stringBytes(t.calls.topic)}, // the client only reads it
		)
	} else {
		// A oneway request asks for no reply: no molgen-id.
		headers = append(headers, kgo.RecordHeader{Key: hCallID, Value: buf[start:len(buf):len(buf)]})
	}
	if ring != nil {
		f := envelope.Fields{Kind: envelope.KindRequest, Version: WireVersion, Service: req.Service, Method: req.Method,
			Deadline: bytesString(headers[len(static)].Value), Schema: req.Schema, Payload: req.Payload}
		f.ID = bytesString(headers[idHeader].Value)
		if replies {
			f.ReplyTo = t.calls.topic
		}
		start := len(buf)
		buf = ring.Sign(buf, &f)
		headers = append(headers, kgo.RecordHeader{Key: hSig, Value: buf[start:]})
	}
	rec.Topic, rec.Value, rec.Headers = r.topic, req.Payload, headers
	return r, nil
}

// messageHeaders holds the headers of a request and the bytes of its
// deadline and id.
type messageHeaders struct {
	h   [12]kgo.RecordHeader
	buf [72 + envelope.SigLen]byte // 30 + a session of 16 + 1 + 20, and a signature
}

// checkSize fails a record over the size limit of its topic at once,
// before it reaches the producer.
func (t *Transport) checkSize(rec *kgo.Record, what string) error {
	if size, limit := recordSize(rec), t.topics.recordLimit(rec.Topic); size > limit {
		return &tooLargeError{what: what, topic: rec.Topic, size: size, limit: limit}
	}
	return nil
}

// traceHeaders returns the trace context headers of a record (nil when it
// has none); those over envelope.MaxTrace are left out.
func traceHeaders(hs []kgo.RecordHeader) transport.Headers {
	var out transport.Headers
	for _, h := range hs {
		for _, name := range transport.TraceHeaders {
			if h.Key == name && len(h.Value) <= envelope.MaxTrace {
				out = append(out, transport.Header{Key: name, Value: bytesString(h.Value)})
			}
		}
	}
	return out
}

// withTrace returns headers followed by the trace context headers th.
func withTrace(headers []kgo.RecordHeader, th transport.Headers) []kgo.RecordHeader {
	for _, h := range th {
		headers = append(headers, kgo.RecordHeader{Key: h.Key, Value: stringBytes(h.Value)}) // the client only reads it
	}
	return headers
}

// header returns the value of a record's header key, or "".
func header(m *kgo.Record, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return bytesString(h.Value)
		}
	}
	return ""
}

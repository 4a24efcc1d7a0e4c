package runtime

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

var encoderPool = sync.Pool{New: func() any { return NewEncoder(make([]byte, 0, 256)) }}

// call sends one request and waits for its reply, within the deadline of
// ctx, else the method's timeout, else the node's default timeout.
func (t *kafkaTransport) call(ctx context.Context, c *Client, method int, req, resp Message) error {
	m := &c.desc.Methods[method]
	fail := func(err error) error { return &CallError{Service: c.desc.Name, Method: m.Name, Err: err} }
	if _, ok := ctx.Deadline(); !ok {
		timeout := m.Timeout
		if timeout <= 0 {
			timeout = t.node.opts.DefaultTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	deadline, _ := ctx.Deadline()
	topic := requestTopic(t.app, c.desc.Name)
	if !c.svc.topicReady.Load() {
		if !t.enter() {
			return fail(ErrClosed)
		}
		err := t.ensureTopic(ctx, topic, t.parts, requestRetention)
		t.exit()
		if err != nil {
			return fail(writeError(ctx, err))
		}
		c.svc.topicReady.Store(true)
	}

	e := encoderPool.Get().(*Encoder)
	// A write cut short leaves the message queued in kafka-go, still
	// pointing at e's buffer: after a failed write e is never reused.
	abandoned := false
	defer func() {
		if !abandoned {
			e.Reset()
			encoderPool.Put(e)
		}
	}()
	if err := encodeRequest(c, m, req, e); err != nil {
		return fail(err)
	}
	static := t.requestHeaders(c, method)
	headers := make([]kafka.Header, len(static), len(static)+3)
	copy(headers, static)
	msg := kafka.Message{
		Topic:   topic,
		Value:   e.Data(),
		Headers: append(headers, kafka.Header{Key: hDeadline, Value: []byte(formatDeadline(deadline))}),
	}
	if m.Oneway {
		// Durably in Kafka (acks=all) is all a oneway call waits for.
		if err := t.write(ctx, msg); err != nil {
			abandoned = true // kafka-go may still hold the message
			return fail(writeError(ctx, err))
		}
		return nil
	}

	t.stats.calls.Add(1)
	id := t.nextID.Add(1)
	msg.Headers = append(msg.Headers,
		kafka.Header{Key: hID, Value: []byte(t.session + "." + formatID(id))},
		kafka.Header{Key: hReplyTo, Value: []byte(t.replyTopic)},
	)
	ch := make(chan kafka.Message, 1)
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return fail(ErrClosed)
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
	attempts := 1 + m.Retry
	var resend *time.Timer
	var resendC <-chan time.Time
	for attempt := 1; ; attempt++ {
		if err := t.write(ctx, msg); err != nil {
			abandoned = true // kafka-go may still hold the message
			return fail(writeError(ctx, err))
		}
		if attempt < attempts {
			share := time.Until(deadline) / time.Duration(attempts-attempt+1)
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
				return fail(ErrClosed)
			}
			return t.readReply(c, m, reply, resp)
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-resendC:
			t.log.Debug("no reply yet: sending the request again", "service", c.desc.Name, "method", m.Name, "attempt", attempt+1)
		}
	}
}

// readReply decodes a reply into resp, or into the service's error.
func (t *kafkaTransport) readReply(c *Client, m *MethodDesc, reply kafka.Message, resp Message) error {
	d := NewDecoder(reply.Value)
	switch status := header(reply, hStatus); status {
	case statusOK:
		if err := decodeResponse(c, m, resp, d); err != nil {
			return &CallError{Service: c.desc.Name, Method: m.Name, Err: fmt.Errorf("undecodable reply (is the server's code from another version?): %w", err)}
		}
		return nil
	case statusError:
		rerr, err := decodeError(d, c.desc.Name, m.Name)
		if err != nil {
			return &CallError{Service: c.desc.Name, Method: m.Name, Err: fmt.Errorf("undecodable error reply: %w", err)}
		}
		return rerr
	default:
		return &CallError{Service: c.desc.Name, Method: m.Name, Err: fmt.Errorf("reply with unknown %s %q", hStatus, status)}
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

// encodeRequest encodes req, turning a panic in user code it runs (a
// MarshalBinary method) into an error, as a local call would.
func encodeRequest(c *Client, m *MethodDesc, req Message, e *Encoder) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Service: c.desc.Name, Method: m.Name, Value: fmt.Sprintf("encoding the request: %v", r), Stack: debug.Stack()}
		}
	}()
	req.MolgenEncode(e)
	return e.Err()
}

// decodeResponse decodes a reply into resp, turning a panic in user code
// (an UnmarshalBinary method) into an error.
func decodeResponse(c *Client, m *MethodDesc, resp Message, d *Decoder) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Service: c.desc.Name, Method: m.Name, Value: fmt.Sprintf("decoding the reply: %v", r), Stack: debug.Stack()}
		}
	}()
	resp.MolgenDecode(d)
	return d.Finish()
}

// requestHeaders returns the headers that are the same for every request of
// a method (version, service, method, schema, caller), built once per
// client: kafka-go only reads header values, so calls share them.
func (t *kafkaTransport) requestHeaders(c *Client, method int) []kafka.Header {
	c.headersOnce.Do(func() {
		caller := []byte(t.node.name + "/" + t.node.instance)
		service := []byte(c.desc.Name)
		c.headers = make([][]kafka.Header, len(c.desc.Methods))
		for i, m := range c.desc.Methods {
			h := []kafka.Header{
				{Key: hVersion, Value: wireVersion},
				{Key: hService, Value: service},
				{Key: hMethod, Value: []byte(m.Name)},
				{Key: hCaller, Value: caller},
			}
			if m.Schema != "" {
				h = append(h, kafka.Header{Key: hSchema, Value: []byte(m.Schema)})
			}
			c.headers[i] = h
		}
	})
	return c.headers[method]
}

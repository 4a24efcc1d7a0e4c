package runtime

import (
	"context"
	"errors"
	"fmt"
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
		if err := t.ensureTopic(ctx, topic, t.parts, requestRetention); err != nil {
			return fail(writeError(ctx, err))
		}
		c.svc.topicReady.Store(true)
	}

	e := encoderPool.Get().(*Encoder)
	// A write cut short by ctx leaves the message queued in kafka-go,
	// still pointing at e's buffer: such an encoder is never reused.
	abandoned := false
	defer func() {
		if !abandoned {
			e.Reset()
			encoderPool.Put(e)
		}
	}()
	req.MolgenEncode(e)
	if err := e.Err(); err != nil {
		return fail(err)
	}
	msg := kafka.Message{
		Topic: topic,
		Value: e.Data(),
		Headers: []kafka.Header{
			{Key: hVersion, Value: []byte(WireVersion)},
			{Key: hService, Value: []byte(c.desc.Name)},
			{Key: hMethod, Value: []byte(m.Name)},
			{Key: hDeadline, Value: []byte(formatDeadline(deadline))},
			{Key: hCaller, Value: []byte(t.node.name + "/" + t.node.instance)},
		},
	}
	if m.Schema != "" {
		msg.Headers = append(msg.Headers, kafka.Header{Key: hSchema, Value: []byte(m.Schema)})
	}
	if m.Oneway {
		// Durably in Kafka (acks=all) is all a oneway call waits for.
		if err := t.write(ctx, msg); err != nil {
			abandoned = ctx.Err() != nil
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
			abandoned = ctx.Err() != nil
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
		resp.MolgenDecode(d)
		if err := d.Finish(); err != nil {
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

package runtime

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// Client is a node's handle on one service, used by generated clients.
// Every call passes through it: a local call through Begin and End (or Go,
// for oneway methods), a remote one through Call. Its rules are the same on
// both paths:
//
//   - a call whose context is already done fails at once, without running;
//   - a call whose context ends before it completes fails with a
//     *CallError, "molgen: <service>.<Method>: <context error>", that
//     errors.Is matches with the context's error;
//   - a panic in the implementation is a *PanicError (errors.Is ErrPanic);
//   - a oneway call returns once the request is accepted (in Kafka, or
//     handed to a goroutine of the local service) and its error is logged.
type Client struct {
	local    atomic.Pointer[hosted] // set when calls may go straight to a local implementation
	observed bool                   // the node has an Observer
	node     *Node
	svc      *service
	desc     *ServiceDesc
}

// Local returns the implementation to call directly, or nil when the call
// must go through Call.
func (c *Client) Local() any {
	if h := c.local.Load(); h != nil {
		return h.impl
	}
	return nil
}

// Begin starts a local call of method when ctx is already done or an
// Observer is installed, and generated code calls it only then:
//
//	if err = ctx.Err(); err != nil || x.c.Observed() {
//		if ctx, err = x.c.Begin(ctx, 0, err); err != nil {
//			return r0, err
//		}
//	}
//	defer x.c.End(ctx, 0, &err)
//
// It fails the call when ctx is done (err is ctx.Err()), without running
// it, and otherwise returns the context to run the implementation with.
func (c *Client) Begin(ctx context.Context, method int, err error) (context.Context, error) {
	if err != nil {
		return ctx, c.fail(method, err)
	}
	if c.observed {
		return c.observeStart(ctx, method, false, 0), nil
	}
	return ctx, nil
}

// Observed reports whether calls through c are observed (Options.Observer).
func (c *Client) Observed() bool { return c.observed }

// End finishes a local call begun with Begin; it must be deferred directly
// (it recovers the implementation's panic). It turns a panic into a
// *PanicError and an error caused by the end of ctx into a *CallError, as
// a remote call would report them.
func (c *Client) End(ctx context.Context, method int, err *error) {
	if r := recover(); r != nil {
		*err = c.panicked(ctx, method, r)
	}
	if *err != nil || c.observed {
		c.end(ctx, method, err)
	}
}

//go:noinline
func (c *Client) end(ctx context.Context, method int, err *error) {
	if *err != nil {
		*err = c.settle(ctx, method, *err)
	}
	if c.observed {
		c.node.observeEnd(ctx, *err, 0)
	}
}

// Go runs a local oneway call of method in its own goroutine and returns
// once the service has taken it, as a remote oneway call returns once its
// request is in Kafka. The call takes one of the service's MaxConcurrent
// slots (waiting for one while ctx lasts), runs under ctx's deadline, else
// the method's timeout, else the node's DefaultTimeout, but is not
// cancelled with ctx; its error or panic is logged and counted, and Close
// waits for it.
func (c *Client) Go(ctx context.Context, method int, run func(ctx context.Context) error) error {
	h := c.local.Load()
	if h == nil {
		return c.fail(method, fmt.Errorf("%w: service %q is not hosted on this node", ErrNoRoute, c.desc.Name))
	}
	if err := ctx.Err(); err != nil {
		return c.fail(method, err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.timeout(method))
	}
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return c.fail(method, ctx.Err())
	}
	rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	if c.observed {
		rctx = c.observeStart(rctx, method, false, 0)
	}
	c.node.oneways.add()
	go func() {
		defer c.node.oneways.done()
		defer func() { <-h.slots }()
		defer cancel()
		err := c.runOneway(rctx, method, run)
		if c.observed {
			c.node.observeEnd(rctx, err, 0)
		}
	}()
	return nil
}

// runOneway runs a local oneway call, logging and counting its failure.
func (c *Client) runOneway(ctx context.Context, method int, run func(ctx context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = c.panicked(ctx, method, r)
		}
		if err != nil {
			c.node.onewayFailed(ctx, c.desc.Name, c.desc.Methods[method].Name, err)
		}
	}()
	return run(ctx)
}

// timeout is how long a call of method without a deadline may take.
func (c *Client) timeout(method int) time.Duration {
	if t := c.desc.Methods[method].Timeout; t > 0 {
		return t
	}
	return c.node.opts.DefaultTimeout
}

// fail reports a call that failed in the runtime.
func (c *Client) fail(method int, err error) error {
	return &CallError{Service: c.desc.Name, Method: c.desc.Methods[method].Name, Err: err}
}

// settle makes an error that the end of the call's context caused read the
// same on every path: "molgen: <service>.<Method>: <ctx.Err()>".
//
// A server's context ends at the call's own deadline, and its reply can
// arrive before the caller's timer has fired (the caller's process is
// busy): an error that says the deadline passed, once it has, is the
// call's deadline too.
func (c *Client) settle(ctx context.Context, method int, err error) error {
	d, _ := ctx.Deadline()
	return c.settleBy(ctx, d, method, err)
}

// settleBy is settle for a call that ends at deadline (when not zero),
// which ctx need not carry.
func (c *Client) settleBy(ctx context.Context, deadline time.Time, method int, err error) error {
	if err == nil {
		return nil
	}
	cerr := ctx.Err()
	if !deadline.IsZero() && cerr == nil && errors.Is(err, context.DeadlineExceeded) && !time.Now().Before(deadline) {
		cerr = context.DeadlineExceeded
	}
	if cerr == nil || !errors.Is(err, cerr) {
		return err
	}
	if ce, ok := err.(*CallError); ok && ce.Service == c.desc.Name && ce.Method == c.desc.Methods[method].Name {
		return err
	}
	return c.fail(method, cerr)
}

// panicked turns the value a call panicked with into a *PanicError, and
// logs and counts it.
func (c *Client) panicked(ctx context.Context, method int, value any) error {
	return c.node.panicked(ctx, c.desc.Name, c.desc.Methods[method].Name, value)
}

func (n *Node) panicked(ctx context.Context, service, method string, value any) error {
	n.stats.panics.Add(1)
	pe := &PanicError{Service: service, Method: method, Value: value, Stack: debug.Stack()}
	n.log.ErrorContext(ctx, "service panicked", "service", service, "method", method, "panic", fmt.Sprint(value), "stack", string(pe.Stack))
	return pe
}

func (n *Node) onewayFailed(ctx context.Context, service, method string, err error) {
	n.stats.onewayErrors.Add(1)
	n.log.WarnContext(ctx, "oneway call failed", "service", service, "method", method, "err", errorMessage(err))
}

// call is what a remote call needs besides its messages, kept for the
// next call: the encoder of its request, the request, and the decoder of
// its reply.
type call struct {
	e   Encoder
	req transport.Request
	d   Decoder
}

var calls = sync.Pool{New: func() any { return &call{e: Encoder{buf: make([]byte, 0, 256)}} }}

// Call sends a request to the service on another node (or, with
// prefer_local off, to any instance) and waits for its response, within the
// deadline of ctx, else the method's timeout, else the node's default. For
// a oneway method it returns once the request is durably in Kafka.
func (c *Client) Call(ctx context.Context, method int, req, resp Message) error {
	m := &c.desc.Methods[method]
	r := c.node.remote.Load()
	if r == nil {
		return c.noRoute(method)
	}
	// The deadline travels in the request, and the transport ends the call
	// at it: a context of its own (a timer and a channel) is made only for
	// an Observer, which sees the context a call runs under.
	deadline, ok := ctx.Deadline()
	if !ok {
		if c.observed {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.timeout(method))
			defer cancel()
			deadline, _ = ctx.Deadline()
		} else {
			deadline = time.Now().Add(c.timeout(method))
		}
	}
	if err := ctx.Err(); err != nil {
		return c.fail(method, err)
	}
	cl := calls.Get().(*call)
	e := &cl.e
	// A write cut short may leave the message queued in the producer,
	// still pointing at e's buffer: after a failed write e is never reused.
	abandoned := false
	defer func() {
		if !abandoned {
			e.Reset()
			cl.req = transport.Request{}
			cl.d = Decoder{}
			calls.Put(cl)
		}
	}()
	if err := c.encodeRequest(m, req, e); err != nil {
		if _, ok := err.(*PanicError); ok {
			return err // it names the call already
		}
		return c.fail(method, err)
	}
	treq := &cl.req
	*treq = transport.Request{Service: c.desc.Name, Method: m.Name, Schema: m.Schema, Deadline: deadline, Retry: m.Retry, Payload: e.Data()}
	if c.observed {
		ctx = c.observeStart(ctx, method, true, len(treq.Payload))
	}
	treq.Trace = c.node.injectTrace(ctx)
	var reply transport.Reply
	var err error
	if m.Oneway {
		err = r.t.Send(ctx, treq)
		reply.Sent = time.Now()
	} else {
		reply, err = r.t.Call(ctx, treq)
	}
	if err != nil {
		abandoned = true // the transport may still hold the payload
		err = c.fail(method, err)
	} else if !m.Oneway {
		err = c.settleBy(ctx, deadline, method, c.readReply(m, reply, resp, &cl.d))
	}
	if c.observed {
		c.node.observeEndCall(ctx, err, &reply)
	}
	return err
}

// noRoute explains why a call can go nowhere.
func (c *Client) noRoute(method int) error {
	n := c.node
	state := n.state.Load()
	switch {
	case state == nodeClosed:
		return c.fail(method, ErrClosed)
	case n.opts.Placement == nil:
		return c.fail(method, fmt.Errorf("%w: service %q is not registered on this node, and a node without a placement has no Kafka transport", ErrNoRoute, c.desc.Name))
	case state != nodeStarted:
		return c.fail(method, fmt.Errorf("%w: service %q is remote and the node is not started yet", ErrNoRoute, c.desc.Name))
	case n.placedHere(c.desc.Name):
		// Placed here, prefer_local on, a single node: registered under
		// another version, or not at all.
		return c.fail(method, fmt.Errorf("%w: service %q is placed on this node but not registered here (by this version of its code)", ErrNoRoute, c.desc.Name))
	}
	return c.fail(method, fmt.Errorf("%w: service %q is placed on %s, not on node %q", ErrNoRoute, c.desc.Name, n.opts.Placement.NodesOf(c.desc.Name), n.opts.Node))
}

// readReply decodes a reply into resp, or into the service's error, with
// d.
func (c *Client) readReply(m *MethodDesc, reply transport.Reply, resp Message, d *Decoder) error {
	d.init(reply.Payload, c.node.opts.DecodeLimits)
	if reply.Status == transport.StatusError {
		rerr, err := decodeError(d, c.desc.Name, m.Name)
		if err != nil {
			return &CallError{Service: c.desc.Name, Method: m.Name, Err: fmt.Errorf("undecodable error reply: %w", err)}
		}
		return rerr
	}
	if s := reply.Schema; s != "" && s != sameSchema && s != m.Schema && m.Schema != "" {
		if err := compatibleSchemas(m.Schema, s); err != nil {
			return &CallError{Service: c.desc.Name, Method: m.Name, Err: fmt.Errorf("%w: the reply was encoded with types incompatible with this caller's (%v; the server's schema is %s, this caller's %s)", ErrBadRequest, err, shortSchema(s), shortSchema(m.Schema))}
		}
	}
	if err := c.decodeResponse(m, resp, d); err != nil {
		return &CallError{Service: c.desc.Name, Method: m.Name, Err: fmt.Errorf("undecodable reply (is the server's code from another version?): %w", err)}
	}
	return nil
}

// encodeRequest encodes req, turning a panic in user code it runs (a
// MarshalBinary method) into an error, as a local call would.
func (c *Client) encodeRequest(m *MethodDesc, req Message, e *Encoder) (err error) {
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
func (c *Client) decodeResponse(m *MethodDesc, resp Message, d *Decoder) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Service: c.desc.Name, Method: m.Name, Value: fmt.Sprintf("decoding the reply: %v", r), Stack: debug.Stack()}
		}
	}()
	resp.MolgenDecode(d)
	return d.Finish()
}

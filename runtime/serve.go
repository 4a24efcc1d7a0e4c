package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// serve returns the handler of a hosted service's remote requests: it
// checks the method and its schema, decodes the arguments, runs the
// implementation and encodes the reply. Panics anywhere in user code
// (implementation, codecs, Error methods) are answered as ErrPanic.
func (n *Node) serve(h *hosted) transport.Handler {
	return func(ctx context.Context, req *transport.Request) transport.Reply {
		idx, ok := h.methods[req.Method]
		if !ok {
			return n.badRequest(req, fmt.Errorf("%w: service %q has no method %q on this node", ErrUnknownMethod, req.Service, req.Method))
		}
		m := &h.desc.Methods[idx]
		if req.Schema != "" && m.Schema != "" && req.Schema != m.Schema {
			if err := compatibleSchemas(req.Schema, m.Schema); err != nil {
				return n.badRequest(req, fmt.Errorf("%w: %s.%s was called with types incompatible with this server's (%v; the caller's schema is %s, this server's %s): a version may only append fields to structs; deploy the change as a new method, or stop the callers of the other version first",
					ErrBadRequest, req.Service, req.Method, err, shortSchema(req.Schema), shortSchema(m.Schema)))
			}
		}
		ctx = n.extractTrace(ctx, req.Trace)
		if n.observer != nil {
			ctx = n.observeServe(ctx, h.desc, idx, req)
		}
		sv := new(served)
		sv.d.init(req.Payload, n.opts.DecodeLimits)
		resp, err := n.invoke(ctx, h, idx, &sv.d)
		if _, undecodable := err.(*badRequest); undecodable {
			n.stats.badMessages.Add(1)
			n.warnings.Log(n.log, slog.LevelWarn, "bad request", "bad request", "service", req.Service, "method", req.Method, "caller", req.Caller, "err", errorMessage(err))
		} else {
			n.stats.served.Add(1)
		}
		var reply transport.Reply
		if m.Oneway {
			if err != nil {
				n.onewayFailed(ctx, req.Service, req.Method, err)
			}
		} else {
			sv.e.buf = sv.buf[:0]
			reply = n.replyOf(h, idx, resp, err, &sv.e)
			if reply.Status == transport.StatusOK {
				reply.Schema = replySchema(req.Schema, m.Schema)
			}
			reply.Trace = n.injectTrace(ctx)
		}
		if n.observer != nil {
			n.observeEnd(ctx, err, len(reply.Payload))
		}
		return reply
	}
}

// served is what serving one remote request needs, in one allocation:
// the decoder of its arguments, and the encoder of its reply with room
// for a small one. It is never reused: the transport may keep the reply's
// bytes after a write gives up.
type served struct {
	d   Decoder
	e   Encoder
	buf [128]byte
}

// badRequest answers a request the node cannot serve, and counts it.
func (n *Node) badRequest(req *transport.Request, err error) transport.Reply {
	n.stats.badMessages.Add(1)
	n.warnings.Log(n.log, slog.LevelWarn, "bad request", "bad request", "service", req.Service, "method", req.Method, "caller", req.Caller, "err", err)
	return transport.Reply{Status: transport.StatusError, Payload: errorReply(err)}
}

// invoke decodes and runs a request, turning a panic into an error.
func (n *Node) invoke(ctx context.Context, h *hosted, idx int, d *Decoder) (resp Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, n.panicked(ctx, h.desc.Name, h.desc.Methods[idx].Name, r)
		}
	}()
	return h.handlers[idx](ctx, h.impl, d)
}

// replyOf encodes a reply with e (a fresh one, whose buffer is never
// reused: the transport may keep it after a write gives up). It runs code
// of the service (MarshalBinary, Error, Is methods); a panic there is
// answered as a panic of the call.
func (n *Node) replyOf(h *hosted, idx int, resp Message, callErr error, e *Encoder) (reply transport.Reply) {
	defer func() {
		if r := recover(); r != nil {
			n.stats.panics.Add(1)
			pe := &PanicError{Service: h.desc.Name, Method: h.desc.Methods[idx].Name, Value: fmt.Sprintf("encoding the reply: %v", r), Stack: debug.Stack()}
			n.log.Error("service panicked", "service", pe.Service, "method", pe.Method, "panic", pe.Value, "stack", string(pe.Stack))
			reply = transport.Reply{Status: transport.StatusError, Payload: errorReply(pe)}
		}
	}()
	if callErr == nil && resp != nil {
		resp.MolgenEncode(e)
		if err := e.Err(); err != nil {
			callErr = fmt.Errorf("molgen: encoding the response of %s: %w", h.desc.Name, err)
		}
	}
	if callErr != nil {
		return transport.Reply{Status: transport.StatusError, Payload: errorReply(callErr)}
	}
	return transport.Reply{Status: transport.StatusOK, Payload: e.Data()}
}

// errorReply encodes err as the value of an error reply.
func errorReply(err error) []byte {
	e := NewEncoder(nil)
	encodeError(e, err)
	return e.Data()
}

// replySchema is the schema a reply says it was encoded with: "=" when it
// is the request's, else the server's own (docs/WIRE.md).
func replySchema(requested, own string) string {
	if requested == own {
		return sameSchema
	}
	return own
}

// sameSchema is the reply schema that stands for the request's.
const sameSchema = "="

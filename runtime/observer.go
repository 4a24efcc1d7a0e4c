package runtime

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// Observer sees every call a node makes and every remote request it
// serves: the one place where tracing, metrics and call counting hook in.
// Install one with Options.Observer; with none, calls pay a nil check.
//
// Start is called as a call begins and returns the context the call goes
// on with (a tracer puts its span there; nested calls see it). End is
// called with the same context and CallInfo when the call is over. Both
// must be safe for concurrent use and should be quick: they run on the
// calling goroutine.
type Observer interface {
	Start(ctx context.Context, call *CallInfo) context.Context
	End(ctx context.Context, call *CallInfo, err error)
}

// MultiObserver returns an Observer that passes every call to each of obs
// in turn (nil entries skipped): Start in order, End in reverse order.
// With no observers it returns nil, which costs nothing.
func MultiObserver(obs ...Observer) Observer {
	var list multiObserver
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0]
	}
	return list
}

type multiObserver []Observer

func (m multiObserver) Start(ctx context.Context, call *CallInfo) context.Context {
	for _, o := range m {
		ctx = o.Start(ctx, call)
	}
	return ctx
}

func (m multiObserver) End(ctx context.Context, call *CallInfo, err error) {
	for i := len(m) - 1; i >= 0; i-- {
		m[i].End(ctx, call, err)
	}
}

// CallInfo describes one call to an Observer. Fields that End reads are
// final when End is called.
type CallInfo struct {
	Service, Method string
	// Caller is the service or main making the call, when known: the
	// service whose request or local call is running, or the main.
	Caller string
	// Remote is true when the call crosses the transport (Kafka).
	Remote bool
	// Server is true on the serving side of a remote call; Caller is then
	// the calling node/instance.
	Server bool
	// Oneway is true for //molgen:oneway methods.
	Oneway bool
	// Start is when the call began; Duration is set before End.
	Start    time.Time
	Duration time.Duration
	// RequestBytes and ReplyBytes are the encoded sizes of a remote call's
	// arguments and results (0 for local calls).
	RequestBytes, ReplyBytes int

	// Where a remote call went, as far as the transport tells: its
	// request topic (on the server always; on the caller for calls that
	// await a reply), and on the server the consumer group, partition and
	// offset the request was read from.
	Topic, Group string
	Partition    int
	Offset       int64
	// Stages of a remote call, for an observer to split its time. On the
	// caller: Sent, when the request was durably in Kafka; ReplyWritten,
	// when the server wrote the reply (by the server's clock); Received,
	// when the reply arrived. On the server: Written, when the caller
	// wrote the request (by the caller's clock); Taken, when this server
	// took it from Kafka.
	Sent, ReplyWritten, Received time.Time
	Written, Taken               time.Time

	spans [2]trace.Span // the spans of the built-in tracing (telemetry.go)
}

type callKey struct{}   // context key of the *CallInfo of the running call
type callerKey struct{} // context key of the name of the running service or main

// WithCaller returns ctx marked as running the service or main called
// name: calls made with it report name as their Caller. Node binaries mark
// the context of each main.
func WithCaller(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, callerKey{}, name)
}

func callerOf(ctx context.Context) string {
	name, _ := ctx.Value(callerKey{}).(string)
	return name
}

// observeStart begins observing a call of method made through c.
func (c *Client) observeStart(ctx context.Context, method int, remote bool, requestBytes int) context.Context {
	m := &c.desc.Methods[method]
	ctx = c.node.observeStart(ctx, &CallInfo{
		Service: c.desc.Name, Method: m.Name, Caller: callerOf(ctx),
		Remote: remote, Oneway: m.Oneway, RequestBytes: requestBytes,
	})
	if !remote {
		ctx = WithCaller(ctx, c.desc.Name) // nested calls run in this service
	}
	return ctx
}

// observeServe begins observing a remote request served here; nested
// calls run in the service.
func (n *Node) observeServe(ctx context.Context, desc *ServiceDesc, method int, req *transport.Request) context.Context {
	m := &desc.Methods[method]
	ctx = n.observeStart(ctx, &CallInfo{
		Service: desc.Name, Method: m.Name, Caller: req.Caller, Remote: true, Server: true, Oneway: m.Oneway,
		RequestBytes: len(req.Payload),
		Topic:        req.Topic, Group: req.Group, Partition: req.Partition, Offset: req.Offset,
		Written: req.Written, Taken: req.Taken,
	})
	return WithCaller(ctx, desc.Name)
}

// observeStart starts info's call for the Observer and keeps info in the
// context, for observeEnd.
func (n *Node) observeStart(ctx context.Context, info *CallInfo) context.Context {
	info.Start = time.Now()
	ctx = context.WithValue(ctx, callKey{}, info)
	return n.observer.Start(ctx, info)
}

// observeEndCall ends observing a remote call made, with the stages its
// transport reported.
func (n *Node) observeEndCall(ctx context.Context, err error, reply *transport.Reply) {
	if info, _ := ctx.Value(callKey{}).(*CallInfo); info != nil {
		info.Topic, info.Sent, info.ReplyWritten, info.Received = reply.Topic, reply.Sent, reply.Written, reply.Received
		if info.Topic == "" && n.opts.Placement != nil {
			// A oneway call: no reply said where it went (docs/WIRE.md).
			info.Topic = "molgen." + n.opts.Placement.App + ".req." + info.Service
		}
	}
	n.observeEnd(ctx, err, len(reply.Payload))
}

// observeEnd ends observing the call whose context ctx is (made or served).
func (n *Node) observeEnd(ctx context.Context, err error, replyBytes int) {
	info, _ := ctx.Value(callKey{}).(*CallInfo)
	if info == nil {
		return
	}
	info.Duration = time.Since(info.Start)
	info.ReplyBytes = replyBytes
	n.observer.End(ctx, info, err)
}

// Package transport is the seam between a runtime.Node and the network
// that carries calls between nodes. A Node knows only this interface; the
// Kafka transport (package kafka beside it) implements it, and another
// could without any change to the Node, its clients or generated code.
//
// A transport moves bytes: the runtime encodes arguments and results, runs
// implementations, and encodes errors; the transport delivers requests to
// the instances serving a service and brings their replies back.
package transport

import (
	"context"
	"errors"
	"time"
)

// Errors a transport returns; package runtime exports the same values.
var (
	// ErrClosed is returned by calls made after the transport was drained.
	ErrClosed = errors.New("molgen: node closed")
	// ErrBadRequest marks requests a server could not understand.
	ErrBadRequest = errors.New("molgen: bad request")
	// ErrUnknownMethod marks a request for a method the server lacks.
	ErrUnknownMethod = errors.New("molgen: unknown method")
	// ErrTooLarge marks a request or reply over the transport's size limit.
	ErrTooLarge = errors.New("molgen: message too large")
	// ErrNoInstance marks a call to a service that no running instance
	// serves.
	ErrNoInstance = errors.New("molgen: no running instance serves the service")
	// ErrMayHaveRun marks a call that failed after its request was
	// written: the request may still run (an instance takes it before its
	// deadline), or may have run already.
	ErrMayHaveRun = errors.New("molgen: the request was written and may run")
)

// Transport carries requests of a node to the instances serving them and
// serves the services hosted on the node.
type Transport interface {
	// Call sends req and waits for its reply, until ctx ends (when it
	// returns ctx's error, possibly wrapped) or req.Deadline passes, when
	// it is not zero (context.DeadlineExceeded, possibly wrapped: the
	// caller's context need not carry the deadline). req.Retry extra copies may be
	// sent when no reply comes. After an error the transport may still hold
	// req.Payload: the caller must not reuse its buffer.
	Call(ctx context.Context, req *Request) (Reply, error)
	// Send delivers a oneway request: it returns once the request is
	// durable, without waiting for it to run. The deadline and payload
	// rules of Call hold.
	Send(ctx context.Context, req *Request) error
	// Serve starts taking the requests of one service.
	Serve(ctx context.Context, svc Service) error
	// Drain stops taking requests, lets those running finish and answer,
	// records them as done (so no other instance runs them again), and then
	// releases every connection. Calls keep working while requests run;
	// afterwards they fail with ErrClosed.
	Drain() error
	// Stats returns the transport's counters.
	Stats() Stats
	// Ready returns nil once every service given to Serve has its
	// partitions assigned (or knows that other instances hold them) and
	// the instance's replies are being read; otherwise, and once Drain
	// began, an error saying what is missing.
	Ready() error
	// Healthy returns nil unless the brokers cannot be reached.
	Healthy() error
	// Lag returns, per service served here and partition it reads, how
	// many requests wait in Kafka behind the last one fetched.
	Lag() []Lag
}

// Lag is the consumer lag of one partition of a service's request topic.
type Lag struct {
	Service   string
	Partition int
	Requests  int64
}

// Header is one trace context header (W3C traceparent, tracestate,
// baggage) carried with a request or a reply.
type Header struct{ Key, Value string }

// Headers carries the trace context of a call. It implements
// go.opentelemetry.io/otel/propagation.TextMapCarrier.
type Headers []Header

// Get returns the value of key, or "".
func (h Headers) Get(key string) string {
	for _, kv := range h {
		if kv.Key == key {
			return kv.Value
		}
	}
	return ""
}

// Set sets key to value.
func (h *Headers) Set(key, value string) {
	for i := range *h {
		if (*h)[i].Key == key {
			(*h)[i].Value = value
			return
		}
	}
	*h = append(*h, Header{key, value})
}

// Keys returns the keys present.
func (h Headers) Keys() []string {
	keys := make([]string, len(h))
	for i, kv := range h {
		keys[i] = kv.Key
	}
	return keys
}

// TraceHeaders are the names of the headers a transport carries in
// Request.Trace and Reply.Trace.
var TraceHeaders = []string{"traceparent", "tracestate", "baggage"}

// Request is one call on its way to a server.
type Request struct {
	Service, Method string
	// Schema is the shape of the method's types on the caller (may be
	// empty).
	Schema string
	// Deadline is when the caller stops waiting; a server that takes the
	// request later does not run it.
	Deadline time.Time
	// Retry is how many more times the caller may send the request when
	// no reply comes (Call only).
	Retry int
	// Payload is the encoded arguments.
	Payload []byte
	// Caller names the calling node and instance (informative; set by the
	// transport on the serving side).
	Caller string
	// Trace is the caller's trace context, carried as it is.
	Trace Headers

	// Set by the transport on the serving side, for observers: where the
	// request was read, when the caller wrote it (by the caller's clock)
	// and when this server took it.
	Topic, Group string
	Partition    int
	Offset       int64
	Written      time.Time
	Taken        time.Time
}

// Status says whether a reply carries results or an error.
type Status uint8

// Reply statuses.
const (
	StatusOK    Status = iota // Payload holds the encoded results
	StatusError               // Payload holds an encoded error
)

// Reply is a server's answer to a request.
type Reply struct {
	Status  Status
	Payload []byte
	// Schema says which types encoded an ok reply: the server's schema,
	// or "=" for the one its request carried (may be empty).
	Schema string
	// Trace is the server's trace context, carried as it is.
	Trace Headers

	// Set by the transport on the calling side, for observers: the topic
	// the request went to, when it was durably written, when the server
	// wrote the reply (by the server's clock) and when it arrived.
	Topic    string
	Sent     time.Time
	Written  time.Time
	Received time.Time
}

// CallIDKey is the context key under which a transport's handler context
// answers the call id of the request it serves (a string): the same for
// every copy of one call's request (a resend, a redelivery).
type CallIDKey struct{}

// Handler serves one request of a service on this node. ctx carries the
// request's deadline. It never panics (the runtime recovers).
type Handler func(ctx context.Context, req *Request) Reply

// Service is a service hosted on this node.
type Service struct {
	Name   string
	Handle Handler
	// Slots bounds the service's requests running at once: the transport
	// takes a slot before it takes a request, and gives it back when the
	// request is done. The node shares it with its local oneway calls.
	Slots chan struct{}
}

// Stats counts a transport's traffic.
type Stats struct {
	Calls       int64 // requests sent that awaited a reply
	Served      int64 // requests handed to a Handler
	LateReplies int64 // replies dropped: the call was over or already answered
	Expired     int64 // requests not run because their deadline had passed
	BadMessages int64 // messages that could not be read (answered when possible)
	Orphaned    int64 // replies dropped because the caller's reply topic is gone
	TooLarge    int64 // replies over the size limit, answered with ErrTooLarge instead
	Forged      int64 // requests and replies dropped: not signed by the node's keys
	Misdirected int64 // requests dropped: their reply topic is not one of the app's
	Duplicates  int64 // copies of a call already run or running here: not run again
}

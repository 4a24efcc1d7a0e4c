package runtime

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// instrumentation is the name of the tracer and meter of the runtime.
const instrumentation = "github.com/molgen/molgen/runtime"

// Attribute keys of spans and metrics, after OpenTelemetry's semantic
// conventions for RPC and messaging, and molgen's own.
const (
	keyRPCSystem     = attribute.Key("rpc.system")
	keyRPCService    = attribute.Key("rpc.service")
	keyRPCMethod     = attribute.Key("rpc.method")
	keyErrorType     = attribute.Key("error.type")
	keyMsgSystem     = attribute.Key("messaging.system")
	keyMsgDest       = attribute.Key("messaging.destination.name")
	keyMsgPartition  = attribute.Key("messaging.destination.partition.id")
	keyMsgOffset     = attribute.Key("messaging.kafka.offset")
	keyMsgGroup      = attribute.Key("messaging.consumer.group.name")
	keyMsgBodySize   = attribute.Key("messaging.message.body.size")
	keyRemote        = attribute.Key("molgen.remote")
	keyCaller        = attribute.Key("molgen.caller")
	keyOneway        = attribute.Key("molgen.oneway")
	keyQueued        = attribute.Key("molgen.queued")
	keySide          = attribute.Key("molgen.side")
	keyNode          = attribute.Key("molgen.node")
	rpcSystemMolgen  = "molgen"
	msgSystemKafka   = "kafka"
	errorTypeUnknown = "_OTHER"
)

// telemetry is the Observer that Options.TracerProvider and
// Options.MeterProvider install: a span on the caller and one on the
// server of every call, and the rpc.* metrics.
type telemetry struct {
	tracer  trace.Tracer // nil: no traces
	metrics *callMetrics // nil: no metrics
}

func (t *telemetry) Start(ctx context.Context, c *CallInfo) context.Context {
	if t.tracer != nil {
		ctx = t.startSpans(ctx, c)
	}
	if t.metrics != nil {
		t.metrics.started(ctx, c)
	}
	return ctx
}

func (t *telemetry) End(ctx context.Context, c *CallInfo, err error) {
	if t.tracer != nil {
		t.endSpans(c, err)
	}
	if t.metrics != nil {
		t.metrics.ended(ctx, c, err)
	}
}

// startSpans starts the spans of a call: a client span on the caller
// (a producer span for a remote oneway call), a server span on the server
// (a consumer span for a oneway request), and for a local call both, the
// server span a child of the client span, so that a trace has the same
// shape on every placement.
func (t *telemetry) startSpans(ctx context.Context, c *CallInfo) context.Context {
	name := c.Service + "/" + c.Method
	attrs := []attribute.KeyValue{
		keyRPCSystem.String(rpcSystemMolgen), keyRPCService.String(c.Service), keyRPCMethod.String(c.Method),
		keyRemote.Bool(c.Remote),
	}
	if c.Oneway {
		attrs = append(attrs, keyOneway.Bool(true))
	}
	if c.Caller != "" {
		attrs = append(attrs, keyCaller.String(c.Caller))
	}
	if c.Remote {
		attrs = append(attrs, keyMsgSystem.String(msgSystemKafka))
	}
	switch {
	case c.Server:
		kind := trace.SpanKindServer
		if c.Oneway {
			kind = trace.SpanKindConsumer
		}
		attrs = append(attrs, keyMsgDest.String(c.Topic), keyMsgGroup.String(c.Group),
			keyMsgPartition.String(strconv.Itoa(c.Partition)), keyMsgOffset.Int64(c.Offset), keyMsgBodySize.Int(c.RequestBytes))
		start := c.Start
		if !c.Taken.IsZero() {
			start = c.Taken
		}
		ctx, c.spans[0] = t.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...), trace.WithTimestamp(start))
		if !c.Written.IsZero() {
			// The time the request waited in Kafka, by two clocks: the
			// caller's (when it wrote the request) and this server's.
			queued := start.Sub(c.Written)
			c.spans[0].AddEvent("request taken", trace.WithTimestamp(start),
				trace.WithAttributes(keyQueued.Float64(queued.Seconds())))
		}
	case c.Remote:
		kind := trace.SpanKindClient
		if c.Oneway {
			kind = trace.SpanKindProducer
		}
		attrs = append(attrs, keyMsgBodySize.Int(c.RequestBytes))
		ctx, c.spans[0] = t.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...), trace.WithTimestamp(c.Start))
	default:
		ctx, c.spans[0] = t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...), trace.WithTimestamp(c.Start))
		ctx, c.spans[1] = t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...), trace.WithTimestamp(c.Start))
	}
	return ctx
}

// endSpans ends the spans of a call, with the stages of a remote call
// as events of the caller's span: when the request was durably written,
// when the server wrote the reply (by its clock) and when it arrived.
func (t *telemetry) endSpans(c *CallInfo, err error) {
	end := c.Start.Add(c.Duration)
	for i := len(c.spans) - 1; i >= 0; i-- {
		span := c.spans[i]
		if span == nil {
			continue
		}
		if c.Remote && !c.Server {
			if !c.Sent.IsZero() {
				span.AddEvent("request written", trace.WithTimestamp(c.Sent))
			}
			if c.Topic != "" {
				span.SetAttributes(keyMsgDest.String(c.Topic))
			}
			if !c.ReplyWritten.IsZero() {
				span.AddEvent("reply written", trace.WithTimestamp(c.ReplyWritten))
			}
			if !c.Received.IsZero() {
				span.AddEvent("reply received", trace.WithTimestamp(c.Received))
			}
		}
		if err != nil {
			span.SetAttributes(keyErrorType.String(errorType(err)))
			span.SetStatus(codes.Error, errorMessage(err))
		}
		span.End(trace.WithTimestamp(end))
		c.spans[i] = nil
	}
}

// errorType names the kind of a call's error for error.type: the
// runtime's errors by a short name, a service's registered error
// variables by their identity (import/path.Name), others as "_OTHER".
func errorType(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, ErrPanic):
		return "panic"
	case errors.Is(err, ErrNoInstance):
		return "no_instance"
	case errors.Is(err, ErrNoRoute):
		return "no_route"
	case errors.Is(err, ErrTooLarge):
		return "too_large"
	case errors.Is(err, ErrUnknownMethod):
		return "unknown_method"
	case errors.Is(err, ErrBadRequest):
		return "bad_request"
	case errors.Is(err, ErrClosed):
		return "closed"
	}
	for _, id := range errorIdentities(err) {
		if !strings.HasPrefix(id, "context.") && !strings.HasPrefix(id, instrumentation+".") {
			return id
		}
	}
	return errorTypeUnknown
}

// callMetrics are the instruments of calls made and served.
type callMetrics struct {
	clientDuration, serverDuration metric.Float64Histogram
	clientRequest, clientResponse  metric.Int64Histogram
	serverRequest, serverResponse  metric.Int64Histogram
	inFlight                       metric.Int64UpDownCounter

	sets sync.Map // attrKey -> attribute.Set, the attributes of calls without error
}

type attrKey struct {
	service, method, caller string
	remote, server          bool
}

// Bucket boundaries of the duration (seconds) and size (bytes) histograms.
var (
	durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	sizeBuckets     = []float64{16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304}
)

func newCallMetrics(m metric.Meter) (*callMetrics, error) {
	var cm callMetrics
	var errs []error
	hist := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(durationBuckets...))
		errs = append(errs, err)
		return h
	}
	size := func(name, desc string) metric.Int64Histogram {
		h, err := m.Int64Histogram(name, metric.WithUnit("By"), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(sizeBuckets...))
		errs = append(errs, err)
		return h
	}
	cm.clientDuration = hist("rpc.client.call.duration", "Duration of calls made, local and remote, by service and method")
	cm.serverDuration = hist("rpc.server.call.duration", "Duration of calls served, local and remote, by service and method")
	cm.clientRequest = size("rpc.client.request.size", "Encoded size of the requests of remote calls made")
	cm.clientResponse = size("rpc.client.response.size", "Encoded size of the replies of remote calls made")
	cm.serverRequest = size("rpc.server.request.size", "Encoded size of the requests served")
	cm.serverResponse = size("rpc.server.response.size", "Encoded size of the replies to requests served")
	var err error
	cm.inFlight, err = m.Int64UpDownCounter("molgen.calls.in_flight", metric.WithUnit("{call}"), metric.WithDescription("Calls running: made by this node (side client) and served by it (side server)"))
	errs = append(errs, err)
	return &cm, errors.Join(errs...)
}

// set returns the attributes of c without an error (cached).
func (m *callMetrics) set(c *CallInfo, server bool) attribute.Set {
	key := attrKey{service: c.Service, method: c.Method, remote: c.Remote, server: server}
	if !server {
		key.caller = c.Caller // a remote server's caller is an instance: too many values
	}
	if s, ok := m.sets.Load(key); ok {
		return s.(attribute.Set)
	}
	attrs := []attribute.KeyValue{
		keyRPCSystem.String(rpcSystemMolgen), keyRPCService.String(key.service), keyRPCMethod.String(key.method), keyRemote.Bool(key.remote),
	}
	if !server {
		attrs = append(attrs, keyCaller.String(key.caller))
	}
	s := attribute.NewSet(attrs...)
	m.sets.Store(key, s)
	return s
}

var (
	sideClient = metric.WithAttributes(keySide.String("client"))
	sideServer = metric.WithAttributes(keySide.String("server"))
)

func (m *callMetrics) started(ctx context.Context, c *CallInfo) {
	if c.Server {
		m.inFlight.Add(ctx, 1, sideServer)
	} else {
		m.inFlight.Add(ctx, 1, sideClient)
	}
}

// ended records a call: made (rpc.client.*), served (rpc.server.*), or,
// when local, both.
func (m *callMetrics) ended(ctx context.Context, c *CallInfo, err error) {
	seconds := c.Duration.Seconds()
	if c.Server {
		m.inFlight.Add(ctx, -1, sideServer)
	} else {
		m.inFlight.Add(ctx, -1, sideClient)
	}
	record := func(server bool) {
		set := m.set(c, server)
		opt := metric.WithAttributeSet(set)
		if err != nil {
			attrs := append(set.ToSlice(), keyErrorType.String(errorType(err)))
			opt = metric.WithAttributes(attrs...)
		}
		if server {
			m.serverDuration.Record(ctx, seconds, opt)
			if c.Remote {
				m.serverRequest.Record(ctx, int64(c.RequestBytes), opt)
				if !c.Oneway {
					m.serverResponse.Record(ctx, int64(c.ReplyBytes), opt)
				}
			}
			return
		}
		m.clientDuration.Record(ctx, seconds, opt)
		if c.Remote {
			m.clientRequest.Record(ctx, int64(c.RequestBytes), opt)
			if !c.Oneway && err == nil {
				m.clientResponse.Record(ctx, int64(c.ReplyBytes), opt)
			}
		}
	}
	switch {
	case c.Server:
		record(true)
	case c.Remote:
		record(false)
	default:
		record(false)
		record(true)
	}
}

// nodeMetrics registers the node's own gauges and counters, read when
// the MeterProvider collects.
func (n *Node) nodeMetrics(m metric.Meter) error {
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil {
			n.log.Warn("creating a metric", "metric", name, "err", err)
		}
		return c
	}
	served := counter("molgen.requests.served", "{request}", "Remote requests this node ran")
	expired := counter("molgen.requests.expired", "{request}", "Requests skipped because their deadline had passed before a server took them")
	late := counter("molgen.replies.late", "{reply}", "Replies dropped: late (the call was over) or duplicate (a retry was answered already)")
	orphaned := counter("molgen.replies.orphaned", "{reply}", "Replies dropped because the caller's reply topic was gone")
	panics := counter("molgen.panics", "{panic}", "Calls whose implementation panicked")
	bad := counter("molgen.messages.bad", "{message}", "Poison messages: requests that could not be read or served (answered with an error when possible)")
	oneway := counter("molgen.oneway.errors", "{call}", "Oneway calls whose implementation failed")
	tooLarge := counter("molgen.replies.too_large", "{reply}", "Replies over the size limit, answered with ErrTooLarge")
	forged := counter("molgen.messages.forged", "{message}", "Requests and replies dropped because the node's signing keys did not sign them")
	misdirected := counter("molgen.requests.misdirected", "{request}", "Requests dropped because their reply topic is not one of the app's")
	duplicates := counter("molgen.requests.duplicate", "{request}", "Copies of a call already run or running on this node (a resend, a request written twice): not run again")
	lag, err := m.Int64ObservableGauge("molgen.kafka.consumer.lag", metric.WithUnit("{request}"),
		metric.WithDescription("Requests waiting in each partition of a hosted service's request topic beyond the last one fetched"))
	if err != nil {
		return err
	}
	ready, err := m.Int64ObservableGauge("molgen.node.ready", metric.WithDescription("1 when the node is ready (see /readyz), else 0"))
	if err != nil {
		return err
	}
	node := metric.WithAttributes(keyNode.String(n.name))
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := n.Stats()
		o.ObserveInt64(served, st.Served, node)
		o.ObserveInt64(expired, st.ExpiredRequests, node)
		o.ObserveInt64(late, st.LateReplies, node)
		o.ObserveInt64(orphaned, st.OrphanedReplies, node)
		o.ObserveInt64(panics, st.Panics, node)
		o.ObserveInt64(bad, st.BadMessages, node)
		o.ObserveInt64(oneway, st.OnewayErrors, node)
		o.ObserveInt64(tooLarge, st.TooLarge, node)
		o.ObserveInt64(forged, st.Forged, node)
		o.ObserveInt64(misdirected, st.Misdirected, node)
		o.ObserveInt64(duplicates, st.Duplicates, node)
		r := int64(0)
		if n.Ready() == nil {
			r = 1
		}
		o.ObserveInt64(ready, r, node)
		if rt := n.remote.Load(); rt != nil {
			for _, l := range rt.t.Lag() {
				o.ObserveInt64(lag, l.Requests, metric.WithAttributes(keyRPCService.String(l.Service), keyMsgPartition.String(strconv.Itoa(l.Partition))))
			}
		}
		return nil
	}, served, expired, late, orphaned, panics, bad, oneway, tooLarge, forged, misdirected, duplicates, lag, ready)
	return err
}

// defaultPropagator carries W3C trace context and baggage.
var defaultPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// injectTrace returns the trace context of ctx as headers: every request
// and reply carries one. When ctx has no span context (no tracer, no
// incoming trace), a new trace id is made up for the call, flagged
// sampled, so that the nodes it reaches share one trace (and their logs
// one trace_id), and a node that traces records its part.
//
// With the default propagator, a trace context that is a traceparent
// alone (no tracestate, no baggage) is written by hand, byte for byte as
// otel's TraceContext propagator writes it, in one allocation.
func (n *Node) injectTrace(ctx context.Context) transport.Headers {
	sc := trace.SpanContextFromContext(ctx)
	if n.w3c && sc.TraceState().Len() == 0 && baggage.FromContext(ctx).Len() == 0 {
		if !sc.IsValid() {
			tid, sid := newRootIDs()
			return traceparent(tid, sid, trace.FlagsSampled)
		}
		return traceparent(sc.TraceID(), sc.SpanID(), sc.TraceFlags())
	}
	if !sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, newRootContext())
	}
	h := make(transport.Headers, 0, 3)
	n.propagator.Inject(ctx, &h)
	return h
}

// newRootContext makes up the span context of a call that has none.
func newRootContext() trace.SpanContext {
	tid, sid := newRootIDs()
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
}

// newRootIDs makes up the trace and span ids of a call outside any trace.
func newRootIDs() (tid trace.TraceID, sid trace.SpanID) {
	binary.LittleEndian.PutUint64(tid[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(tid[8:], rand.Uint64())
	binary.LittleEndian.PutUint64(sid[:], rand.Uint64()|1) // never all zero
	return tid, sid
}

// traceparentHeaders is the trace context of a call as a lone W3C
// traceparent, its header and its value in one allocation.
type traceparentHeaders struct {
	h [1]transport.Header
	b [traceparentLen]byte
}

// traceparentLen is the length of a version 00 traceparent:
// 00-<32 hex digits of trace id>-<16 of span id>-<2 of flags>.
const traceparentLen = 2 + 1 + 32 + 1 + 16 + 1 + 2

// traceparent returns the headers of a trace context without tracestate
// or baggage, as otel's TraceContext propagator writes them: the flags
// keep only the bits the specification defines (sampled, random).
func traceparent(tid trace.TraceID, sid trace.SpanID, flags trace.TraceFlags) transport.Headers {
	t := new(traceparentHeaders)
	b := &t.b
	b[0], b[1], b[2], b[35], b[52] = '0', '0', '-', '-', '-'
	hex.Encode(b[3:35], tid[:])
	hex.Encode(b[36:52], sid[:])
	hex.Encode(b[53:55], []byte{byte(flags & (trace.FlagsSampled | trace.FlagsRandom))})
	// b is never written again: the string may share it.
	t.h[0] = transport.Header{Key: "traceparent", Value: unsafe.String(&b[0], len(b))}
	return t.h[:]
}

// extractTrace returns ctx with the trace context of a request's headers.
// With the default propagator, a well-formed version 00 traceparent alone
// is read by hand into the same span context as otel's propagator would;
// anything else (tracestate, baggage, another version, a malformed value)
// goes to the propagator.
func (n *Node) extractTrace(ctx context.Context, h transport.Headers) context.Context {
	if len(h) == 0 {
		return ctx
	}
	if n.w3c && len(h) == 1 && h[0].Key == "traceparent" {
		if sc, ok := parseTraceparent(h[0].Value); ok {
			return trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	return n.extractWithPropagator(ctx, h)
}

// extractWithPropagator is extractTrace's slow path: its carrier escapes
// to the heap, which the fast path's must not.
func (n *Node) extractWithPropagator(ctx context.Context, h transport.Headers) context.Context {
	return n.propagator.Extract(ctx, &h)
}

// parseTraceparent reads a version 00 traceparent in its canonical form
// (lower-case hex digits, defined flags only, valid ids); ok false for any
// other value.
func parseTraceparent(v string) (sc trace.SpanContext, ok bool) {
	if len(v) != traceparentLen || v[0] != '0' || v[1] != '0' || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return sc, false
	}
	var cfg trace.SpanContextConfig
	var flags [1]byte
	if !unhex(cfg.TraceID[:], v[3:35]) || !unhex(cfg.SpanID[:], v[36:52]) || !unhex(flags[:], v[53:55]) ||
		flags[0] > byte(trace.FlagsSampled|trace.FlagsRandom) {
		return sc, false
	}
	cfg.TraceFlags = trace.TraceFlags(flags[0])
	cfg.Remote = true
	sc = trace.NewSpanContext(cfg)
	return sc, sc.IsValid()
}

// unhex decodes the lower-case hex digits of s into dst (len(s) is
// 2*len(dst)).
func unhex(dst []byte, s string) bool {
	for i := range dst {
		hi, ok1 := hexDigit(s[2*i])
		lo, ok2 := hexDigit(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// setupTelemetry builds the node's Observer from its Options.
func (n *Node) setupTelemetry() error {
	n.propagator = n.opts.Propagator
	if n.propagator == nil {
		n.propagator = defaultPropagator
		n.w3c = true
	}
	var t *telemetry
	if n.opts.TracerProvider != nil || n.opts.MeterProvider != nil {
		t = &telemetry{}
		if tp := n.opts.TracerProvider; tp != nil {
			t.tracer = tp.Tracer(instrumentation)
		}
		if mp := n.opts.MeterProvider; mp != nil {
			m := mp.Meter(instrumentation)
			cm, err := newCallMetrics(m)
			if err != nil {
				return err
			}
			t.metrics = cm
			if err := n.nodeMetrics(m); err != nil {
				return err
			}
		}
	}
	if t != nil {
		n.observer = MultiObserver(t, n.opts.Observer)
	} else {
		n.observer = n.opts.Observer
	}
	return nil
}

package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/molgen/molgen/runtime/internal/envelope"
	"github.com/molgen/molgen/runtime/internal/kafka"
	"github.com/molgen/molgen/runtime/internal/ratelog"
	"github.com/molgen/molgen/runtime/internal/transport"
	"github.com/molgen/molgen/runtime/placement"
)

// Options configure a Node. The zero value is a monolith: every service is
// local and no Kafka is used.
type Options struct {
	// Placement says which services run on which node; nil means every
	// service is hosted here.
	Placement *Placement
	// Node is this node's name in Placement; required with a Placement.
	Node string
	// Brokers overrides the placement's kafka.brokers.
	Brokers []string
	// Instance identifies this running copy of the node; it names the
	// instance's reply topic. Empty means a random one.
	Instance string
	// Logger receives the runtime's logs; nil means slog.Default().
	Logger *slog.Logger
	// DefaultTimeout bounds remote calls and oneway calls whose context
	// has no deadline and whose method has no //molgen:timeout. Zero means
	// 30s. (A local call without a deadline is not bounded: that would
	// cost a context per call.)
	DefaultTimeout time.Duration
	// MaxConcurrent bounds the requests of each hosted service run at
	// once: remote requests and local oneway calls. Zero means 1024.
	MaxConcurrent int
	// ConnectTimeout bounds how long Start waits for Kafka to answer before
	// it fails with an error naming the brokers. Zero means 10s.
	ConnectTimeout time.Duration
	// SessionTimeout is the consumer-group session timeout: how long a dead
	// instance keeps its partitions before others take its requests over.
	// Zero means 6s (the broker's usual minimum).
	SessionTimeout time.Duration
	// Observer, when set, sees every call the node makes or serves, local
	// and remote (see Observer). Nil costs nothing.
	Observer Observer
	// TLS, when set, replaces the placement's kafka.tls: every connection
	// to Kafka uses TLS, verified with its CA file (else the system's
	// roots), with its client certificate when it names one.
	TLS *KafkaTLS
	// SASL, when set, replaces the placement's kafka.sasl: every
	// connection to Kafka authenticates with it. Its Password may be set
	// directly; else it comes from PasswordFile or PasswordEnv.
	SASL *KafkaSASL
	// KafkaSettingNames, when set, names the Kafka security settings in
	// the node's hints the way they were given, by placement key (for
	// example "kafka.tls" → "MOLGEN_KAFKA_TLS"); node binaries set it
	// from their flags and environment.
	KafkaSettingNames map[string]string
	// TracerProvider, when set, traces every call the node makes or
	// serves: a span named "service/Method" on the caller and one on the
	// server, with OpenTelemetry's rpc.* and messaging.* attributes and the
	// stages of remote calls as events. Nil: no spans (trace context that
	// calls carry is still passed on).
	TracerProvider trace.TracerProvider
	// MeterProvider, when set, receives the node's metrics:
	// rpc.client.call.duration and rpc.server.call.duration histograms per
	// service and method (local and remote), message sizes, calls in
	// flight, and the node's counters (see Stats) and consumer lag.
	MeterProvider metric.MeterProvider
	// Propagator carries trace context in the headers of requests and
	// replies; nil means W3C traceparent and tracestate, and baggage.
	Propagator propagation.TextMapPropagator
	// Signing, when set, replaces the placement's security.signing: every
	// request and reply is signed, and those not signed by the node's keys
	// are dropped (counted in Stats.Forged).
	Signing *Signing
	// DecodeLimits bound the memory that decoding one remote request or
	// reply may allocate; a message that would need more is refused with
	// ErrBadRequest before it is allocated. Zero fields take the defaults
	// (16 bytes per byte of the message plus 4 MiB, at most 256 MiB).
	DecodeLimits DecodeLimits
}

// Signing is where a node finds the keys that sign requests and replies
// (placement security.signing).
type Signing = placement.Signing

// KeySource is where one signing key ring comes from.
type KeySource = placement.KeySource

// KafkaTLS is the TLS a node uses to reach Kafka (placement kafka.tls).
type KafkaTLS = placement.TLS

// KafkaSASL is the SASL mechanism and credentials a node uses to reach
// Kafka (placement kafka.sasl).
type KafkaSASL = placement.SASL

// ServiceDesc describes a service; generated code declares one per service.
type ServiceDesc struct {
	Name      string // service name, e.g. "users"
	Interface string // Go interface, e.g. "example.com/blog/users.Users"
	Methods   []MethodDesc
}

// MethodDesc describes one method of a service.
type MethodDesc struct {
	Name string
	// Schema is the shape of the arguments and results on the wire
	// (docs/WIRE.md); a server refuses requests, and a caller replies,
	// whose schema is incompatible with its own.
	Schema  string
	Timeout time.Duration // from //molgen:timeout
	Retry   int           // from //molgen:retry
	Oneway  bool          // from //molgen:oneway
}

// Handler serves one method: it decodes the request from d, calls the
// implementation and returns the response. Generated code provides them.
type Handler func(ctx context.Context, impl any, d *Decoder) (Message, error)

// Node hosts services and routes calls between them. Create it with
// NewNode, register implementations, Start it, and Close it when done.
type Node struct {
	opts      Options
	log       *slog.Logger
	name      string
	instance  string
	ephemeral bool     // the instance id was generated: its reply topic goes on Close
	observer  Observer // Options.Observer and the built-in telemetry; fixed at NewNode
	// propagator carries trace context in requests and replies.
	propagator propagation.TextMapPropagator
	// w3c: propagator is defaultPropagator, and a lone traceparent is
	// written and read by hand (see injectTrace).
	w3c bool

	mu       sync.Mutex
	services map[string]*service
	state    atomic.Int32 // nodeNew, nodeStarting, nodeStarted, nodeClosed

	remote atomic.Pointer[remote] // nil unless the placement needs Kafka
	// oneways are local oneway calls still running; Close waits for them.
	oneways  inflight
	stats    nodeStats
	warnings ratelog.Limiter // repeated warnings (bad requests) at most every 10s
}

const (
	nodeNew int32 = iota
	nodeStarting
	nodeStarted
	nodeClosed
)

// remote holds the transport to other nodes.
type remote struct{ t transport.Transport }

// nodeStats counts what the node itself sees; the transport counts the rest.
type nodeStats struct {
	served       atomic.Int64 // remote requests run
	badMessages  atomic.Int64 // requests for unknown methods, other schemas, undecodable
	panics       atomic.Int64
	onewayErrors atomic.Int64
}

// service is a node's record of one service: its clients and, when hosted
// here, its implementation.
type service struct {
	name    string
	clients []*Client // one per ServiceDesc (a node may hold clients of several versions)
	hosted  *hosted
}

// hosted is an implementation registered on this node.
type hosted struct {
	desc     *ServiceDesc
	impl     any
	handlers []Handler
	methods  map[string]int // method index by name, for requests
	// slots bounds the service's remote requests and local oneway calls
	// running at once. Per service, not per node: a handler of one service
	// waiting on another hosted here must not take the slots it needs.
	slots chan struct{}
}

// NewNode returns a node configured by opts.
func NewNode(opts Options) (*Node, error) {
	if opts.Placement != nil {
		if opts.Node == "" {
			return nil, errors.New("molgen: Options.Node is required with a Placement")
		}
		if !opts.Placement.HasNode(opts.Node) {
			return nil, fmt.Errorf("molgen: node %q is not in placement %s (nodes: %s)", opts.Node, opts.Placement.Source, opts.Placement.NodeList())
		}
	}
	if opts.DefaultTimeout <= 0 {
		opts.DefaultTimeout = 30 * time.Second
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 1024
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 6 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	name := opts.Node
	if name == "" {
		name = placement.Monolith
	}
	instance := opts.Instance
	if instance == "" {
		instance = randomInstance()
	}
	n := &Node{
		ephemeral: opts.Instance == "",
		opts:      opts,
		name:      name,
		instance:  instance,
		log:       slog.New(TraceLogHandler(log.Handler())).With("node", name, "instance", instance),
		services:  map[string]*service{},
	}
	if err := n.setupTelemetry(); err != nil {
		return nil, fmt.Errorf("molgen: setting up metrics: %w", err)
	}
	return n, nil
}

// Name returns the node's name ("monolith" without a placement).
func (n *Node) Name() string { return n.name }

// Instance returns the node instance's id.
func (n *Node) Instance() string { return n.instance }

// Logger returns the node's logger.
func (n *Node) Logger() *slog.Logger { return n.log }

// preferLocal reports whether calls to services hosted here are direct.
func (n *Node) preferLocal() bool {
	return n.opts.Placement == nil || n.opts.Placement.PreferLocal
}

// placedHere reports whether the placement puts service name on this node.
func (n *Node) placedHere(name string) bool {
	return n.opts.Placement == nil || n.opts.Placement.Hosts(n.opts.Node, name)
}

func (n *Node) serviceLocked(name string) *service {
	s := n.services[name]
	if s == nil {
		s = &service{name: name}
		n.services[name] = s
	}
	return s
}

// Client returns the node's client for the service desc describes.
// Generated NewXClient functions call it.
func (n *Node) Client(desc *ServiceDesc) *Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.serviceLocked(desc.Name)
	for _, c := range s.clients {
		if c.desc == desc {
			return c
		}
	}
	c := &Client{node: n, svc: s, desc: desc, observed: n.observer != nil}
	if h := s.hosted; h != nil && n.callsDirectly(c, h) {
		c.local.Store(h)
	}
	s.clients = append(s.clients, c)
	return c
}

// Register hosts impl as the service desc describes. Generated RegisterX
// functions call it. It fails when the service is registered twice, when
// the placement puts it on another node, or once the node is starting.
func (n *Node) Register(desc *ServiceDesc, impl any, handlers []Handler) error {
	if len(handlers) != len(desc.Methods) {
		return fmt.Errorf("molgen: service %q: %d handlers for %d methods (re-run molgen generate)", desc.Name, len(handlers), len(desc.Methods))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.state.Load() {
	case nodeStarting, nodeStarted:
		return fmt.Errorf("molgen: service %q registered after the node started", desc.Name)
	case nodeClosed:
		return fmt.Errorf("molgen: service %q registered on a closed node", desc.Name)
	}
	if !n.placedHere(desc.Name) {
		return fmt.Errorf("molgen: service %q is not placed on node %q by %s (it is on %s)",
			desc.Name, n.opts.Node, n.opts.Placement.Source, n.opts.Placement.NodesOf(desc.Name))
	}
	s := n.serviceLocked(desc.Name)
	if s.hosted != nil {
		return fmt.Errorf("molgen: service %q is already registered on this node", desc.Name)
	}
	h := &hosted{desc: desc, impl: impl, handlers: handlers, methods: map[string]int{}, slots: make(chan struct{}, n.opts.MaxConcurrent)}
	for i, m := range desc.Methods {
		h.methods[m.Name] = i
	}
	s.hosted = h
	for _, c := range s.clients {
		if n.callsDirectly(c, h) {
			c.local.Store(h)
		}
	}
	return nil
}

// callsDirectly reports whether c calls the implementation h directly:
// prefer_local is on, and c comes from the implementation's own generated
// code (a client of another version goes through the transport, where
// schemas are checked).
func (n *Node) callsDirectly(c *Client, h *hosted) bool {
	return c.desc == h.desc && n.preferLocal()
}

// preferLocalWhileDraining makes calls to services hosted here direct, even
// with prefer_local off: requests still running during a drain may call
// services whose consumers have already stopped fetching.
func (n *Node) preferLocalWhileDraining() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.services {
		if s.hosted == nil {
			continue
		}
		for _, c := range s.clients {
			if c.desc == s.hosted.desc {
				c.local.Store(s.hosted)
			}
		}
	}
}

// needsKafka reports whether this node exchanges calls with other nodes.
func (n *Node) needsKafka() bool {
	p := n.opts.Placement
	return p != nil && (len(p.Nodes) > 1 || !p.PreferLocal)
}

// Start starts serving. With a placement that spans several nodes (or
// prefer_local off) it connects to Kafka, creates missing topics and joins
// the consumer groups of the services hosted here; it returns once the node
// can send and serve requests. The node's lock is not held while it waits
// on the network.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if !n.state.CompareAndSwap(nodeNew, nodeStarting) {
		n.mu.Unlock()
		return errors.New("molgen: node already started or closed")
	}
	var hosted []*service
	for _, s := range n.services {
		if s.hosted != nil {
			hosted = append(hosted, s)
		}
	}
	n.mu.Unlock()
	if !n.needsKafka() {
		n.state.CompareAndSwap(nodeStarting, nodeStarted)
		n.log.Debug("node started", "kafka", false)
		return nil
	}
	sort.Slice(hosted, func(i, j int) bool { return hosted[i].name < hosted[j].name })
	t, err := n.connect(ctx, hosted)
	if err != nil {
		n.state.Store(nodeClosed)
		return err
	}
	n.mu.Lock()
	if !n.state.CompareAndSwap(nodeStarting, nodeStarted) { // closed meanwhile
		n.mu.Unlock()
		t.Drain()
		return fmt.Errorf("molgen: node closed while starting: %w", ErrClosed)
	}
	n.remote.Store(&remote{t})
	n.mu.Unlock()
	return nil
}

// connect opens the Kafka transport and serves the hosted services on it.
func (n *Node) connect(ctx context.Context, hosted []*service) (transport.Transport, error) {
	p := n.opts.Placement
	brokers := n.opts.Brokers
	if len(brokers) == 0 {
		brokers = p.Kafka.Brokers
	}
	if len(brokers) == 0 {
		return nil, fmt.Errorf("molgen: node %q needs Kafka (placement %s spans %d nodes or has prefer_local off) but no brokers are set: add kafka.brokers to the placement, or pass -brokers / MOLGEN_KAFKA_BROKERS",
			n.name, p.Source, len(p.Nodes))
	}
	// Bound the whole start: topic creation and leader waits retry until
	// their context ends.
	ctx, cancel := context.WithTimeout(ctx, n.opts.ConnectTimeout+30*time.Second)
	defer cancel()
	sec, err := n.security()
	if err != nil {
		return nil, err
	}
	keys, err := n.signingKeys(hosted)
	if err != nil {
		return nil, err
	}
	set := kafka.DefaultSettings()
	set.ConnectTimeout = n.opts.ConnectTimeout
	set.SessionTimeout = n.opts.SessionTimeout
	if p.Kafka.GroupProtocol != "" {
		set.GroupProtocol = p.Kafka.GroupProtocol
	}
	t, err := kafka.New(ctx, kafka.Config{
		App:               p.App,
		Node:              n.name,
		Instance:          n.instance,
		Ephemeral:         n.ephemeral,
		Brokers:           brokers,
		Partitions:        p.Kafka.Partitions,
		ReplicationFactor: p.Kafka.ReplicationFactor,
		Logger:            n.log,
		ErrorReply:        errorReply,
		WaitForInstances:  p.Kafka.WaitForInstances,
		Settings:          set,
		Security:          sec,
		Keys:              keys,
	})
	if err != nil {
		return nil, err
	}
	for _, s := range hosted {
		h := s.hosted
		if err := t.Serve(ctx, transport.Service{Name: s.name, Handle: n.serve(h), Slots: h.slots}); err != nil {
			t.Drain()
			return nil, err
		}
	}
	n.log.Info("serving", "services", len(hosted))
	return t, nil
}

// security reads the TLS files and the SASL password that Options or
// the placement name.
func (n *Node) security() (kafka.Security, error) {
	sec := kafka.Security{Names: n.opts.KafkaSettingNames}
	t, s := n.opts.TLS, n.opts.SASL
	if t == nil {
		t = n.opts.Placement.Kafka.TLS
	}
	if s == nil {
		s = n.opts.Placement.Kafka.SASL
	}
	if t != nil {
		c, err := t.Config()
		if err != nil {
			return sec, fmt.Errorf("molgen: node %q: kafka.tls: %w", n.name, err)
		}
		if t.InsecureSkipVerify {
			n.log.Warn("TLS certificate verification is off (kafka.tls.insecure_skip_verify): anyone between this node and Kafka can read and change its traffic; use it for tests only")
		}
		sec.TLS = c
	}
	if s != nil {
		if err := placement.CheckSASL(s); err != nil {
			return sec, fmt.Errorf("molgen: node %q: kafka.sasl: %w", n.name, err)
		}
		pw, err := s.ResolvePassword()
		if err != nil {
			return sec, fmt.Errorf("molgen: node %q: kafka.sasl: %w", n.name, err)
		}
		mech, _ := placement.NormalizeMechanism(s.Mechanism)
		if mech == "PLAIN" && t == nil {
			n.log.Warn("SASL PLAIN without TLS sends the password in clear text: set kafka.tls")
		}
		sec.SASL = &kafka.SASL{Mechanism: mech, Username: s.Username, Password: pw}
	}
	return sec, nil
}

// signingKeys reads the keys that Options or the placement's
// security.signing name. A service's own key must be readable on the
// nodes that host it; a node that only calls it and cannot read it fails
// those calls at once, saying why.
func (n *Node) signingKeys(hosted []*service) (*envelope.Keys, error) {
	s := n.opts.Signing
	if s == nil {
		s = n.opts.Placement.Security.Signing
	}
	if s == nil {
		return nil, nil
	}
	var app [][]byte
	if s.App != nil {
		k, err := s.App.Resolve()
		if err != nil {
			return nil, fmt.Errorf("molgen: node %q: security.signing (%s): %w", n.name, s.App, err)
		}
		app = k
	}
	here := map[string]bool{}
	for _, h := range hosted {
		here[h.name] = true
	}
	services := map[string][][]byte{}
	missing := map[string]error{}
	for _, name := range s.ServiceNames() {
		src := s.Services[name]
		k, err := src.Resolve()
		switch {
		case err == nil:
			services[name] = k
		case here[name]:
			return nil, fmt.Errorf("molgen: node %q hosts service %q but cannot read its signing key (security.signing.services.%s, %s): %w", n.name, name, name, src, err)
		default:
			missing[name] = fmt.Errorf("molgen: service %q signs with a key of its own (security.signing.services.%s, %s) that node %q cannot read: %w", name, name, src, n.name, err)
		}
	}
	keys, err := envelope.NewKeys(app, services, missing)
	if err != nil {
		return nil, fmt.Errorf("molgen: node %q: security.signing: %w", n.name, err)
	}
	n.log.Info("signing requests and replies", "app_key", s.App != nil, "service_keys", len(services), "services_without_key_here", len(missing))
	return keys, nil
}

// Close stops taking requests, finishes and answers those in flight
// (remote requests and local oneway calls), commits their offsets and
// releases every Kafka connection. It is safe to call more than once.
func (n *Node) Close() error {
	n.mu.Lock()
	prev := n.state.Swap(nodeClosed)
	r := n.remote.Load()
	n.mu.Unlock()
	if prev == nodeClosed {
		return nil
	}
	// Local oneway calls may still call other nodes: let them finish while
	// the transport works.
	n.oneways.wait()
	var err error
	if r != nil {
		// Requests still running may call services hosted here whose
		// consumers are about to stop fetching: from now on such calls are
		// direct.
		n.preferLocalWhileDraining()
		err = r.t.Drain()
	}
	n.oneways.wait() // those that requests started while draining
	return err
}

// Stats counts a node's remote traffic since it started.
type Stats struct {
	Calls           int64 // remote calls sent that awaited a reply
	Served          int64 // requests this node ran for callers anywhere
	LateReplies     int64 // replies dropped: the call was over or already answered (retries)
	ExpiredRequests int64 // requests not run because their deadline had passed
	BadMessages     int64 // messages answered or dropped as malformed
	Panics          int64 // calls whose implementation panicked (remote requests and local oneway calls)
	OnewayErrors    int64 // oneway calls whose implementation failed (logged, as no caller waits)
	OrphanedReplies int64 // replies dropped because the caller's reply topic was gone
	TooLarge        int64 // replies over the size limit, answered with ErrTooLarge instead
	Forged          int64 // requests and replies dropped: not signed by the node's keys (security.signing)
	Misdirected     int64 // requests dropped: their reply topic is not one of the app's
	Duplicates      int64 // copies of a call this node ran or was running (a resend, a request written twice): not run again
}

// Stats returns the node's counters; the transport's are zero for a node
// without Kafka.
func (n *Node) Stats() Stats {
	st := Stats{
		Served:       n.stats.served.Load(),
		BadMessages:  n.stats.badMessages.Load(),
		Panics:       n.stats.panics.Load(),
		OnewayErrors: n.stats.onewayErrors.Load(),
	}
	if r := n.remote.Load(); r != nil {
		ts := r.t.Stats()
		st.Calls = ts.Calls
		st.LateReplies = ts.LateReplies
		st.ExpiredRequests = ts.Expired
		st.BadMessages += ts.BadMessages
		st.OrphanedReplies = ts.Orphaned
		st.TooLarge = ts.TooLarge
		st.Forged = ts.Forged
		st.Misdirected = ts.Misdirected
		st.Duplicates = ts.Duplicates
	}
	return st
}

// inflight counts work that Close waits for. Unlike a sync.WaitGroup it
// may gain work while someone waits (a request running during a drain may
// start a local oneway call).
type inflight struct {
	mu   sync.Mutex
	n    int
	idle *sync.Cond
}

func (f *inflight) add() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

func (f *inflight) done() {
	f.mu.Lock()
	f.n--
	if f.n == 0 && f.idle != nil {
		f.idle.Broadcast()
	}
	f.mu.Unlock()
}

// wait returns once nothing is in flight.
func (f *inflight) wait() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.idle == nil {
		f.idle = sync.NewCond(&f.mu)
	}
	for f.n > 0 {
		f.idle.Wait()
	}
}

func randomInstance() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomHex(4))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

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
	// DefaultTimeout bounds remote calls whose context has no deadline and
	// whose method has no //molgen:timeout. Zero means 30s.
	DefaultTimeout time.Duration
	// MaxConcurrent bounds the requests of each hosted service served at
	// once. Zero means 1024.
	MaxConcurrent int
	// ConnectTimeout bounds how long Start waits for Kafka to answer before
	// it fails with an error naming the brokers. Zero means 10s.
	ConnectTimeout time.Duration
	// SessionTimeout is the consumer-group session timeout: how long a dead
	// instance keeps its partitions before others take its requests over.
	// Zero means 6s (the broker's usual minimum).
	SessionTimeout time.Duration
}

// ServiceDesc describes a service; generated code declares one per service.
type ServiceDesc struct {
	Name      string // service name, e.g. "users"
	Interface string // Go interface, e.g. "example.com/blog/users.Users"
	Methods   []MethodDesc
}

// MethodDesc describes one method of a service.
type MethodDesc struct {
	Name string
	// Schema fingerprints the wire form of the arguments and results; a
	// server refuses requests whose schema differs from its own.
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
	ephemeral bool // the instance id was generated: its reply topic goes on Close

	mu       sync.Mutex
	services map[string]*service
	state    atomic.Int32 // nodeNew, nodeStarted, nodeClosed

	remote atomic.Pointer[kafkaTransport] // nil unless the placement needs Kafka
}

const (
	nodeNew int32 = iota
	nodeStarted
	nodeClosed
)

// service is a node's record of one service: its client and, when hosted
// here, its implementation.
type service struct {
	topicReady atomic.Bool // its request topic is known to exist
	name       string
	desc       *ServiceDesc
	client     *Client
	hosted     *hosted
}

// hosted is an implementation registered on this node.
type hosted struct {
	desc     *ServiceDesc
	impl     any
	handlers []Handler
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
		log:       log.With("node", name, "instance", instance),
		services:  map[string]*service{},
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

func (n *Node) serviceLocked(desc *ServiceDesc) *service {
	s := n.services[desc.Name]
	if s == nil {
		s = &service{name: desc.Name, desc: desc}
		s.client = &Client{node: n, svc: s, desc: desc}
		n.services[desc.Name] = s
	}
	return s
}

// Client returns the node's client for the service desc describes.
// Generated NewXClient functions call it.
func (n *Node) Client(desc *ServiceDesc) *Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.serviceLocked(desc).client
}

// Register hosts impl as the service desc describes. Generated RegisterX
// functions call it. It fails when the service is registered twice, when
// the placement puts it on another node, or after Start.
func (n *Node) Register(desc *ServiceDesc, impl any, handlers []Handler) error {
	if len(handlers) != len(desc.Methods) {
		return fmt.Errorf("molgen: service %q: %d handlers for %d methods (re-run molgen generate)", desc.Name, len(handlers), len(desc.Methods))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.state.Load() {
	case nodeStarted:
		return fmt.Errorf("molgen: service %q registered after the node started", desc.Name)
	case nodeClosed:
		return fmt.Errorf("molgen: service %q registered on a closed node", desc.Name)
	}
	if !n.placedHere(desc.Name) {
		return fmt.Errorf("molgen: service %q is not placed on node %q by %s (it is on %s)",
			desc.Name, n.opts.Node, n.opts.Placement.Source, n.opts.Placement.NodesOf(desc.Name))
	}
	s := n.serviceLocked(desc)
	if s.hosted != nil {
		return fmt.Errorf("molgen: service %q is already registered on this node", desc.Name)
	}
	h := &hosted{desc: desc, impl: impl, handlers: handlers}
	s.hosted = h
	if n.preferLocal() {
		s.client.local.Store(h)
	}
	return nil
}

// preferLocalWhileDraining makes calls to services hosted here direct, even
// with prefer_local off: requests still running during a drain may call
// services whose consumers have already stopped fetching.
func (n *Node) preferLocalWhileDraining() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.services {
		if s.hosted != nil {
			s.client.local.Store(s.hosted)
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
// can send and serve requests.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.state.CompareAndSwap(nodeNew, nodeStarted) {
		return errors.New("molgen: node already started or closed")
	}
	if !n.needsKafka() {
		n.log.Debug("node started", "kafka", false)
		return nil
	}
	// Bound the whole start: topic creation and leader waits retry until
	// their context ends.
	ctx, cancel := context.WithTimeout(ctx, n.opts.ConnectTimeout+30*time.Second)
	defer cancel()
	t, err := newKafkaTransport(ctx, n)
	if err != nil {
		n.state.Store(nodeClosed)
		return err
	}
	n.remote.Store(t)
	return nil
}

// Close stops taking requests, finishes and answers those in flight,
// commits their offsets and releases every Kafka connection. It is safe to
// call more than once.
func (n *Node) Close() error {
	n.mu.Lock()
	prev := n.state.Swap(nodeClosed)
	remote := n.remote.Load()
	n.mu.Unlock()
	if prev == nodeClosed || remote == nil {
		return nil
	}
	// Requests still running may call services hosted here whose consumers
	// are about to stop fetching: from now on such calls are direct.
	n.preferLocalWhileDraining()
	return remote.close()
}

// Stats counts a node's remote traffic since it started.
type Stats struct {
	Calls           int64 // remote calls sent that awaited a reply
	Served          int64 // requests this node ran for callers anywhere
	LateReplies     int64 // replies dropped: the call was over or already answered (retries)
	ExpiredRequests int64 // requests not run because their deadline had passed
	BadMessages     int64 // messages answered or dropped as malformed
	Panics          int64 // requests whose implementation panicked
}

// Stats returns the node's counters; they are zero for a node without Kafka.
func (n *Node) Stats() Stats {
	t := n.remote.Load()
	if t == nil {
		return Stats{}
	}
	return Stats{
		Calls:           t.stats.calls.Load(),
		Served:          t.stats.served.Load(),
		LateReplies:     t.stats.lateReplies.Load(),
		ExpiredRequests: t.stats.expired.Load(),
		BadMessages:     t.stats.badMessages.Load(),
		Panics:          t.stats.panics.Load(),
	}
}

// Client is a node's handle on one service, used by generated clients.
type Client struct {
	local atomic.Pointer[hosted] // set when calls may go straight to a local implementation
	node  *Node
	svc   *service
	desc  *ServiceDesc

	headersOnce sync.Once
	headers     [][]kafka.Header // per method, the request headers all calls share
}

// Local returns the implementation to call directly, or nil when the call
// must go through Kafka.
func (c *Client) Local() any {
	if h := c.local.Load(); h != nil {
		return h.impl
	}
	return nil
}

// Panicked turns the value a local call panicked with into a *PanicError
// for the caller, and logs it. Generated clients call it from a deferred
// recover around local calls.
func (c *Client) Panicked(method int, value any) error {
	pe := &PanicError{Service: c.desc.Name, Method: c.desc.Methods[method].Name, Value: value, Stack: debug.Stack()}
	c.node.log.Error("service panicked", "service", pe.Service, "method", pe.Method, "panic", fmt.Sprint(value), "stack", string(pe.Stack))
	return pe
}

// Call sends a request to the service and waits for its response, within
// the deadline of ctx, else the method's timeout, else the node's default.
func (c *Client) Call(ctx context.Context, method int, req, resp Message) error {
	m := &c.desc.Methods[method]
	// With Kafka, the transport decides: while the node drains, requests
	// still running may call other nodes; once drained it refuses.
	if t := c.node.remote.Load(); t != nil {
		return t.call(ctx, c, method, req, resp)
	}
	if c.node.state.Load() == nodeClosed {
		return &CallError{Service: c.desc.Name, Method: m.Name, Err: ErrClosed}
	}
	c.node.mu.Lock()
	h := c.svc.hosted
	c.node.mu.Unlock()
	if h != nil && c.node.state.Load() != nodeNew {
		// Hosted here but not called directly: only with prefer_local off,
		// which needs Kafka; reaching this means the node was never started.
		return &CallError{Service: c.desc.Name, Method: m.Name, Err: fmt.Errorf("%w: node not started", ErrNoRoute)}
	}
	if c.node.opts.Placement == nil {
		return &CallError{Service: c.desc.Name, Method: m.Name,
			Err: fmt.Errorf("%w: service %q is not registered on this node, and a node without a placement has no Kafka transport", ErrNoRoute, c.desc.Name)}
	}
	if c.node.state.Load() == nodeNew {
		return &CallError{Service: c.desc.Name, Method: m.Name, Err: fmt.Errorf("%w: service %q is remote and the node is not started yet", ErrNoRoute, c.desc.Name)}
	}
	return &CallError{Service: c.desc.Name, Method: m.Name,
		Err: fmt.Errorf("%w: service %q is placed on %s, not on node %q", ErrNoRoute, c.desc.Name, c.node.opts.Placement.NodesOf(c.desc.Name), c.node.opts.Node)}
}

func randomInstance() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	return fmt.Sprintf("%s-%d-%s", sanitize(host), os.Getpid(), randomHex(4))
}

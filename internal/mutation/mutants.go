package main

// A mutant replaces one exact piece of text (which must occur once) in one
// file, and names the tests that must then fail.
type mutant struct {
	name  string   // short id, for -run
	what  string   // the breakage, as a reader would describe it
	file  string   // relative to the checkout
	from  string   // exact text, found once
	to    string   // its replacement
	pkgs  []string // packages whose tests guard it
	tests string   // -run pattern within pkgs ("" = all)
}

const (
	testsvc  = "./internal/testsvc"
	rt       = "./runtime"
	blog     = "./examples/blog"
	cli      = "./cmd/molgen"
	generate = "./internal/generate"
)

var mutants = []mutant{
	// The server side of a remote call.
	{
		name: "server-ignores-deadline",
		what: "the handler's context ends a day after the request's deadline",
		file: "runtime/internal/kafka/handle.go",
		from: "ctx := &j.ctx\n\tctx.deadline = deadline\n",
		to:   "ctx := &j.ctx\n\tctx.deadline = deadline.Add(24 * time.Hour)\n",
		pkgs: []string{testsvc}, tests: "Deadline",
	},
	{
		name: "tracker-commits-running",
		what: "the offset tracker commits past requests still running",
		file: "runtime/internal/kafka/offsets.go",
		from: "next = min(next, o)",
		to:   "_ = o",
		pkgs: []string{"./runtime/internal/kafka", testsvc}, tests: "PartitionCommits|Killed",
	},
	{
		name: "rebalance-without-grace",
		what: "a member rejoins at once on a rebalance, leaving its requests to run again elsewhere",
		file: "runtime/internal/kafka/serve.go",
		from: "if !waitFor(&p.requests, time.Until(until)) {",
		to:   "if !waitFor(&p.requests, 0) {",
		pkgs: []string{testsvc}, tests: "CleanRebalances",
	},
	{
		name: "deadline-not-clamped",
		what: "a request may hold a slot until a deadline a century away",
		file: "runtime/internal/kafka/handle.go",
		from: "if limit := now.Add(s.t.set.MaxDeadline); deadline.After(limit) {",
		to:   "if limit := now.Add(s.t.set.MaxDeadline); false && deadline.After(limit) {",
		pkgs: []string{testsvc}, tests: "FarDeadlines",
	},
	{
		name: "max-concurrent-ignored",
		what: "Options.MaxConcurrent is ignored",
		file: "runtime/node.go",
		from: "slots: make(chan struct{}, n.opts.MaxConcurrent)",
		to:   "slots: make(chan struct{}, 1024)",
		pkgs: []string{testsvc}, tests: "MaxConcurrent",
	},
	{
		name: "expired-not-counted",
		what: "expired requests are skipped but not counted",
		file: "runtime/internal/kafka/handle.go",
		from: "s.t.stats.expired.Add(1)\n",
		to:   "\n",
		pkgs: []string{testsvc}, tests: "Expired",
	},
	{
		name: "reply-lookup-creates",
		what: "a reply is written (and its topic looked up in a way that may auto-create it) though the caller's reply topic is gone",
		file: "runtime/internal/kafka/handle.go",
		from: "\t\tif !known {\n",
		to:   "\t\tif _ = known; false {\n",
		pkgs: []string{testsvc}, tests: "MissingTopic|GoneCaller",
	},

	// The caller side.
	{
		name: "default-timeout-ignored",
		what: "Options.DefaultTimeout is ignored",
		file: "runtime/client.go",
		from: "return c.node.opts.DefaultTimeout",
		to:   "return 30 * time.Second",
		pkgs: []string{testsvc}, tests: "DefaultTimeout",
	},
	{
		name: "oneway-waits",
		what: "a oneway call waits for a reply like any other",
		file: "runtime/client.go",
		from: "if m.Oneway {\n\t\terr = r.t.Send(ctx, treq)",
		to:   "if false {\n\t\terr = r.t.Send(ctx, treq)",
		pkgs: []string{testsvc}, tests: "Oneway",
	},
	{
		name: "caller-encode-panic",
		what: "a panic in the caller's MarshalBinary is not recovered",
		file: "runtime/client.go",
		from: "func (c *Client) encodeRequest(m *MethodDesc, req Message, e *Encoder) (err error) {\n\tdefer func() {\n\t\tif r := recover(); r != nil {",
		to:   "func (c *Client) encodeRequest(m *MethodDesc, req Message, e *Encoder) (err error) {\n\tdefer func() {\n\t\tif r := recover(); false && r != nil {",
		pkgs: []string{testsvc}, tests: "PanicsInUserCodecs",
	},
	{
		name: "other-session-replies",
		what: "replies of an earlier process with the same reply topic answer calls",
		file: "runtime/internal/kafka/replies.go",
		from: "if err != nil || session != c.session {",
		to:   "if err != nil || session == \"\" {",
		pkgs: []string{testsvc}, tests: "OtherSession|AnotherSession",
	},
	{
		name: "reply-partitions-unchecked",
		what: "a reply topic with several partitions is accepted",
		file: "runtime/internal/kafka/replies.go",
		from: "len(md.Topics[0].Partitions) != 1 {",
		to:   "len(md.Topics[0].Partitions) < 1 {",
		pkgs: []string{testsvc}, tests: "SeveralPartitions",
	},
	{
		name: "reply-topic-kept",
		what: "a generated instance's reply topic is not deleted on Close",
		file: "runtime/internal/kafka/transport.go",
		from: "if t.cfg.Ephemeral {",
		to:   "if false {",
		pkgs: []string{testsvc}, tests: "ReplyTopicIsDeleted",
	},

	// Routing by placement.
	{
		name: "colocated-over-kafka",
		what: "co-located services are called over Kafka (prefer_local ignored)",
		file: "runtime/node.go",
		from: "return c.desc == h.desc && n.preferLocal()",
		to:   "return false",
		pkgs: []string{blog}, tests: "Architectures",
	},
	{
		name: "all-local",
		what: "hosted services are called directly even with prefer_local off",
		file: "runtime/node.go",
		from: "return c.desc == h.desc && n.preferLocal()",
		to:   "return c.desc == h.desc",
		pkgs: []string{blog, testsvc}, tests: "Architectures|ThroughKafka",
	},
	{
		name: "register-after-start",
		what: "a service may be registered after the node started",
		file: "runtime/node.go",
		from: "case nodeStarting, nodeStarted:\n\t\treturn fmt.Errorf(",
		to:   "case -1:\n\t\treturn fmt.Errorf(",
		pkgs: []string{testsvc}, tests: "Lifecycle",
	},

	// The same behaviour on every placement (local calls take the path of
	// remote ones).
	{
		name: "local-canceled-runs",
		what: "a local call with a context already done runs the implementation",
		file: "runtime/client.go",
		from: "if err != nil {\n\t\treturn ctx, c.fail(method, err)\n\t}",
		to:   "if false {\n\t\treturn ctx, c.fail(method, err)\n\t}",
		pkgs: []string{testsvc}, tests: "Parity",
	},
	{
		name: "context-error-unwrapped",
		what: "a call whose context ends returns the bare context error locally",
		file: "runtime/client.go",
		from: "if cerr == nil || !errors.Is(err, cerr) {",
		to:   "if cerr == nil || !errors.Is(err, cerr) || true {",
		pkgs: []string{testsvc}, tests: "Parity",
	},
	{
		name: "local-oneway-waits",
		what: "a local oneway call runs on the caller's goroutine",
		file: "runtime/client.go",
		from: "c.node.oneways.add()\n\tgo func() {",
		to:   "c.node.oneways.add()\n\tfunc() {",
		pkgs: []string{testsvc}, tests: "Parity",
	},
	{
		name: "observer-misses-local",
		what: "an Observer does not see local calls",
		file: "runtime/client.go",
		from: "if c.observed {\n\t\treturn c.observeStart(ctx, method, false, 0), nil",
		to:   "if false {\n\t\treturn c.observeStart(ctx, method, false, 0), nil",
		pkgs: []string{testsvc}, tests: "Observer",
	},

	// The wire format and generated code.
	{
		name: "floats-big-endian",
		what: "float64 is big endian both ways (docs/WIRE.md says little)",
		file: "runtime/codec.go",
		from: "e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(v))",
		to:   "e.buf = binary.BigEndian.AppendUint64(e.buf, math.Float64bits(v))",
		pkgs: []string{testsvc}, tests: "Wire",
	},
	{
		name: "decoder-swaps-arguments",
		what: "a request decoder reads two arguments of one type in swapped order",
		file: "internal/testsvc/molgen_gen.go",
		from: "\tm.A0 = d.String()\n\tm.A1 = d.String()\n\tm.A2 = d.String()\n",
		to:   "\tm.A1 = d.String()\n\tm.A0 = d.String()\n\tm.A2 = d.String()\n",
		pkgs: []string{testsvc}, tests: "Wire|ThroughKafka|Concat",
	},

	// The node binary.
	{
		name: "mains-not-cancelled",
		what: "when a main fails, the node's other mains are not cancelled",
		file: "runtime/nodemain/nodemain.go",
		from: "status = 1\n\t\t\t\tmu.Unlock()\n\t\t\t\tcancel()",
		to:   "status = 1\n\t\t\t\tmu.Unlock()",
		pkgs: []string{"./runtime/nodemain"}, tests: "RunNode",
	},
	{
		name: "brokers-env-ignored",
		what: "MOLGEN_KAFKA_BROKERS is ignored",
		file: "runtime/nodemain/nodemain.go",
		from: `fs.String("brokers", os.Getenv("MOLGEN_KAFKA_BROKERS"),`,
		to:   `fs.String("brokers", "",`,
		pkgs: []string{"./runtime/nodemain"}, tests: "RunNode",
	},
	{
		name: "second-signal-waits",
		what: "a second signal while draining does not exit at once",
		file: "runtime/nodemain/nodemain.go",
		from: "os.Exit(1)",
		to:   "_ = 1",
		pkgs: []string{"./runtime/nodemain"}, tests: "RunNode",
	},

	// Local calls.
	{
		name: "local-call-allocates",
		what: "a local call allocates",
		file: "runtime/client.go",
		from: "if h := c.local.Load(); h != nil {\n\t\treturn h.impl",
		to:   "if h := c.local.Load(); h != nil {\n\t\t_ = fmt.Sprint(h.desc.Name)\n\t\treturn h.impl",
		pkgs: []string{testsvc}, tests: "Alloc",
	},

	// Observability.
	{
		name: "server-drops-trace",
		what: "a server does not continue the trace of the request it serves",
		file: "runtime/serve.go",
		from: "ctx = n.extractTrace(ctx, req.Trace)",
		to:   "_ = req.Trace",
		pkgs: []string{blog, testsvc}, tests: "TraceAcrossThreeNodes|TraceContextWithoutTracer",
	},
	{
		name: "reply-without-trace",
		what: "replies carry no trace context",
		file: "runtime/internal/kafka/trust.go",
		from: "rec.Topic, rec.Value, rec.Headers = replyTo, reply.Payload, withTrace(headers, reply.Trace)",
		to:   "rec.Topic, rec.Value, rec.Headers = replyTo, reply.Payload, headers",
		pkgs: []string{blog, testsvc}, tests: "TraceAcrossThreeNodes|TraceContextWithoutTracer",
	},
	{
		name: "ready-before-assignment",
		what: "a node is ready before its consumer groups have assigned it partitions",
		file: "runtime/internal/kafka/health.go",
		from: "if !s.joined.Load() {",
		to:   "if false && !s.joined.Load() {",
		pkgs: []string{"./runtime/internal/kafka", testsvc}, tests: "Readiness|ReadyOnlyOnceAssigned",
	},
	{
		name: "ready-before-replies",
		what: "a node is ready before it has read its reply topic",
		file: "runtime/internal/kafka/health.go",
		from: "if !t.calls.read.Load() {",
		to:   "if false {",
		pkgs: []string{"./runtime/internal/kafka"}, tests: "ReadyOnlyOnceAssigned",
	},
	{
		name: "ready-while-draining",
		what: "a transport that drains still reports itself ready",
		file: "runtime/internal/kafka/transport.go",
		from: "t.draining.Store(true)",
		to:   "t.draining.Store(false)",
		pkgs: []string{"./runtime/internal/kafka"}, tests: "ReadyOnlyOnceAssigned",
	},
	{
		name: "local-call-counted-once",
		what: "a local call is counted on the caller's side only",
		file: "runtime/telemetry.go",
		from: "\t\trecord(false)\n\t\trecord(true)\n",
		to:   "\t\trecord(false)\n",
		pkgs: []string{"./runtime/nodemain"}, tests: "NodeHTTPEndpoint",
	},
	{
		name: "stage-missing",
		what: "a remote call's span lacks the arrival of its reply",
		file: "runtime/telemetry.go",
		from: `span.AddEvent("reply received", trace.WithTimestamp(c.Received))`,
		to:   `_ = c.Received`,
		pkgs: []string{blog}, tests: "TraceAcrossThreeNodes",
	},
	{
		name: "lag-not-noted",
		what: "consumer lag is never recorded",
		file: "runtime/internal/kafka/serve.go",
		from: "s.noteLag(fp.Partition, fp.Records[n-1].Offset, fp.HighWatermark)",
		to:   "_ = fp.HighWatermark",
		pkgs: []string{testsvc}, tests: "NodeMetrics",
	},

	// The tools.
	{
		name: "stale-generated-code",
		what: "a service of the repository changed without re-running molgen generate",
		file: "internal/testsvc/calc.go",
		from: "// Add is the benchmark method.",
		to:   "// Add adds.",
		pkgs: []string{generate}, tests: "CheckedInGeneratedFilesAreCurrent",
	},
	{
		name: "build-skips-regeneration",
		what: "molgen build compiles stale generated files as they are",
		file: "internal/build/build.go",
		from: "changed, err := r.Commit()",
		to:   "changed, err := r.Stale(), error(nil)",
		pkgs: []string{cli}, tests: "BuildRegenerates",
	},
	{
		name: "check-ignores-prefer-local",
		what: "check and graph report a co-located call as local with prefer_local off",
		file: "internal/app/layout.go",
		from: "if l.PreferLocal && l.hosts(node, e.To) {",
		to:   "if l.hosts(node, e.To) {",
		pkgs: []string{cli}, tests: "",
	},
	// Hostile input and the franz-go transport.
	{
		name: "schema-depth-unbounded",
		what: "the schema parser nests without bound (an 8 MB header overflowed the stack)",
		file: "runtime/schema/schema.go",
		from: "\tif depth > MaxDepth {\n\t\tp.errorf",
		to:   "\tif depth > 1000*MaxDepth {\n\t\tp.errorf",
		pkgs: []string{"./runtime/schema"}, tests: "BoundsDepth",
	},
	{
		name: "decode-budget-unpaid",
		what: "a slice is allocated without paying the decode memory budget",
		file: "runtime/codec.go",
		from: "if n < 0 || !d.charge(uint64(n), unsafe.Sizeof(zero)) {\n\t\treturn []T{}",
		to:   "if _ = zero; n < 0 {\n\t\treturn []T{}",
		pkgs: []string{rt}, tests: "Budget",
	},
	{
		name: "verdict-cache-unbounded",
		what: "the schema verdict cache keeps every pair peers send",
		file: "runtime/schema.go",
		from: "if len(verdicts.m) >= verdictsMax {",
		to:   "if false {",
		pkgs: []string{rt}, tests: "Verdicts",
	},
	{
		name: "reply-to-unchecked",
		what: "a server writes replies wherever a request's reply-to points",
		file: "runtime/internal/kafka/handle.go",
		from: "if replyTo != \"\" && !envelope.ValidReplyTo(s.t.cfg.App, replyTo) {",
		to:   "if false {",
		pkgs: []string{testsvc}, tests: "RepliesGoOnly",
	},
	{
		name: "unsigned-request-runs",
		what: "a request that the node's keys did not sign is run",
		file: "runtime/internal/kafka/handle.go",
		from: "if err := ring.Verify(&f, in.sig); err != nil {",
		to:   "if err := ring.Verify(&f, in.sig); err != nil && false {",
		pkgs: []string{testsvc}, tests: "SignedRequests",
	},
	{
		name: "forged-reply-returned",
		what: "a reply that the service's keys did not sign answers the call",
		file: "runtime/internal/kafka/replies.go",
		from: "if w != nil && call.ring != nil && !c.t.replySigned(&call, c.topic, m) {",
		to:   "if _ = call; false {",
		pkgs: []string{testsvc}, tests: "ForgedReplies",
	},
	{
		name: "late-reply-kept",
		what: "a waiter goes back to the pool with a reply its call never read",
		file: "runtime/internal/kafka/call.go",
		from: "\t\tselect {\n\t\tcase <-w.ch: // a reply handed over as the call ended\n\t\tdefault:\n\t\t}\n",
		to:   "",
		pkgs: []string{"./runtime/internal/kafka"}, tests: "LateReply",
	},
	{
		name: "reply-to-reused-waiter",
		what: "a reply is handed to a waiter that a new call took over",
		file: "runtime/internal/kafka/replies.go",
		from: "if w != nil && c.pending[id] == w {",
		to:   "if w != nil {",
		pkgs: []string{"./runtime/internal/kafka"}, tests: "LateReply",
	},
	{
		name: "compression-bomb-stalls",
		what: "a batch over the decompression limit stops its partition for good",
		file: "runtime/internal/kafka/serve.go",
		from: "\tvar big *kgo.ErrDecompressTooLarge\n\tif !errors.As(err, &big) {",
		to:   "\tvar big *kgo.ErrDecompressTooLarge\n\tif true || !errors.As(err, &big) {",
		pkgs: []string{"./runtime/internal/kafka"}, tests: "CompressionBomb",
	},
	{
		name: "topics-replication-one",
		what: "topics are created with one replica, whatever the cluster's default",
		file: "runtime/internal/kafka/topics.go",
		from: "rf := int16(-1) // the cluster's default.replication.factor",
		to:   "rf := int16(1) // the cluster's default.replication.factor",
		pkgs: []string{"./runtime/internal/kafka"}, tests: "ReplicationFactor",
	},
	{
		name: "topic-auth-retried",
		what: "a topic the node may not use is waited for until the call's deadline",
		file: "runtime/internal/kafka/topics.go",
		from: "if terr := kerr.ErrorForCode(mt.ErrorCode); terr != nil && !kerr.IsRetriable(terr) {",
		to:   "if terr := kerr.ErrorForCode(mt.ErrorCode); terr != nil && !kerr.IsRetriable(terr) && false {",
		pkgs: []string{blog}, tests: "OutsideTheCallGraph",
	},
	{
		name: "call-waits-for-write",
		what: "a call waits for its write's outcome without its deadline (a hung broker held calls past it)",
		file: "runtime/internal/kafka/call.go",
		from: "\tvar resendAt, checkAt time.Time // zero: none due\n",
		to:   "\tfor i := 0; w.sent.Load() == 0 && i < 10000; i++ {\n\t\ttime.Sleep(time.Millisecond)\n\t}\n\tvar resendAt, checkAt time.Time\n",
		pkgs: []string{testsvc}, tests: "DeadlinesHold",
	},
	{
		name: "leader-move-warns",
		what: "a routine leader move is logged as a WARN",
		file: "runtime/internal/kafka/watch.go",
		from: "w.t.log.Info(\"a partition's leader moved\"",
		to:   "w.t.log.Warn(\"a partition's leader moved\"",
		pkgs: []string{testsvc}, tests: "LeaderAndCoordinatorMoves",
	},
	{
		name: "purge-not-renew",
		what: "the writer forgets a topic it wrote to under its old producer id (the broker drops the next records as duplicates)",
		file: "runtime/internal/kafka/writer.go",
		from: "\tcl, err := wr.t.cfg.newClient(producerOpts(wr.t.set, wr.t.topics.limit)...)\n",
		to:   "\told.PurgeTopicsFromProducing(topics...)\n\tif true {\n\t\treturn\n\t}\n\tcl, err := wr.t.cfg.newClient(producerOpts(wr.t.set, wr.t.topics.limit)...)\n",
		pkgs: []string{"./runtime/internal/kafka"}, tests: "ForgettingATopic",
	},
	{
		name: "healthz-asks-kafka",
		what: "liveness fails during a Kafka outage (every pod restarts while Kafka is away)",
		file: "runtime/internal/kafka/health.go",
		from: "\t\tif since := time.Since(time.Unix(0, last)); since > wedgedAfter {\n",
		to:   "\t\tif since := time.Since(time.Unix(0, last)); since > wedgedAfter || t.watch.outage.isDown() {\n",
		pkgs: []string{"./runtime/nodemain"}, tests: "ProbesFollowKafka",
	},
	{
		name: "readyz-ignores-kafka",
		what: "readiness stays 200 while no broker answers",
		file: "runtime/internal/kafka/health.go",
		from: "\tif t.watch.outage.isDown() {\n\t\treturn fmt.Errorf(\"Kafka at %s does not answer\"",
		to:   "\tif false {\n\t\treturn fmt.Errorf(\"Kafka at %s does not answer\"",
		pkgs: []string{"./runtime/nodemain"}, tests: "ProbesFollowKafka",
	},
	{
		name: "one-hung-broker-is-outage",
		what: "a probe that hit the one hung broker of three counts as an outage",
		file: "runtime/internal/kafka/watch.go",
		from: "\t\tif other := w.askEachBroker(ctx, topics); other != nil {\n",
		to:   "\t\tif other := w.askEachBroker(ctx, topics); false && other != nil {\n",
		pkgs: []string{"./runtime/internal/kafka"}, tests: "OneHungBroker",
	},
	{
		name: "no-instance-written",
		what: "a call to a service without instances is written before it fails with ErrNoInstance (it runs when an instance starts)",
		file: "runtime/internal/kafka/call.go",
		from: "\t\tif err := t.admit(ctx, req.Deadline, r); err != nil {\n",
		to:   "\t\tif err := t.admit(ctx, req.Deadline, r); false && err != nil {\n",
		pkgs: []string{testsvc}, tests: "NoInstanceNeverRunsLater",
	},
	{
		name: "lost-instances-is-no-instance",
		what: "a written call whose service lost its instances says ErrNoInstance (it may still run)",
		file: "runtime/internal/kafka/instances.go",
		from: "func (e *lostInstancesError) Unwrap() error { return transport.ErrMayHaveRun }",
		to:   "func (e *lostInstancesError) Unwrap() error { return transport.ErrNoInstance }",
		pkgs: []string{testsvc}, tests: "NoInstanceNeverRunsLater",
	},
}

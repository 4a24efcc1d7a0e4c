// Package nodemain is the command line of the node binaries that
// 'molgen build' writes: flags, environment, signals, exit statuses. The
// library API (runtime.NewNode and friends) knows nothing of it.
package nodemain

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/molgen/molgen/runtime"
	"github.com/molgen/molgen/runtime/placement"
	"github.com/molgen/molgen/runtime/profile/record"
)

// Program is what a binary built by 'molgen build' runs: the node's
// name, the embedded placement, how to construct the services it hosts,
// and the mains it runs. Generated node mains fill it in.
type Program struct {
	Node          string
	PlacementFile string // the placement's file name, for messages
	Placement     string // the placement's YAML; empty for a monolith
	// Services and Mains list every name in the app, to validate the
	// placement against.
	Services, Mains []string
	// Setup constructs the services hosted on this node and registers them.
	Setup func(ctx context.Context, n *runtime.Node) error
	// Run lists the mains placed on this node.
	Run []Main
}

// Main is one //molgen:main, with its dependencies bound to clients of n.
type Main struct {
	Name string
	Run  func(ctx context.Context, n *runtime.Node) error
}

// Run runs a node binary: it parses the command line, builds the node,
// starts its services, runs its mains and returns the exit status. With no
// mains it serves until SIGINT or SIGTERM; in every case it drains in-flight
// calls before exiting.
func Run(p Program) int {
	return run(p, os.Args[1:], os.Stdout, os.Stderr)
}

func run(p Program, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(p.Node, flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", os.Getenv("MOLGEN_KAFKA_BROKERS"), "Kafka bootstrap brokers `host:port,...` (env MOLGEN_KAFKA_BROKERS; default: the placement's kafka.brokers)")
	instance := fs.String("instance", os.Getenv("MOLGEN_INSTANCE"), "this instance's `id`, unique among running copies of the node (env MOLGEN_INSTANCE; default: host-pid-random)")
	only := fs.String("mains", "", "run only these mains of the node, comma-separated (default: all placed on it)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	connect := fs.Duration("kafka-wait", 10*time.Second, "how long to wait for Kafka to answer at start before failing")
	rf := fs.Int("kafka-replication-factor", envInt("MOLGEN_KAFKA_REPLICATION_FACTOR"), "replication `factor` of the topics this node creates (env MOLGEN_KAFKA_REPLICATION_FACTOR; default: the placement's kafka.replication_factor, else the cluster's default.replication.factor)")
	groupProtocol := fs.String("kafka-group-protocol", os.Getenv("MOLGEN_KAFKA_GROUP_PROTOCOL"), "consumer group `protocol`: classic (cooperative-sticky) or consumer (KIP-848) (env MOLGEN_KAFKA_GROUP_PROTOCOL; default: the placement's kafka.group_protocol, else classic)")
	security := placement.AddSecurityFlags(fs)
	profilePath := fs.String("profile", os.Getenv("MOLGEN_PROFILE"), "record traffic and write the node's profile to `file` when it exits and on SIGUSR1 (env MOLGEN_PROFILE); a directory, or a path ending in /, gets <node>-<instance>.json; merge the files with 'molgen profile merge'")
	session := fs.Duration("session-timeout", 6*time.Second, "consumer-group session timeout: how soon a dead instance's requests move to another (the broker's group.min.session.timeout.ms bounds it)")
	httpAddr := fs.String("http", os.Getenv("MOLGEN_HTTP_ADDR"), "serve /metrics (Prometheus), /healthz and /readyz on `addr`, e.g. :9464 (env MOLGEN_HTTP_ADDR; default: off)")
	logFormat := fs.String("log-format", envOr("MOLGEN_LOG_FORMAT", "text"), "log format: text or json (env MOLGEN_LOG_FORMAT)")
	version := fs.Bool("version", false, "print the molgen version, app, node and what it runs, and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s [flags]\n\nNode %q", os.Args[0], p.Node)
		if p.PlacementFile != "" {
			fmt.Fprintf(stderr, " of placement %s", p.PlacementFile)
		}
		fmt.Fprintf(stderr, ", built by molgen. It runs mains: %s.\n\n", mainNames(p.Run))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *version {
		printVersion(stdout, p)
		return 0
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "%s: invalid -log-level %q\n", p.Node, *level)
		return 2
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = slog.NewTextHandler(stderr, hopts)
	case "json":
		handler = slog.NewJSONHandler(stderr, hopts)
	default:
		fmt.Fprintf(stderr, "%s: invalid -log-format %q (want text or json)\n", p.Node, *logFormat)
		return 2
	}
	// Records logged with a context that holds a span carry its ids.
	log := slog.New(runtime.TraceLogHandler(handler))
	slog.SetDefault(log) // services and mains that log with slog share the node's handler

	opts := runtime.Options{Logger: log, Instance: *instance, SessionTimeout: *session, ConnectTimeout: *connect}
	app := ""
	if p.Placement != "" {
		pl, err := placement.Check(p.PlacementFile, []byte(p.Placement), p.Services, p.Mains)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		opts.Placement, opts.Node = pl, p.Node
		if err := applySecurity(security, pl, &opts); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", p.Node, err)
			return 2
		}
		if err := applyKafkaFlags(pl, *rf, *groupProtocol); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", p.Node, err)
			return 2
		}
		app = pl.App
	}
	serviceName := p.Node
	if app != "" {
		serviceName = app + "-" + p.Node
	}
	tel, err := setupTelemetry(context.Background(), telemetryConfig{
		serviceName: serviceName, instance: *instance, app: app, node: p.Node, prometheus: *httpAddr != "", console: stderr,
	})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Node, err)
		return 2
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.close(ctx); err != nil {
			log.Warn("flushing telemetry", "err", err)
		}
	}()
	if tel.tracer != nil {
		opts.TracerProvider = tel.tracer
	}
	if tel.meter != nil {
		opts.MeterProvider = tel.meter
	}
	if *brokers != "" {
		for _, b := range strings.Split(*brokers, ",") {
			if b = strings.TrimSpace(b); b != "" {
				opts.Brokers = append(opts.Brokers, b)
			}
		}
	}
	var rec *record.Recorder
	if *profilePath != "" {
		rec = record.New()
		opts.Observer = rec
	}
	mains := p.Run
	if *only != "" {
		mains = nil
		for _, name := range strings.Split(*only, ",") {
			found := false
			for _, m := range p.Run {
				if m.Name == strings.TrimSpace(name) {
					mains, found = append(mains, m), true
				}
			}
			if !found {
				fmt.Fprintf(stderr, "%s: -mains: node %q has no main %q (it has: %s)\n", p.Node, p.Node, name, mainNames(p.Run))
				return 2
			}
		}
	}

	n, err := runtime.NewNode(opts)
	if err != nil {
		log.Error("creating node", "err", err)
		return 1
	}
	var writeProfile func() error
	if rec != nil {
		writeProfile = profileWriter(p, opts, n, rec, *profilePath)
		stopDumps := dumpProfileOnSignal(log, writeProfile)
		defer stopDumps()
	}
	if *httpAddr != "" {
		// Up before the node starts: /readyz says 503 until it is ready.
		srv, err := serveHTTP(*httpAddr, probeHandler(n, tel.metrics), log)
		if err != nil {
			log.Error("serving HTTP", "addr", *httpAddr, "err", err)
			return 1
		}
		defer srv.stop() // after the drain: /readyz says 503 while it lasts
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A second signal while draining exits at once.
	returned := make(chan struct{})
	defer close(returned)
	go func() {
		<-ctx.Done()
		// Listen for the second signal before the first listener goes:
		// in between, a signal would take its default action (death).
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(again)
		stop()
		// Said once a second signal is caught (tests wait for it); not
		// when ctx ended because run returned.
		if cause := context.Cause(ctx); cause != context.Canceled {
			log.Info("draining: a second SIGINT or SIGTERM exits at once", "cause", cause)
		}
		select {
		case <-again:
			log.Error("second signal: exiting without draining")
			os.Exit(1)
		case <-returned:
		}
	}()

	status := 0
	if err := p.Setup(ctx, n); err != nil {
		log.Error("constructing services", "err", err)
		n.Close()
		return 1
	}
	if err := n.Start(ctx); err != nil {
		log.Error("starting node", "err", err)
		n.Close()
		return 1
	}
	log.Info("node started", "mains", mainNames(mains))
	if len(mains) == 0 {
		<-ctx.Done()
		log.Info("signal received: draining")
	} else {
		status = runMains(ctx, log, n, mains, tel.tracer)
	}
	if err := n.Close(); err != nil {
		log.Error("closing node", "err", err)
		status = 1
	}
	if writeProfile != nil {
		if err := writeProfile(); err != nil {
			log.Error("writing the traffic profile", "err", err)
			status = 1
		}
	}
	log.Info("node stopped", "status", status)
	return status
}

// profileWriter returns the function that writes rec's profile to path (a
// file, or a directory that gets <node>-<instance>.json).
func profileWriter(p Program, opts runtime.Options, n *runtime.Node, rec *record.Recorder, path string) func() error {
	if st, err := os.Stat(path); (err == nil && st.IsDir()) || strings.HasSuffix(path, "/") || strings.HasSuffix(path, string(filepath.Separator)) {
		path = filepath.Join(path, n.Name()+"-"+n.Instance()+".json")
	}
	run := record.Run{Node: n.Name(), Instance: n.Instance()}
	if opts.Placement != nil {
		run.App, run.PlacementFile, run.Placement = opts.Placement.App, p.PlacementFile, p.Placement
	}
	var mu sync.Mutex // a SIGUSR1 during the exit's write
	return func() error {
		mu.Lock()
		defer mu.Unlock()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := rec.Profile(run).WriteFile(path); err != nil {
			return err
		}
		n.Logger().Info("traffic profile written", "file", path)
		return nil
	}
}

// dumpProfileOnSignal writes the profile whenever the process receives
// SIGUSR1, until the returned function is called.
func dumpProfileOnSignal(log *slog.Logger, write func() error) (stop func()) {
	sigs := profileSignals()
	if len(sigs) == 0 {
		return func() {}
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, sigs...)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-c:
				if err := write(); err != nil {
					log.Error("writing the traffic profile", "err", err)
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(c)
		close(done)
	}
}

// runMains runs mains concurrently. When one fails the others are
// cancelled; an error caused by a shutdown signal is not a failure.
func runMains(ctx context.Context, log *slog.Logger, n *runtime.Node, mains []Main, tp trace.TracerProvider) int {
	signalled := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		status int
	)
	for _, m := range mains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := runMain(ctx, n, m, tp)
			switch {
			case err == nil:
				log.Info("main finished", "main", m.Name)
			case signalled.Err() != nil && errors.Is(err, context.Canceled):
				log.Info("main stopped by signal", "main", m.Name)
			default:
				log.Error("main failed", "main", m.Name, "err", err)
				mu.Lock()
				status = 1
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	return status
}

// runMain runs one main, turning a panic into an error. With tracing,
// the main runs in a root span named after it.
func runMain(ctx context.Context, n *runtime.Node, m Main, tp trace.TracerProvider) (err error) {
	if tp != nil {
		var span trace.Span
		ctx, span = tp.Tracer("github.com/molgen/molgen/runtime/nodemain").Start(ctx, "main "+m.Name,
			trace.WithNewRoot(), trace.WithAttributes(attribute.String("molgen.main", m.Name), attribute.String("molgen.node", n.Name())))
		defer func() {
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}()
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("main %s panicked: %v", m.Name, r)
		}
	}()
	return m.Run(runtime.WithCaller(ctx, m.Name), n)
}

// envOr returns the environment variable name, or def when it is unset.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func mainNames(ms []Main) string {
	if len(ms) == 0 {
		return "none"
	}
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return strings.Join(names, ", ")
}

// envInt reads an integer environment variable, 0 when unset or not a
// number (the flag's parse then says so).
func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

// applyKafkaFlags lets -kafka-replication-factor and -kafka-group-protocol
// (or their variables) override the placement's.
func applyKafkaFlags(pl *placement.Placement, rf int, protocol string) error {
	if v := os.Getenv("MOLGEN_KAFKA_REPLICATION_FACTOR"); v != "" && rf == 0 {
		return fmt.Errorf("MOLGEN_KAFKA_REPLICATION_FACTOR must be a positive integer, not %q", v)
	}
	switch {
	case rf < 0 || rf > 10000:
		return fmt.Errorf("-kafka-replication-factor must be a positive integer, not %d", rf)
	case rf > 0:
		pl.Kafka.ReplicationFactor = rf
	}
	if protocol != "" {
		p, ok := placement.NormalizeGroupProtocol(protocol)
		if !ok {
			return fmt.Errorf("-kafka-group-protocol (MOLGEN_KAFKA_GROUP_PROTOCOL) must be classic or consumer, not %q", protocol)
		}
		pl.Kafka.GroupProtocol = p
	}
	return nil
}

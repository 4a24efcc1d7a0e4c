package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/molgen/molgen/internal/testsvc"
	molgen "github.com/molgen/molgen/runtime"
)

// scenario is one fault and what it must not break.
type scenario struct {
	n     int
	key   string // matched by -scenario
	title string
	// embedded: runs on the in-process kfake broker, not on Kafka.
	embedded bool
	// ownKafka: restarts or stalls the broker, so it needs the suite's own.
	ownKafka bool
	// noFailures: every call must succeed (no fault window); noReruns:
	// no request may run twice.
	noFailures, noReruns bool
	run                  func(e *env) error
}

// env is the state of one scenario run.
type env struct {
	s   *suite
	sc  *scenario
	cfg config
	dir string

	app     string
	bin     string
	brokers []string
	rec     *recorder
	servers []*proc
	names   map[string]int // instance name → processes started under it
	client  *molgen.Node
	clogf   *os.File
	calc    testsvc.Calc
	load    *loadGen

	loadStart, loadEnd   time.Time
	faultStart, faultEnd time.Time
	cuts                 []time.Time // the broker lost its data at these times
	records              []record    // read back from the request topic
	readErr              error

	after    []func() // run at the end of teardown (an embedded broker's Close)
	err      error    // the scenario could not run
	notes    []string // what happened, for the report
	problems []string // assertions that failed
	extras   []*call  // deliberate calls, reported apart
}

func (e *env) note(format string, args ...any) {
	e.notes = append(e.notes, fmt.Sprintf(format, args...))
}

func (e *env) problem(format string, args ...any) {
	e.problems = append(e.problems, fmt.Sprintf(format, args...))
}

// since formats t relative to the start of the load.
func (e *env) since(t time.Time) string {
	if e.loadStart.IsZero() || t.IsZero() {
		return "-"
	}
	return fmt.Sprintf("+%.1fs", t.Sub(e.loadStart).Seconds())
}

// build builds the server binary for this scenario's own app (topics and
// consumer groups of no other scenario) against brokers.
func (e *env) build(brokers []string) error {
	e.app = fmt.Sprintf("faults%02d-%s", e.sc.n, e.s.runID)
	e.brokers = brokers
	bin, err := buildServer(e.s.root, filepath.Join(e.dir, "bin"), e.app)
	if err != nil {
		return err
	}
	e.bin = bin
	return nil
}

// startServer starts an instance of the server node and waits until it
// has started.
func (e *env) startServer(name string) (*proc, error) {
	e.names[name]++
	file := name + ".log"
	if k := e.names[name]; k > 1 {
		file = fmt.Sprintf("%s-%d.log", name, k)
	}
	p, err := startProc(name, e.bin, filepath.Join(e.dir, file), []string{"MOLGEN_INSTANCE=" + name},
		"-brokers", strings.Join(e.brokers, ","), "-instance", name, "-log-level", "debug",
		"-session-timeout", e.cfg.session.String())
	if err != nil {
		return nil, err
	}
	e.servers = append(e.servers, p)
	e.rec.allow(name)
	if err := p.WaitLog("node started", 60*time.Second); err != nil {
		return p, err
	}
	return p, nil
}

// newClient starts a client node (it hosts codec; it calls calc).
func (e *env) newClient(name string) (*molgen.Node, error) {
	pl, err := molgen.ParsePlacement("faults.yaml", []byte(strings.ReplaceAll(placementYAML, "APP", e.app)))
	if err != nil {
		return nil, err
	}
	if e.clogf == nil {
		if e.clogf, err = os.Create(filepath.Join(e.dir, "client.log")); err != nil {
			return nil, err
		}
	}
	log := slog.New(slog.NewTextHandler(e.clogf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("client", name)
	n, err := molgen.NewNode(molgen.Options{Placement: pl, Node: "client", Brokers: e.brokers, Logger: log, SessionTimeout: e.cfg.session})
	if err != nil {
		return nil, err
	}
	if err := testsvc.RegisterCodec(n, testsvc.NewCodec()); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		return nil, fmt.Errorf("starting the client node: %w", err)
	}
	return n, nil
}

// up builds the binaries, starts the named instances and the client, and
// waits until every instance has answered a call.
func (e *env) up(brokers []string, names ...string) error {
	if err := e.build(brokers); err != nil {
		return err
	}
	for _, name := range names {
		if _, err := e.startServer(name); err != nil {
			return err
		}
	}
	c, err := e.newClient("load")
	if err != nil {
		return err
	}
	e.client, e.calc = c, testsvc.NewCalcClient(c)
	if err := warmUp(e.rec, e.calc, 60*time.Second, names...); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return nil
}

// startLoad starts the load generator.
func (e *env) startLoad() {
	e.loadStart = time.Now()
	e.load = startLoad(e.rec, e.calc, e.cfg.workers, e.cfg.callTimeout)
}

// stopLoad stops the load and waits for the calls in flight, bounded: a
// call that does not return within its deadline plus 30 s is reported.
func (e *env) stopLoad() {
	if e.load == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		e.load.finish()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(e.cfg.callTimeout + 30*time.Second):
		e.problem("calls still running %v after the load stopped: they ignore their deadline", e.cfg.callTimeout+30*time.Second)
	}
	e.loadEnd = time.Now()
	e.load = nil
}

// sleep waits d.
func sleep(d time.Duration) { time.Sleep(d) }

// readBack reads the request topic, for the current epoch of the broker.
func (e *env) readBack() {
	recs, err := readRequests(e.brokers, "molgen."+e.app+".req.calc", e.rec.prefix, len(e.cuts), int(e.rec.nextID.Load()))
	if err != nil {
		e.readErr = err
		e.note("reading the request topic back: %v", err)
		return
	}
	e.records = append(e.records, recs...)
}

// cut marks that the broker lost its data now.
func (e *env) cut() { e.cuts = append(e.cuts, time.Now()) }

// term sends SIGTERM to p and waits for it; it checks, when asked, that p
// exits 0 within the bound. It returns when p exited.
func (e *env) term(p *proc, check bool) time.Time {
	start := time.Now()
	p.Signal(syscall.SIGTERM)
	code, ok := p.Wait(e.cfg.sigtermBound)
	took := time.Since(start)
	if !ok {
		// Give it the drain timeout (30 s) and some more before a kill.
		code, ok = p.Wait(45 * time.Second)
		took = time.Since(start)
		if !ok {
			p.Signal(syscall.SIGKILL)
			p.Wait(10 * time.Second)
			e.note("SIGTERM %s: still running after %v; killed", p.Name, took.Round(100*time.Millisecond))
			if check {
				e.problem("%s did not exit within %v of SIGTERM (killed after %v)", p.Name, e.cfg.sigtermBound, took.Round(time.Second))
			}
			return time.Now()
		}
	}
	e.note("SIGTERM %s: exit %d after %v", p.Name, code, took.Round(10*time.Millisecond))
	if check && (code != 0 || took > e.cfg.sigtermBound) {
		e.problem("%s exited %d %v after SIGTERM (want 0 within %v)", p.Name, code, took.Round(100*time.Millisecond), e.cfg.sigtermBound)
	}
	return p.exited
}

// teardown stops the load, reads the request topic back, closes the
// client and SIGTERMs the instances still running (each must exit 0
// within the bound); every step is bounded.
func (e *env) teardown() {
	e.stopLoad()
	if e.bin != "" && e.readErr == nil {
		e.readBack()
	}
	if e.client != nil {
		done := make(chan error, 1)
		go func() { done <- e.client.Close() }()
		select {
		case err := <-done:
			if err != nil {
				e.note("closing the client node: %v", err)
			}
		case <-time.After(30 * time.Second):
			e.problem("closing the client node took more than 30s")
		}
		e.client = nil
	}
	for _, p := range e.servers {
		if p.Running() {
			e.term(p, true)
		}
	}
	if e.clogf != nil {
		e.clogf.Close()
	}
	for _, f := range e.after {
		f()
	}
}

// Command faults is molgen's fault-injection suite: it starts its own real
// Kafka (scripts/kafka/kafka.sh, on a port and data directory of its own),
// builds the node binaries of a small placement over internal/testsvc,
// runs the server node as separate processes, and for each scenario drives
// a bounded load of checked calls from a client node in this process while
// it injects a fault: instances killed, stopped or added, the broker
// restarted, wiped or stalled, the embedded broker restarted, garbage
// written to a request topic, a cold start. It prints a table of what the
// calls saw: failures by kind, wrong results, requests run more than once,
// the longest call. docs/FAULTS.md describes the scenarios, what each
// asserts and the last run.
//
//	go run ./internal/faults                    # every scenario, short (a few minutes)
//	go run ./internal/faults -long              # 60 s of load per scenario, more workers
//	go run ./internal/faults -scenario 'sigterm|scale'
//	go run ./internal/faults -brokers 127.0.0.1:9092  # another broker (scenarios 5-7 need the suite's own)
//
// With -cluster it runs the cluster scenarios instead (clusterscenarios.go):
// on a 3-broker Kafka cluster of its own (kafka.sh start -cluster), a
// broker's fault under the load of molgen's calls and, side by side, of a
// plain franz-go request/reply (comparator.go); a table with a line per
// scenario and implementation.
//
//	go run ./internal/faults -cluster                  # scenarios a-e, short (about 6 minutes)
//	go run ./internal/faults -cluster -scenario b      # the rolling restart alone
//
// It never touches the default broker (127.0.0.1:9092, /tmp/molgen-kafka)
// unless told to with -brokers: its Kafka listens on -port (19092) with
// -kafka-dir (/tmp/molgen-faults-kafka), its cluster on -cluster-port
// (19300-19305) with -cluster-dir (/tmp/molgen-faults-cluster), and they
// are stopped on every exit of the program. The exit status is 1 when a
// scenario failed an assertion.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// config holds the knobs of one run; short and long runs differ only in
// how long and how hard the load runs.
type config struct {
	long bool
	// workers run calls concurrently during each scenario.
	workers int
	// pre is the load before a fault; post the load after the fault is
	// over (longer than recovery, so that failures after it show);
	// postBroker replaces post after a broker fault (5-8), whose trouble
	// can come back some 20 s after the broker does.
	pre, post, postBroker time.Duration
	// down is how long the only instance stays dead (scenario 2).
	down time.Duration
	// stall is how long the broker is SIGSTOPped (scenario 7).
	stall time.Duration
	// callTimeout is every call's deadline.
	callTimeout time.Duration
	// lateBound: no call may return later than its deadline plus this.
	lateBound time.Duration
	// recovery: after a fault is over, calls fail for at most this long.
	recovery time.Duration
	// sigtermBound: a SIGTERMed instance exits 0 within this.
	sigtermBound time.Duration
	// session is the servers' -session-timeout.
	session time.Duration
	// coldCalls concurrent first calls, coldRounds times (scenario 10).
	coldCalls, coldRounds int
	// brokerDown is how long a killed broker of the cluster stays down
	// before it is started again (cluster scenarios a, d, e).
	brokerDown time.Duration
	// clusterStall is how long a broker of the cluster is SIGSTOPped
	// (cluster scenario c): longer than broker.session.timeout.ms (9 s),
	// so that the controller fences it and its leaderships move.
	clusterStall time.Duration
	// clusterEvery paces each worker of a cluster scenario (a call
	// started at most this often): both sides' loads together leave the
	// brokers CPU to fail over with, on a 2-core machine.
	clusterEvery time.Duration
	// clusterWorkers replaces workers in the cluster scenarios (per side,
	// in both modes): two loads and three brokers share the machine.
	clusterWorkers int
	// clusterSession is the servers' and the comparator's session timeout
	// in the cluster scenarios: molgen's default (the faults there are the
	// brokers', not the instances'; session replaces it for them).
	clusterSession time.Duration
}

func shortConfig() config {
	return config{
		workers: 8, pre: 3 * time.Second, post: 15 * time.Second, postBroker: 30 * time.Second, down: 3 * time.Second, stall: 10 * time.Second,
		callTimeout: 5 * time.Second, lateBound: time.Second, recovery: 10 * time.Second, sigtermBound: 10 * time.Second,
		session: 2 * time.Second, coldCalls: 500, coldRounds: 1,
		brokerDown: 5 * time.Second, clusterStall: 15 * time.Second, clusterEvery: 40 * time.Millisecond,
		clusterSession: 6 * time.Second, clusterWorkers: 8,
	}
}

func longConfig() config {
	c := shortConfig()
	c.long = true
	c.workers, c.pre, c.post, c.postBroker, c.down, c.coldRounds = 32, 10*time.Second, 50*time.Second, 50*time.Second, 10*time.Second, 3
	c.brokerDown, c.clusterStall = 10*time.Second, 30*time.Second
	return c
}

// suite is one run of the program.
type suite struct {
	cfg   config
	root  string       // the module's directory
	work  string       // logs and binaries of this run
	runID string       // makes app names unique per run
	kafka *kafkaScript // the suite's own Kafka; nil with -brokers
	// brokers, when set, is a broker the suite does not own (-brokers, or
	// the test broker): scenarios that restart or stall the broker skip.
	brokers []string
	out     io.Writer // progress
}

func main() { os.Exit(run()) }

func run() int {
	pattern := flag.String("scenario", "", "run only the scenarios whose number or name matches this `regexp` (e.g. 'sigterm|^9$')")
	long := flag.Bool("long", false, "run each scenario longer (60 s of load) with more workers")
	port := flag.Int("port", 19092, "port of the suite's own Kafka (the controller uses port+1); never the shared 9092")
	kafkaDir := flag.String("kafka-dir", "/tmp/molgen-faults-kafka", "data directory of the suite's own Kafka (wiped when it starts)")
	keep := flag.Bool("keep", false, "keep the work directory (node logs, binaries) even when every scenario passed")
	list := flag.Bool("list", false, "list the scenarios and exit")
	brokersFlag := flag.String("brokers", "", "run against this broker `host:port,...` instead of the suite's own Kafka (scenarios 5-7 need their own and are skipped)")
	cluster := flag.Bool("cluster", false, "run the cluster scenarios (a-e) on a 3-broker cluster of the suite's own, molgen and a franz-go comparator side by side")
	clusterPort := flag.Int("cluster-port", 19300, "base port of the suite's cluster (brokers on port, port+2, port+4, controllers on the next port of each)")
	clusterDir := flag.String("cluster-dir", "/tmp/molgen-faults-cluster", "data directory of the suite's cluster (wiped when it starts)")
	flag.BoolVar(&invariantsOnly, "invariants", false, "with -cluster: fail a scenario only on what must hold in every run (no wrong result, no request id written twice, no late or hung call, a recovery; (b)'s own targets stay), and report the comparisons with the comparator without failing on them (.ci/run: one short run is too noisy for them)")
	flag.Parse()

	if *cluster {
		if *brokersFlag != "" {
			fmt.Fprintln(os.Stderr, "faults: -cluster runs on a cluster of its own: it kills and stops brokers, so -brokers does not apply")
			return 2
		}
		return runCluster(*pattern, *long, *list, *keep, *clusterPort, *clusterDir)
	}
	if *list {
		for _, sc := range scenarios {
			fmt.Printf("%2d  %-16s %s\n", sc.n, sc.key, sc.title)
		}
		return 0
	}
	if *port == 9092 || *port == 9091 || *port < 1024 || *port > 65534 {
		fmt.Fprintf(os.Stderr, "faults: -port %d: use a port of the suite's own (9092 is shared)\n", *port)
		return 2
	}
	dir, err := filepath.Abs(*kafkaDir)
	if err != nil || dir == "/tmp/molgen-kafka" || dir == "/" {
		fmt.Fprintf(os.Stderr, "faults: -kafka-dir %s: use a directory of the suite's own\n", *kafkaDir)
		return 2
	}
	re, err := regexp.Compile(*pattern)
	if err != nil {
		fmt.Fprintf(os.Stderr, "faults: -scenario: %v\n", err)
		return 2
	}
	var selected []*scenario
	needKafka := false
	var brokers []string
	for _, b := range strings.Split(*brokersFlag, ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	for _, sc := range scenarios {
		if re.MatchString(fmt.Sprint(sc.n)) || re.MatchString(sc.key) {
			if sc.ownKafka && brokers != nil {
				fmt.Fprintf(os.Stderr, "faults: skipping scenario %d (%s): it restarts or stalls the broker, and -brokers is not the suite's own\n", sc.n, sc.title)
				continue
			}
			selected = append(selected, sc)
			needKafka = needKafka || (!sc.embedded && brokers == nil)
		}
	}
	if len(selected) == 0 {
		fmt.Fprintf(os.Stderr, "faults: no scenario matches %q (see -list)\n", *pattern)
		return 2
	}

	cfg := shortConfig()
	if *long {
		cfg = longConfig()
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 2
	}
	work, err := os.MkdirTemp("", "molgen-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	b := make([]byte, 3)
	rand.Read(b)
	s := &suite{cfg: cfg, root: root, work: work, runID: hex.EncodeToString(b), out: os.Stderr, brokers: brokers}
	if needKafka {
		klog, err := os.Create(filepath.Join(work, "kafka.log"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "faults:", err)
			return 1
		}
		defer klog.Close()
		s.kafka = &kafkaScript{script: filepath.Join(root, "scripts", "kafka", "kafka.sh"), port: *port, dir: dir, log: klog}
	}

	// Whatever ends the program, the children and the broker go with it.
	var cleanOnce sync.Once
	cleanup := func() {
		cleanOnce.Do(func() {
			killAll()
			if needKafka {
				if err := s.kafka.Stop(); err != nil {
					fmt.Fprintln(os.Stderr, "faults: stopping Kafka:", err)
				}
			}
		})
	}
	defer cleanup()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "\nfaults: %v: stopping the servers and Kafka\n", sig)
		cleanup()
		os.Exit(130)
	}()

	began := time.Now()
	mode := "short"
	if cfg.long {
		mode = "long"
	}
	s.logf("faults: %d scenario(s), %s mode, %d workers, calls with a %v deadline; work dir %s", len(selected), mode, cfg.workers, cfg.callTimeout, work)
	if brokers != nil {
		s.logf("faults: on the broker %s", strings.Join(brokers, ","))
	}
	if needKafka {
		s.logf("faults: starting Kafka on %s (dir %s)", s.kafka.Addr(), dir)
		s.kafka.Stop() // a broker left by a killed earlier run
		t := time.Now()
		if err := s.kafka.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "faults:", err)
			return 1
		}
		s.logf("faults: Kafka ready in %v", time.Since(t).Round(100*time.Millisecond))
	}

	var rows []*row
	for i, sc := range selected {
		s.logf("\n[%d/%d] scenario %d: %s", i+1, len(selected), sc.n, sc.title)
		r := s.runScenario(sc)
		rows = append(rows, r)
		s.logf("  -> %s (%v)", r.verdict(), r.elapsed.Round(time.Second))
	}
	cleanup()

	total := time.Since(began).Round(time.Second)
	fmt.Printf("\nmolgen fault-injection suite, %s, %s mode (%d workers, %v per call, late = deadline + %v, recovery window %v), took %v\n\n",
		time.Now().Format("2006-01-02 15:04 MST"), mode, cfg.workers, cfg.callTimeout, cfg.lateBound, cfg.recovery, total)
	printTable(os.Stdout, rows)
	printNotes(os.Stdout, rows)
	failed := false
	for _, r := range rows {
		failed = failed || r.verdict() != "ok"
	}
	if failed || *keep {
		fmt.Printf("\nnode logs and binaries: %s\n", work)
	} else {
		os.RemoveAll(work)
	}
	if failed {
		return 1
	}
	return 0
}

// logf prints progress.
func (s *suite) logf(format string, args ...any) {
	fmt.Fprintf(s.out, format+"\n", args...)
}

// runScenario runs one scenario and returns its row; a panic or a setup
// error is reported in the row, and the scenario's processes are stopped.
func (s *suite) runScenario(sc *scenario) (r *row) {
	e := &env{s: s, sc: sc, cfg: s.cfg, dir: filepath.Join(s.work, fmt.Sprintf("%02d-%s", sc.n, sc.key)), names: map[string]int{}}
	e.rec = newRecorder(fmt.Sprintf("f%02d", sc.n))
	began := time.Now()
	func() {
		defer func() {
			if p := recover(); p != nil {
				e.err = fmt.Errorf("panic: %v", p)
			}
		}()
		if err := os.MkdirAll(e.dir, 0o755); err != nil {
			e.err = err
			return
		}
		e.err = sc.run(e)
	}()
	e.teardown()
	r = e.result()
	r.elapsed = time.Since(began)
	if strings.TrimSpace(r.failText()) != "" {
		s.logf("  calls %d, ok %d, failed %s", r.calls, r.ok, r.failText())
	}
	return r
}

// runCluster runs the cluster scenarios that match pattern on the suite's
// own 3-broker cluster (base port port, data in dir) and prints their
// table; the status is 1 when one failed a target.
// invariantsOnly is -invariants.
var invariantsOnly bool

func runCluster(pattern string, long, list, keep bool, port int, kafkaDir string) int {
	if list {
		for _, cs := range clusterScenarios {
			fmt.Printf("%s  %-18s %s\n", cs.letter, cs.key, cs.title)
		}
		return 0
	}
	if port < 1024 || port+2*clusterSize-1 > 65535 || port+2*clusterSize-1 >= 9092 && port <= 9101 {
		fmt.Fprintf(os.Stderr, "faults: -cluster-port %d: the cluster takes %d-%d; use ports of the suite's own (9092-9101 are shared)\n", port, port, port+2*clusterSize-1)
		return 2
	}
	dir, err := filepath.Abs(kafkaDir)
	if err != nil || dir == "/tmp/molgen-kafka" || dir == "/" {
		fmt.Fprintf(os.Stderr, "faults: -cluster-dir %s: use a directory of the suite's own\n", kafkaDir)
		return 2
	}
	if _, err := regexp.Compile(pattern); err != nil {
		fmt.Fprintf(os.Stderr, "faults: -scenario: %v\n", err)
		return 2
	}
	selected := selectClusterScenarios(pattern)
	if len(selected) == 0 {
		fmt.Fprintf(os.Stderr, "faults: no cluster scenario matches %q (see -cluster -list)\n", pattern)
		return 2
	}
	cfg := shortConfig()
	mode := "short"
	if long {
		cfg, mode = longConfig(), "long"
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 2
	}
	if err := checkNoRetry(root); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	work, err := os.MkdirTemp("", "molgen-faults-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	b := make([]byte, 3)
	rand.Read(b)
	s := &suite{cfg: cfg, root: root, work: work, runID: hex.EncodeToString(b), out: os.Stderr}
	klog, err := os.Create(filepath.Join(work, "kafka.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	defer klog.Close()
	s.kafka = &kafkaScript{script: filepath.Join(root, "scripts", "kafka", "kafka.sh"), port: port, dir: dir, log: klog, cluster: true}

	// Whatever ends the program, the children and the cluster go with it.
	var cleanOnce sync.Once
	cleanup := func() {
		cleanOnce.Do(func() {
			killAll()
			if err := s.kafka.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "faults: stopping the cluster:", err)
			}
		})
	}
	defer cleanup()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "\nfaults: %v: stopping the servers and the cluster\n", sig)
		cleanup()
		os.Exit(130)
	}()

	began := time.Now()
	s.logf("faults: %d cluster scenario(s), %s mode, %d workers per side, calls with a %v deadline; work dir %s", len(selected), mode, cfg.clusterWorkers, cfg.callTimeout, work)
	s.logf("faults: starting a 3-broker Kafka cluster on %s (dir %s)", s.kafka.Addr(), dir)
	s.kafka.Stop() // a cluster left by a killed earlier run
	t := time.Now()
	if err := s.kafka.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	s.logf("faults: cluster ready in %v", time.Since(t).Round(100*time.Millisecond))

	var rows []*clusterRow
	for i, cs := range selected {
		s.logf("\n[%d/%d] cluster scenario (%s): %s", i+1, len(selected), cs.letter, cs.title)
		r := s.runClusterScenario(cs)
		rows = append(rows, r)
		s.logf("  -> %s (%v)", r.verdict(), r.elapsed.Round(time.Second))
	}
	cleanup()

	total := time.Since(began).Round(time.Second)
	fmt.Printf("\nmolgen fault-injection suite, cluster scenarios, %s, %s mode (3 brokers; %d workers per side, %v per call; a killed broker down %v, a stalled one %v), took %v, load average %s\n\n",
		time.Now().Format("2006-01-02 15:04 MST"), mode, cfg.clusterWorkers, cfg.callTimeout, cfg.brokerDown, cfg.clusterStall, total, loadAverage())
	printClusterTable(os.Stdout, rows)
	printClusterNotes(os.Stdout, rows)
	failed := false
	for _, r := range rows {
		failed = failed || r.verdict() != "ok"
	}
	if failed || keep {
		fmt.Printf("\nnode logs, the comparator's log and binaries: %s\n", work)
	} else {
		os.RemoveAll(work)
	}
	if failed {
		return 1
	}
	return 0
}

// loadAverage returns the machine's load averages (1, 5, 15 minutes), or
// "?".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// selectClusterScenarios returns the cluster scenarios pattern names: by
// letter when the whole pattern matches letters ("b", "a|c", "[ade]"),
// else those whose name matches it ("kill"); "" selects all.
func selectClusterScenarios(pattern string) []*clusterScenario {
	var out []*clusterScenario
	if letters, err := regexp.Compile("^(?:" + pattern + ")$"); err == nil && pattern != "" {
		for _, cs := range clusterScenarios {
			if letters.MatchString(cs.letter) {
				out = append(out, cs)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil
	}
	for _, cs := range clusterScenarios {
		if re.MatchString(cs.key) {
			out = append(out, cs)
		}
	}
	return out
}

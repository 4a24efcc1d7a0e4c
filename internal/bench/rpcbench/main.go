// Command rpcbench measures molgen's remote calls side by side with
// request/reply written directly on Kafka clients, in several topologies:
//
//   - franz-go: request/reply written as well as franz-go allows (no
//     linger, acks=all idempotent writes, a cooperative consumer group on
//     requests, one reply topic per node): the target;
//   - molgen: the same calls through generated clients and molgen's
//     transport (itself on franz-go);
//   - molgen (signed): the same, every message signed (security.signing);
//   - molgen (old): with -old BIN, the molgen of an earlier build, measured
//     by BIN in a process of its own (agent.go); scripts/bench-old.sh
//     builds the last molgen on kafka-go.
//
// All run against the same broker, alternating within each round, and it
// prints medians over rounds, molgen's ratio to the better of franz-go
// and the old molgen, and whether molgen meets its targets: p50 at 1 in
// flight at most 1.1x the better one's, throughput at 16 and 256 in
// flight at least 0.9x, CPU per call no higher than the old molgen's.
//
//	go run ./internal/bench/rpcbench                          # embedded kfake broker
//	go run ./internal/bench/rpcbench -brokers 127.0.0.1:9092  # a real Kafka
//	scripts/bench-old.sh && go run ./internal/bench/rpcbench -old /tmp/rpcbench-old -impls franz-go,molgen,signed
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/molgen/molgen/internal/broker"
)

// caller is one implementation under test in one topology: each add is
// one benchmark call (two remote calls in the chain).
type caller interface {
	add(ctx context.Context, i int) error
	requestTopics() []string
	close()
}

// topology is how the services are placed on nodes.
type topology struct {
	key, desc string
	servers   int  // server instances (separate nodes)
	oneNode   bool // one node calls and serves (prefer_local false)
	chain     bool // front -> posts -> users
}

var topologies = []topology{
	{key: "separate", desc: "caller and server on separate nodes", servers: 1},
	{key: "separate-2", desc: "caller node, 2 server instances", servers: 2},
	{key: "one-node", desc: "one node calls and serves (prefer_local: false)", oneNode: true},
	{key: "chain", desc: "chain front -> posts -> users (2 remote calls per call)", chain: true},
}

type impl struct {
	name string
	make func(brokers []string, partitions int, topo topology) caller
	only func(topology) bool // nil: every topology
}

var impls = []impl{
	{name: "franz-go", make: newFranz},
	{name: "molgen", make: newMolgen},
	{name: "molgen (signed)", make: newMolgenSigned},
}

// oldMolgen names the agent of another build of molgen (-old).
const oldMolgen = "molgen (old)"

func main() {
	brokersFlag := flag.String("brokers", "", "Kafka brokers (default: an embedded kfake broker)")
	duration := flag.Duration("duration", 3*time.Second, "length of each throughput run")
	latencyCalls := flag.Int("latency-calls", 1000, "sequential calls per latency run")
	rounds := flag.Int("rounds", 3, "rounds per measurement (the median is reported)")
	partitions := flag.Int("partitions", 8, "partitions of each request topic")
	conc := flag.String("concurrency", "16,256", "calls in flight for throughput")
	topoFlag := flag.String("topologies", "separate,separate-2,one-node,chain", "topologies to measure")
	implsFlag := flag.String("impls", "franz-go,molgen", "implementations to measure (franz-go, molgen, signed: molgen with signed messages)")
	oldBin := flag.String("old", "", "also measure the molgen of this rpcbench `binary`, built from an earlier commit with agent.go copied in (scripts/bench-old.sh builds one)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the throughput runs to `file` (use with -impls molgen)")
	memprofile := flag.String("memprofile", "", "write an allocation profile to `file` at the end (use with -impls molgen)")
	stagesFlag := flag.Bool("stages", false, "instead of the comparison, show where molgen's calls spend their time (an Observer's stages) in each topology at each -concurrency")
	flag.IntVar(&brokerPID, "broker-pid", 0, "`pid` of a real Kafka broker on this machine (scripts/kafka/kafka.sh writes it to $MOLGEN_KAFKA_DIR/kafka.pid): also report the broker's CPU per call")
	flag.Parse()
	if *memprofile != "" {
		defer func() {
			f, err := os.Create(*memprofile)
			check(err)
			check(pprof.Lookup("allocs").WriteTo(f, 0))
			f.Close()
		}()
	}

	brokers := strings.Split(*brokersFlag, ",")
	kind := "real Kafka at " + *brokersFlag
	if *brokersFlag == "" {
		b, err := broker.Start("127.0.0.1:0")
		check(err)
		defer b.Close()
		brokers = []string{b.Addr()}
		kind = "embedded kfake broker (in this process: its CPU and allocations count)"
	}
	fmt.Printf("rpcbench: %s, %d partitions, GOMAXPROCS=%d, %d rounds, medians\n", kind, *partitions, runtime.GOMAXPROCS(0), *rounds)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	var levels []int
	for _, c := range strings.Split(*conc, ",") {
		var n int
		_, err := fmt.Sscan(c, &n)
		check(err)
		levels = append(levels, n)
	}
	if *stagesFlag {
		for _, topo := range topologies {
			if slices.Contains(strings.Split(*topoFlag, ","), topo.key) {
				stages(topo, brokers, *partitions, *duration, levels)
			}
		}
		return
	}
	wantImpls := strings.Split(*implsFlag, ",")
	if *oldBin != "" {
		impls = append(impls, impl{name: oldMolgen, make: newAgent(*oldBin)})
		wantImpls = append(wantImpls, oldMolgen)
	}
	var verdicts []string
	for _, topo := range topologies {
		if !slices.Contains(strings.Split(*topoFlag, ","), topo.key) {
			continue
		}
		var use []impl
		for _, im := range impls {
			short := strings.Fields(im.name)[len(strings.Fields(im.name))-1]
			if (slices.Contains(wantImpls, im.name) || slices.Contains(wantImpls, strings.Trim(short, "()"))) && (im.only == nil || im.only(topo)) {
				use = append(use, im)
			}
		}
		verdicts = append(verdicts, measure(topo, use, brokers, *partitions, *rounds, *latencyCalls, *duration, levels)...)
	}
	if len(verdicts) > 0 {
		fmt.Printf("\n### Targets (molgen / franz-go)\n\n")
		for _, v := range verdicts {
			fmt.Println(v)
		}
	}
}

// brokerPID is the process of the real Kafka broker whose CPU time is
// reported (0: none).
var brokerPID int

// result is what one throughput run measured.
type result struct {
	callsPerSec, cpuPerCall, brokerCPUPerCall, allocsPerCall float64
}

// measure runs every implementation in one topology and prints its table;
// it returns the target verdicts.
func measure(topo topology, use []impl, brokers []string, partitions, rounds, latencyCalls int, d time.Duration, levels []int) []string {
	fmt.Printf("\n## %s\n\n", topo.desc)
	callers := make([]caller, len(use))
	for i, im := range use {
		callers[i] = im.make(brokers, partitions, topo)
		if _, remote := callers[i].(measurer); remote {
			continue // an agent warms itself up
		}
		// Warm up: topics, group joins, connections.
		for j := 0; j < 200; j++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := callers[i].add(ctx, j)
			cancel()
			if err != nil {
				check(fmt.Errorf("%s warm-up call %d: %w", im.name, j, err))
			}
		}
		throughput(callers[i], 64, 500*time.Millisecond)
	}
	defer func() {
		for _, c := range callers {
			c.close()
		}
	}()
	type row struct {
		label string
		vals  []float64
		unit  string
	}
	var rows []row
	p50s := make([][]float64, len(use))
	p99s := make([][]float64, len(use))
	for r := 0; r < rounds; r++ {
		for k := range use {
			i := (k + r) % len(use) // alternate who goes first
			p50, p99 := measureLatency(callers[i], latencyCalls)
			p50s[i] = append(p50s[i], p50)
			p99s[i] = append(p99s[i], p99)
		}
	}
	rows = append(rows, row{"p50 latency, 1 in flight", medians(p50s), "ms"}, row{"p99 latency, 1 in flight", medians(p99s), "ms"})
	for li, n := range levels {
		tps := make([][]float64, len(use))
		cpus := make([][]float64, len(use))
		brokerCPUs := make([][]float64, len(use))
		allocs := make([][]float64, len(use))
		for r := 0; r < rounds; r++ {
			for k := range use {
				i := (k + r) % len(use)
				res := measureThroughput(callers[i], n, d)
				tps[i] = append(tps[i], res.callsPerSec)
				cpus[i] = append(cpus[i], res.cpuPerCall)
				brokerCPUs[i] = append(brokerCPUs[i], res.brokerCPUPerCall)
				allocs[i] = append(allocs[i], res.allocsPerCall)
			}
		}
		rows = append(rows, row{fmt.Sprintf("throughput, %d in flight", n), medians(tps), "calls/s"})
		if li == len(levels)-1 {
			rows = append(rows,
				row{fmt.Sprintf("CPU per call, %d in flight (all sides)", n), medians(cpus), "µs"},
				row{fmt.Sprintf("allocations per call, %d in flight", n), medians(allocs), ""})
			if brokerPID > 0 {
				rows = append(rows, row{fmt.Sprintf("broker CPU per call, %d in flight", n), medians(brokerCPUs), "µs"})
			}
		}
	}

	franzAt, molgenAt, oldAt := -1, -1, -1
	fmt.Print("| measure |")
	for i, im := range use {
		fmt.Printf(" %s |", im.name)
		switch im.name {
		case "franz-go":
			franzAt = i
		case "molgen":
			molgenAt = i
		case oldMolgen:
			oldAt = i
		}
	}
	ratios := (franzAt >= 0 || oldAt >= 0) && molgenAt >= 0
	if ratios {
		fmt.Print(" molgen / the better other | target |")
	}
	fmt.Print("\n|---|")
	for range use {
		fmt.Print("---:|")
	}
	if ratios {
		fmt.Print("---:|---|")
	}
	fmt.Println()
	var verdicts []string
	for _, r := range rows {
		f := "%.0f"
		if r.unit == "ms" {
			f = "%.2f"
		}
		fmt.Printf("| %s |", r.label)
		for _, v := range r.vals {
			fmt.Printf(" "+f+" %s |", v, r.unit)
		}
		if ratios {
			// The better of franz-go's and the old molgen's: the lower
			// latency, the higher throughput; CPU is held to the old
			// molgen's.
			lowerIsBetter := r.unit == "ms" || r.unit == "µs" || r.unit == ""
			best := math.NaN()
			for _, at := range []int{franzAt, oldAt} {
				if at < 0 || (strings.HasPrefix(r.label, "CPU") || r.unit == "") && at != oldAt {
					continue
				}
				if v := r.vals[at]; math.IsNaN(best) || lowerIsBetter && v < best || !lowerIsBetter && v > best {
					best = v
				}
			}
			ratio := r.vals[molgenAt] / best
			target := ""
			switch {
			case strings.HasPrefix(r.label, "p50"):
				target = verdict(ratio <= 1.1, "≤ 1.1")
				verdicts = append(verdicts, fmt.Sprintf("- %s: p50 %.2fx %s", topo.key, ratio, target))
			case strings.HasPrefix(r.label, "throughput"):
				target = verdict(ratio >= 0.9, "≥ 0.9")
				verdicts = append(verdicts, fmt.Sprintf("- %s: %s %.2fx %s", topo.key, r.label, ratio, target))
			case strings.HasPrefix(r.label, "CPU") && oldAt >= 0:
				target = verdict(ratio <= 1.0, "≤ 1.0 of the old molgen")
				verdicts = append(verdicts, fmt.Sprintf("- %s: %s %.2fx %s", topo.key, r.label, ratio, target))
			}
			if math.IsNaN(ratio) {
				fmt.Print(" - | |")
			} else {
				fmt.Printf(" %.2f | %s |", ratio, target)
			}
		}
		fmt.Println()
	}
	return verdicts
}

func verdict(ok bool, want string) string {
	if ok {
		return want + " met"
	}
	return want + " MISSED"
}

func medians(runs [][]float64) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		s := append([]float64(nil), r...)
		sort.Float64s(s)
		out[i] = s[len(s)/2]
	}
	return out
}

// measureLatency is latency, measured by the caller itself when it is an
// agent's.
func measureLatency(c caller, n int) (float64, float64) {
	if m, ok := c.(measurer); ok {
		return m.measureLatency(n)
	}
	return latency(c, n)
}

// measureThroughput is throughput, measured by the caller itself when it
// is an agent's.
func measureThroughput(c caller, n int, d time.Duration) result {
	if m, ok := c.(measurer); ok {
		return m.measureThroughput(n, d)
	}
	return throughput(c, n, d)
}

// latency makes n sequential calls and returns p50 and p99 in ms.
func latency(c caller, n int) (float64, float64) {
	lat := make([]time.Duration, n)
	for i := range lat {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := c.add(ctx, i)
		cancel()
		check(err)
		lat[i] = time.Since(start)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return ms(lat[n/2]), ms(lat[n*99/100])
}

// throughput keeps n calls in flight for d and returns calls per second,
// with the process's CPU time and allocations per call.
func throughput(c caller, n int, d time.Duration) result {
	var done atomic.Int64
	var failed atomic.Int64
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	cpu := cpuTime()
	bcpu := brokerCPU()
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := c.add(ctx, i)
				cancel()
				if err != nil {
					failed.Add(1)
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	cpu = cpuTime() - cpu
	bcpu = brokerCPU() - bcpu
	runtime.ReadMemStats(&ms)
	if f := failed.Load(); f > 0 {
		fmt.Fprintf(os.Stderr, "rpcbench: %d calls failed\n", f)
	}
	calls := float64(max(done.Load(), 1))
	return result{
		callsPerSec:      float64(done.Load()) / el.Seconds(),
		cpuPerCall:       float64(cpu.Microseconds()) / calls,
		brokerCPUPerCall: float64(bcpu.Microseconds()) / calls,
		allocsPerCall:    float64(ms.Mallocs-mallocs) / calls,
	}
}

// cpuTime returns the user and system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// brokerCPU returns the user and system CPU time of the broker process
// (-broker-pid), from /proc (in clock ticks of 10 ms, Linux's USER_HZ).
func brokerCPU() time.Duration {
	if brokerPID <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", brokerPID))
	if err != nil {
		check(fmt.Errorf("reading the broker's CPU time: %w", err))
	}
	// The fields after the command (in parentheses, which may hold spaces).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		check(fmt.Errorf("reading the broker's CPU time: /proc/%d/stat has %d fields", brokerPID, len(f)))
	}
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpcbench:", err)
		os.Exit(1)
	}
}

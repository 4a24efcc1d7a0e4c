// Command rpcbench measures molgen's remote calls side by side with the
// floor for request/reply over Kafka: a raw kafka-go implementation written
// as well as kafka-go allows (one shared Writer per side with a 1ms batch,
// replies written concurrently, a consumer-group reader on requests and a
// direct-partition reader on replies). Both run in this process, against
// the same broker, alternating, and it prints medians over rounds.
//
//	go run ./internal/bench/rpcbench                          # embedded kfake broker
//	go run ./internal/bench/rpcbench -brokers 127.0.0.1:9092  # a real Kafka
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/molgen/molgen/internal/broker"
	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/testsvc"
	molgen "github.com/molgen/molgen/runtime"
)

// caller is one implementation under test: Add(a, b) as a remote call.
type caller interface {
	add(ctx context.Context, a, b int) (int, error)
	close()
}

func main() {
	brokersFlag := flag.String("brokers", "", "Kafka brokers (default: an embedded kfake broker)")
	duration := flag.Duration("duration", 3*time.Second, "length of each throughput run")
	latencyCalls := flag.Int("latency-calls", 1000, "sequential calls per latency run")
	rounds := flag.Int("rounds", 3, "rounds per measurement (the median is reported)")
	partitions := flag.Int("partitions", 8, "partitions of each request topic")
	conc := flag.String("concurrency", "1,16,256", "concurrency levels for throughput")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the throughput runs to `file`")
	flag.Parse()

	brokers := strings.Split(*brokersFlag, ",")
	kind := "real Kafka at " + *brokersFlag
	if *brokersFlag == "" {
		b, err := broker.Start("127.0.0.1:0")
		check(err)
		defer b.Close()
		brokers = []string{b.Addr()}
		kind = "embedded kfake broker (in this process)"
	}
	fmt.Printf("rpcbench: %s, %d partitions, GOMAXPROCS=%d, %d rounds, medians\n\n", kind, *partitions, runtime.GOMAXPROCS(0), *rounds)

	impls := []struct {
		name string
		make func() caller
	}{
		{"raw kafka-go (floor)", func() caller { return newFloor(brokers, *partitions) }},
		{"molgen", func() caller { return newMolgen(brokers, *partitions) }},
	}
	callers := make([]caller, len(impls))
	for i, im := range impls {
		callers[i] = im.make()
		defer callers[i].close()
		// Warm up: topics, group joins, connections.
		for j := 0; j < 200; j++ {
			if _, err := callers[i].add(context.Background(), j, 1); err != nil {
				check(fmt.Errorf("%s warm-up: %w", im.name, err))
			}
		}
	}

	type row struct {
		label string
		vals  []float64 // per impl
		unit  string
	}
	var rows []row
	p50s := make([][]float64, len(impls))
	p99s := make([][]float64, len(impls))
	for r := 0; r < *rounds; r++ {
		for i := range impls {
			p50, p99 := latency(callers[i], *latencyCalls)
			p50s[i] = append(p50s[i], p50)
			p99s[i] = append(p99s[i], p99)
		}
	}
	rows = append(rows, row{"p50 latency, 1 in flight", medians(p50s), "ms"}, row{"p99 latency, 1 in flight", medians(p99s), "ms"})
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	for _, c := range strings.Split(*conc, ",") {
		var n int
		fmt.Sscan(c, &n)
		tps := make([][]float64, len(impls))
		for r := 0; r < *rounds; r++ {
			for i := range impls {
				tps[i] = append(tps[i], throughput(callers[i], n, *duration))
			}
		}
		rows = append(rows, row{fmt.Sprintf("throughput, %d in flight", n), medians(tps), "calls/s"})
	}

	fmt.Printf("| measure | %s | %s | molgen / floor |\n|---|---:|---:|---:|\n", impls[0].name, impls[1].name)
	for _, r := range rows {
		f := "%.0f"
		if r.unit == "ms" {
			f = "%.2f"
		}
		fmt.Printf("| %s | "+f+" %s | "+f+" %s | %.2f |\n", r.label, r.vals[0], r.unit, r.vals[1], r.unit, r.vals[1]/r.vals[0])
	}
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

// latency makes n sequential calls and returns p50 and p99 in ms.
func latency(c caller, n int) (float64, float64) {
	lat := make([]time.Duration, n)
	for i := range lat {
		start := time.Now()
		if _, err := c.add(context.Background(), i, 1); err != nil {
			check(err)
		}
		lat[i] = time.Since(start)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return ms(lat[n/2]), ms(lat[n*99/100])
}

// throughput keeps n calls in flight for d and returns calls per second.
func throughput(c caller, n int, d time.Duration) float64 {
	var done atomic.Int64
	var failed atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				v, err := c.add(ctx, i, 1)
				cancel()
				if err != nil || v != i+1 {
					failed.Add(1)
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		fmt.Fprintf(os.Stderr, "rpcbench: %d calls failed\n", f)
	}
	return float64(done.Load()) / time.Since(start).Seconds()
}

// molgenCaller calls testsvc.Calc.Add through generated code, from a client
// node to a server node, both in this process.
type molgenCaller struct {
	client, server *molgen.Node
	calc           testsvc.Calc
}

func newMolgen(brokers []string, partitions int) caller {
	yaml := fmt.Sprintf("app: %s\nkafka:\n  partitions: %d\nnodes:\n  server: [calc, relay]\n  client: [codec]\n", kafkatest.App("bench"), partitions)
	pl, err := molgen.ParsePlacement("bench.yaml", []byte(yaml))
	check(err)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	mk := func(node string, reg func(*molgen.Node) error) *molgen.Node {
		n, err := molgen.NewNode(molgen.Options{Placement: pl, Node: node, Brokers: brokers, Logger: quiet})
		check(err)
		check(reg(n))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		check(n.Start(ctx))
		return n
	}
	server := mk("server", func(n *molgen.Node) error {
		if err := testsvc.RegisterCalc(n, testsvc.NewCalc()); err != nil {
			return err
		}
		return testsvc.RegisterRelay(n, testsvc.NewRelay(testsvc.NewCalcClient(n)))
	})
	client := mk("client", func(n *molgen.Node) error { return testsvc.RegisterCodec(n, testsvc.NewCodec()) })
	return &molgenCaller{client: client, server: server, calc: testsvc.NewCalcClient(client)}
}

func (m *molgenCaller) add(ctx context.Context, a, b int) (int, error) { return m.calc.Add(ctx, a, b) }

func (m *molgenCaller) close() {
	m.client.Close()
	m.server.Close()
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpcbench:", err)
		os.Exit(1)
	}
}

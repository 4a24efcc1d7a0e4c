package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	molgen "github.com/molgen/molgen/runtime"
)

// stageObserver collects where the time of molgen's remote calls goes,
// from the stages the runtime reports to an Observer (CallInfo).
type stageObserver struct {
	mu sync.Mutex
	stageTimes
}

type stageTimes struct {
	produce, queued, handler    []time.Duration
	replied, whole, afterAckAll []time.Duration
}

func (o *stageObserver) Start(ctx context.Context, _ *molgen.CallInfo) context.Context { return ctx }

func (o *stageObserver) End(_ context.Context, c *molgen.CallInfo, err error) {
	if err != nil || !c.Remote {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if c.Server {
		if !c.Written.IsZero() && !c.Taken.IsZero() {
			o.queued = append(o.queued, c.Taken.Sub(c.Written))
		}
		o.handler = append(o.handler, c.Duration)
		return
	}
	if c.Sent.IsZero() || c.Received.IsZero() {
		return
	}
	o.produce = append(o.produce, c.Sent.Sub(c.Start))
	o.afterAckAll = append(o.afterAckAll, c.Received.Sub(c.Sent))
	if !c.ReplyWritten.IsZero() {
		o.replied = append(o.replied, c.Received.Sub(c.ReplyWritten))
	}
	o.whole = append(o.whole, c.Duration)
}

func (o *stageObserver) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stageTimes = stageTimes{}
}

// stages measures molgen alone in topo with an Observer installed, at each
// level of calls in flight, and prints where a call's time goes.
func stages(topo topology, brokers []string, partitions int, d time.Duration, levels []int) {
	obs := &stageObserver{}
	molgenObserver = obs
	defer func() { molgenObserver = nil }()
	c := newMolgen(brokers, partitions, topo)
	defer c.close()
	for j := 0; j < 200; j++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		check(c.add(ctx, j))
		cancel()
	}
	fmt.Printf("\n## where a molgen call's time goes: %s\n\n", topo.desc)
	fmt.Println("Medians (p99) in µs of the stages the runtime reports to an Observer.")
	fmt.Println("The rows measured from a record's timestamp read 0-1000 µs high (500 on")
	fmt.Println("average): Kafka keeps it in whole milliseconds, the writer's clock cut down.")
	fmt.Println()
	fmt.Print("| stage |")
	for _, n := range levels {
		fmt.Printf(" %d in flight |", n)
	}
	fmt.Print("\n|---|")
	for range levels {
		fmt.Print("---:|")
	}
	fmt.Println()
	var cols []*stageTimes
	for _, n := range levels {
		obs.reset()
		throughput(c, n, d)
		obs.mu.Lock()
		snap := obs.stageTimes
		obs.mu.Unlock()
		cols = append(cols, &snap)
	}
	rows := []struct {
		label string
		get   func(*stageTimes) []time.Duration
	}{
		{"caller: request written (call start → produce acknowledged)", func(o *stageTimes) []time.Duration { return o.produce }},
		{"server: request appended → taken from Kafka (from the record timestamp)", func(o *stageTimes) []time.Duration { return o.queued }},
		{"server: handler (decode, run, encode)", func(o *stageTimes) []time.Duration { return o.handler }},
		{"caller: reply appended → caller woken (from the record timestamp)", func(o *stageTimes) []time.Duration { return o.replied }},
		{"caller: request acknowledged → reply received", func(o *stageTimes) []time.Duration { return o.afterAckAll }},
		{"caller: whole call", func(o *stageTimes) []time.Duration { return o.whole }},
	}
	for _, r := range rows {
		fmt.Printf("| %s |", r.label)
		for _, col := range cols {
			v := r.get(col)
			fmt.Printf(" %s (%s) |", quantile(v, 0.5), quantile(v, 0.99))
		}
		fmt.Println()
	}
}

// quantile formats the q-quantile of ds in microseconds.
func quantile(ds []time.Duration, q float64) string {
	if len(ds) == 0 {
		return "–"
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return fmt.Sprintf("%.0f", float64(ds[int(q*float64(len(ds)-1))])/float64(time.Microsecond))
}

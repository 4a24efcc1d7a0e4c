package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Measuring another build of molgen side by side: rpcbench can run as an
// agent ("rpcbench agent -impl molgen -topology T ..."), which builds one
// implementation's callers in its own process and measures what it is
// told on stdin ("latency N", "throughput N D"), answering each with one
// line of JSON. This file compiles into older checkouts of rpcbench too
// (it uses only what rpcbench has had since it measured CPU per call): a
// build of an earlier commit, with this file copied in, is an agent of
// that molgen; -old names it, and measure alternates it with the others
// round by round, in the same run, on the same broker.

func init() {
	if len(os.Args) > 1 && os.Args[1] == "agent" {
		os.Exit(runAgent(os.Args[2:], os.Stdin, os.Stdout))
	}
}

// agentResult is one measurement as an agent reports it.
type agentResult struct {
	P50, P99                                                 float64 `json:",omitempty"`
	CallsPerSec, CPUPerCall, BrokerCPUPerCall, AllocsPerCall float64 `json:",omitempty"`
	Err                                                      string  `json:",omitempty"`
}

func runAgent(args []string, in io.Reader, out io.Writer) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "Kafka brokers")
	partitions := fs.Int("partitions", 8, "partitions of each request topic")
	topoKey := fs.String("topology", "separate", "topology")
	name := fs.String("impl", "molgen", "implementation")
	fs.IntVar(&brokerPID, "broker-pid", 0, "pid of a local real broker")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var topo *topology
	for i := range topologies {
		if topologies[i].key == *topoKey {
			topo = &topologies[i]
		}
	}
	var im *impl
	for i := range impls {
		if impls[i].name == *name {
			im = &impls[i]
		}
	}
	if topo == nil || im == nil {
		fmt.Fprintf(os.Stderr, "agent: unknown topology %q or implementation %q\n", *topoKey, *name)
		return 2
	}
	c := im.make(strings.Split(*brokers, ","), *partitions, *topo)
	defer c.close()
	for j := 0; j < 200; j++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := c.add(ctx, j)
		cancel()
		check(err)
	}
	throughput(c, 64, 500*time.Millisecond)
	enc := json.NewEncoder(out)
	check(enc.Encode(agentResult{})) // ready
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		var r agentResult
		switch {
		case len(f) == 2 && f[0] == "latency":
			var n int
			fmt.Sscan(f[1], &n)
			r.P50, r.P99 = latency(c, n)
		case len(f) == 3 && f[0] == "throughput":
			var n int
			fmt.Sscan(f[1], &n)
			d, err := time.ParseDuration(f[2])
			check(err)
			res := throughput(c, n, d)
			r.CallsPerSec, r.CPUPerCall, r.BrokerCPUPerCall, r.AllocsPerCall = res.callsPerSec, res.cpuPerCall, res.brokerCPUPerCall, res.allocsPerCall
		default:
			r.Err = "unknown command " + sc.Text()
		}
		check(enc.Encode(r))
	}
	return 0
}

// agentCaller is an implementation measured by an agent process.
type agentCaller struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	dec *json.Decoder
}

// measurer is a caller that measures itself (in another process).
type measurer interface {
	measureLatency(n int) (p50, p99 float64)
	measureThroughput(n int, d time.Duration) result
}

// newAgent starts bin as an agent of its molgen for topo.
func newAgent(bin string) func(brokers []string, partitions int, topo topology) caller {
	return func(brokers []string, partitions int, topo topology) caller {
		cmd := exec.Command(bin, "agent", "-impl", "molgen", "-brokers", strings.Join(brokers, ","),
			"-partitions", fmt.Sprint(partitions), "-topology", topo.key, "-broker-pid", fmt.Sprint(brokerPID))
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		check(err)
		out, err := cmd.StdoutPipe()
		check(err)
		check(cmd.Start())
		a := &agentCaller{cmd: cmd, in: in, dec: json.NewDecoder(out)}
		a.read() // ready: warmed up
		return a
	}
}

func (a *agentCaller) read() agentResult {
	var r agentResult
	check(a.dec.Decode(&r))
	if r.Err != "" {
		check(fmt.Errorf("agent: %s", r.Err))
	}
	return r
}

func (a *agentCaller) measureLatency(n int) (float64, float64) {
	fmt.Fprintf(a.in, "latency %d\n", n)
	r := a.read()
	return r.P50, r.P99
}

func (a *agentCaller) measureThroughput(n int, d time.Duration) result {
	fmt.Fprintf(a.in, "throughput %d %s\n", n, d)
	r := a.read()
	return result{callsPerSec: r.CallsPerSec, cpuPerCall: r.CPUPerCall, brokerCPUPerCall: r.BrokerCPUPerCall, allocsPerCall: r.AllocsPerCall}
}

// add is not used: an agent warms itself up and measures itself.
func (a *agentCaller) add(context.Context, int) error { return nil }
func (a *agentCaller) requestTopics() []string        { return nil }

func (a *agentCaller) close() {
	a.in.Close()
	a.cmd.Wait()
}

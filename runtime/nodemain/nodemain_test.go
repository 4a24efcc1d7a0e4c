package nodemain

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/proctest"
	"github.com/molgen/molgen/runtime"
	"github.com/molgen/molgen/runtime/placement"
	"github.com/molgen/molgen/runtime/profile"
)

// runNodeInTest runs runNode in this process and returns its exit status
// and what it wrote to stderr. It restores the default loggers runNode
// replaces.
func runNodeInTest(t *testing.T, p Program, args ...string) (int, string) {
	t.Helper()
	old := slog.Default()
	defer func() {
		slog.SetDefault(old)
		log.SetOutput(os.Stderr)
		log.SetFlags(log.LstdFlags)
	}()
	var stderr proctest.Buffer
	status := run(p, args, io.Discard, &stderr)
	return status, stderr.String()
}

// testProgram is a monolith node (no Kafka) running mains.
func testProgram(mains ...Main) Program {
	p := Program{Node: "test", Setup: func(context.Context, *runtime.Node) error { return nil }, Run: mains}
	for _, m := range mains {
		p.Mains = append(p.Mains, m.Name)
	}
	return p
}

// TestRunNodeFailingMainCancelsOthers guards the exit status of a node
// whose main fails: 1, with the failure logged, and the node's other mains
// see their context cancelled instead of running on.
func TestRunNodeFailingMainCancelsOthers(t *testing.T) {
	waiting := make(chan struct{})
	sawDone := make(chan struct{})
	var early error
	status, out := runNodeInTest(t, testProgram(
		Main{Name: "failing", Run: func(ctx context.Context, n *runtime.Node) error {
			<-waiting
			return errors.New("boom")
		}},
		Main{Name: "waiter", Run: func(ctx context.Context, n *runtime.Node) error {
			early = ctx.Err()
			close(waiting)
			select {
			case <-ctx.Done():
				close(sawDone)
				return ctx.Err()
			case <-time.After(3 * time.Second):
				return nil
			}
		}},
	))
	if status != 1 {
		t.Errorf("status = %d, want 1\n%s", status, out)
	}
	if early != nil {
		t.Errorf("waiter's context ended before the other main failed: %v", early)
	}
	select {
	case <-sawDone:
	default:
		t.Errorf("waiter's context was not cancelled when the other main failed\n%s", out)
	}
	if !strings.Contains(out, `msg="main failed" main=failing err=boom`) {
		t.Errorf("the failure is not logged:\n%s", out)
	}
}

// TestRunNodeMainsSucceed guards exit status 0 when every main returns nil,
// after every main ran.
func TestRunNodeMainsSucceed(t *testing.T) {
	var mu sync.Mutex
	ran := map[string]bool{}
	main := func(name string) Main {
		return Main{Name: name, Run: func(ctx context.Context, n *runtime.Node) error {
			mu.Lock()
			ran[name] = true
			mu.Unlock()
			return nil
		}}
	}
	status, out := runNodeInTest(t, testProgram(main("a"), main("b")))
	if status != 0 {
		t.Errorf("status = %d, want 0\n%s", status, out)
	}
	if !ran["a"] || !ran["b"] {
		t.Errorf("mains run: %v, want a and b", ran)
	}
	if !strings.Contains(out, `msg="node stopped" status=0`) {
		t.Errorf("no clean stop logged:\n%s", out)
	}
}

// TestRunNodeMainsFlag guards -mains: it runs only the mains named, and a
// name the node does not have is a usage error (status 2) whose message
// lists the node's mains.
func TestRunNodeMainsFlag(t *testing.T) {
	var mu sync.Mutex
	var ran []string
	main := func(name string) Main {
		return Main{Name: name, Run: func(ctx context.Context, n *runtime.Node) error {
			mu.Lock()
			ran = append(ran, name)
			mu.Unlock()
			return nil
		}}
	}
	p := testProgram(main("alpha"), main("beta"))

	status, out := runNodeInTest(t, p, "-mains", "beta")
	if status != 0 || len(ran) != 1 || ran[0] != "beta" {
		t.Errorf("-mains beta: status %d, ran %v; want 0 and only beta\n%s", status, ran, out)
	}

	ran = nil
	status, out = runNodeInTest(t, p, "-mains", "beta,gamma")
	if status != 2 {
		t.Errorf("-mains with an unknown main: status %d, want 2\n%s", status, out)
	}
	if !strings.Contains(out, `no main "gamma"`) || !strings.Contains(out, "alpha, beta") {
		t.Errorf("-mains with an unknown main: message does not name it and the node's mains:\n%s", out)
	}
	if len(ran) != 0 {
		t.Errorf("-mains with an unknown main ran %v", ran)
	}
}

// TestRunNodeFlags guards the exit status of command-line problems: a bad
// -log-level or an unknown flag is a usage error (2) and runs nothing;
// -h prints the usage and exits 0.
func TestRunNodeFlags(t *testing.T) {
	cases := []struct {
		args   []string
		status int
		says   string
	}{
		{[]string{"-log-level", "loud"}, 2, `invalid -log-level "loud"`},
		{[]string{"-no-such-flag"}, 2, "flag provided but not defined: -no-such-flag"},
		{[]string{"-h"}, 0, "It runs mains: m."},
		{[]string{"-log-level", "warn"}, 0, ""},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			ran := false
			p := testProgram(Main{Name: "m", Run: func(ctx context.Context, n *runtime.Node) error { ran = true; return nil }})
			status, out := runNodeInTest(t, p, c.args...)
			if status != c.status {
				t.Errorf("status = %d, want %d\n%s", status, c.status, out)
			}
			if !strings.Contains(out, c.says) {
				t.Errorf("stderr does not say %q:\n%s", c.says, out)
			}
			if wantRun := c.status == 0 && c.args[0] != "-h"; ran != wantRun {
				t.Errorf("main ran: %t, want %t", ran, wantRun)
			}
		})
	}
}

// twoNodes spans two nodes and names no brokers: node a needs Kafka.
const twoNodes = `app: t
nodes:
  a: [m]
  b: [svc]
`

// TestRunNodeBrokers guards where a node finds Kafka: -brokers, else
// MOLGEN_KAFKA_BROKERS, else the placement; with none it fails with a
// message saying so. Nothing listens on 127.0.0.1:1 or :2, so the node
// fails to start (status 1) naming the address it tried.
func TestRunNodeBrokers(t *testing.T) {
	p := Program{
		Node: "a", PlacementFile: "p.yaml", Placement: twoNodes,
		Services: []string{"svc"}, Mains: []string{"m"},
		Setup: func(context.Context, *runtime.Node) error { return nil },
		Run:   []Main{{Name: "m", Run: func(ctx context.Context, n *runtime.Node) error { return nil }}},
	}
	cases := []struct {
		name, env string
		args      []string
		says, not string
	}{
		{"env", "127.0.0.1:1", nil, "cannot reach Kafka at 127.0.0.1:1", ""},
		{"none", "", nil, "no brokers are set", "cannot reach"},
		{"flag over env", "127.0.0.1:1", []string{"-brokers", "127.0.0.1:2"}, "cannot reach Kafka at 127.0.0.1:2", "127.0.0.1:1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("MOLGEN_KAFKA_BROKERS", c.env)
			status, out := runNodeInTest(t, p, append([]string{"-kafka-wait", "200ms"}, c.args...)...)
			if status != 1 {
				t.Errorf("status = %d, want 1\n%s", status, out)
			}
			if !strings.Contains(out, c.says) {
				t.Errorf("stderr does not say %q:\n%s", c.says, out)
			}
			if c.not != "" && strings.Contains(out, c.not) {
				t.Errorf("stderr says %q:\n%s", c.not, out)
			}
		})
	}
}

// childEnv, set in the environment of a child test process, names the
// node that process runs (see actAsNode).
const childEnv = "MOLGEN_RUNTIME_TEST_NODE"

// actAsNode makes this test process the node named by childEnv, when set:
// it runs the node and exits with its status.
func actAsNode(programs map[string]Program) {
	name := os.Getenv(childEnv)
	if name == "" {
		return
	}
	p, ok := programs[name]
	if !ok {
		os.Stderr.WriteString("no test node " + name + "\n")
		os.Exit(3)
	}
	os.Exit(run(p, nil, os.Stdout, os.Stderr))
}

// startNode runs the calling test again in a child process, as the node
// named name.
func startNode(t *testing.T, name string) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, name, os.Args[0], []string{childEnv + "=" + name}, "-test.run=^"+t.Name()+"$", "-test.count=1")
}

// TestRunNodeServesUntilSignal guards a node without mains: it serves
// until SIGTERM, then drains and exits 0; and a node whose mains return
// context.Canceled because of the signal also exits 0.
func TestRunNodeServesUntilSignal(t *testing.T) {
	actAsNode(map[string]Program{
		"serve": testProgram(),
		"stoppable": testProgram(Main{Name: "loop", Run: func(ctx context.Context, n *runtime.Node) error {
			<-ctx.Done()
			return ctx.Err()
		}}),
	})
	for _, c := range []struct{ node, says string }{
		{"serve", "signal received: draining"},
		{"stoppable", `msg="main stopped by signal" main=loop`},
	} {
		t.Run(c.node, func(t *testing.T) {
			child := startNode(t, c.node)
			child.WaitLog(t, "node started", 10*time.Second)
			if strings.Contains(child.Stderr(), "node stopped") {
				t.Fatalf("the node stopped before it was signalled:\n%s", child.Stderr())
			}
			child.Signal(syscall.SIGTERM)
			if status := child.Wait(t, 5*time.Second); status != 0 {
				t.Errorf("status after SIGTERM = %d, want 0\n%s", status, child.Stderr())
			}
			out := child.Stderr()
			if !strings.Contains(out, c.says) || !strings.Contains(out, `msg="node stopped" status=0`) {
				t.Errorf("stderr does not say %q and that the node stopped:\n%s", c.says, out)
			}
		})
	}
}

// TestRunNodeSecondSignalExitsAtOnce guards the way out of a drain that
// does not end: a second SIGTERM while the first one's drain waits for a
// main that ignores its context exits at once, with status 1.
func TestRunNodeSecondSignalExitsAtOnce(t *testing.T) {
	actAsNode(map[string]Program{
		"stuck": testProgram(Main{Name: "stuck", Run: func(ctx context.Context, n *runtime.Node) error {
			<-ctx.Done()
			time.Sleep(30 * time.Second) // ignores the drain
			return nil
		}}),
	})
	child := startNode(t, "stuck")
	child.WaitLog(t, "node started", 10*time.Second)
	child.Signal(syscall.SIGTERM)
	// Logged once the node listens for the second signal.
	child.WaitLog(t, "a second SIGINT or SIGTERM exits at once", 5*time.Second)
	sent := time.Now()
	child.Signal(syscall.SIGTERM)
	status := child.Wait(t, 2*time.Second)
	if took := time.Since(sent); took > time.Second {
		t.Errorf("the node exited %v after the second signal, want at once", took)
	}
	if status != 1 {
		t.Errorf("status after a second signal = %d, want 1\n%s", status, child.Stderr())
	}
	out := child.Stderr()
	if !strings.Contains(out, "second signal: exiting without draining") || strings.Contains(out, "node stopped") {
		t.Errorf("stderr does not say the node exited without draining:\n%s", out)
	}
}

// TestRunNodeMainPanics guards a main that panics: the node exits 1 (not
// with the runtime's crash status 2), logs the panic, and cancels its
// other mains.
func TestRunNodeMainPanics(t *testing.T) {
	actAsNode(map[string]Program{
		"panicky": testProgram(
			Main{Name: "panicky", Run: func(ctx context.Context, n *runtime.Node) error {
				panic("kaboom-42")
			}},
			Main{Name: "waiter", Run: func(ctx context.Context, n *runtime.Node) error {
				select {
				case <-ctx.Done():
					n.Logger().Info("waiter cancelled")
				case <-time.After(3 * time.Second):
				}
				return nil
			}},
		),
	})
	child := startNode(t, "panicky")
	status := child.Wait(t, 10*time.Second)
	out := child.Stderr()
	if status != 1 {
		t.Errorf("status = %d, want 1\n%s", status, out)
	}
	if !strings.Contains(out, "main panicky panicked: kaboom-42") {
		t.Errorf("the panic is not logged:\n%s", out)
	}
	if !strings.Contains(out, "waiter cancelled") {
		t.Errorf("the other main was not cancelled:\n%s", out)
	}
}

// TestRunNodeWritesItsProfileOnSignalAndOnExit: with -profile DIR/ a node
// writes DIR/<node>-<instance>.json when it receives SIGUSR1 and again when
// it exits, with what it recorded so far.
func TestRunNodeWritesItsProfileOnSignalAndOnExit(t *testing.T) {
	dir := t.TempDir() + "/profiles/"
	file := dir + "monolith-inst.json" // no placement: the monolith
	dumped := make(chan error, 1)
	status, out := runNodeInTest(t, testProgram(Main{Name: "main", Run: func(ctx context.Context, n *runtime.Node) error {
		if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
			return err
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(file); err == nil {
				break
			}
			if time.Now().After(deadline) {
				dumped <- errors.New("no profile written after SIGUSR1")
				return nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		dumped <- nil
		return nil
	}}), "-instance", "inst", "-profile", dir)
	if status != 0 {
		t.Fatalf("status %d:\n%s", status, out)
	}
	if err := <-dumped; err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if n := strings.Count(out, "traffic profile written"); n != 2 {
		t.Errorf("the node logged %d profile writes, want 2 (SIGUSR1 and exit):\n%s", n, out)
	}
	p, err := profile.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Windows) != 1 || p.Windows[0].Node != "monolith" || p.Windows[0].Instance != "inst" || p.Seconds <= 0 {
		t.Errorf("profile %+v", p)
	}
}

// TestKafkaFlags: -kafka-replication-factor and -kafka-group-protocol (and
// their variables) override the placement's, and bad values are refused.
func TestKafkaFlags(t *testing.T) {
	pl := &placement.Placement{}
	pl.Kafka.ReplicationFactor = 1
	if err := applyKafkaFlags(pl, 3, "KIP-848"); err != nil || pl.Kafka.ReplicationFactor != 3 || pl.Kafka.GroupProtocol != "consumer" {
		t.Fatalf("applyKafkaFlags: %v, %+v", err, pl.Kafka)
	}
	if err := applyKafkaFlags(pl, 0, ""); err != nil || pl.Kafka.ReplicationFactor != 3 {
		t.Fatalf("no flags changed the placement: %v, %+v", err, pl.Kafka)
	}
	for _, c := range []struct {
		rf       int
		protocol string
		env      string
		want     string
	}{
		{-1, "", "", "-kafka-replication-factor must be a positive integer"},
		{0, "eager", "", "must be classic or consumer"},
		{0, "", "three", `MOLGEN_KAFKA_REPLICATION_FACTOR must be a positive integer, not "three"`},
	} {
		t.Setenv("MOLGEN_KAFKA_REPLICATION_FACTOR", c.env)
		if err := applyKafkaFlags(pl, c.rf, c.protocol); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c, err, c.want)
		}
	}
	t.Setenv("MOLGEN_KAFKA_REPLICATION_FACTOR", "2")
	if envInt("MOLGEN_KAFKA_REPLICATION_FACTOR") != 2 {
		t.Error("envInt does not read the variable")
	}
}

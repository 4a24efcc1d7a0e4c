package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/molgen/molgen/internal/build"
	"github.com/molgen/molgen/internal/load"
)

// moduleRoot returns the directory of this checkout's go.mod, found from
// the working directory upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/molgen/molgen\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("run this from inside the molgen checkout (no go.mod of github.com/molgen/molgen above the working directory)")
}

// placementYAML is the placement the server binaries are built from: the
// server node hosts calc and relay (as in internal/testsvc's process
// tests); the client node (codec) runs in this process.
const placementYAML = `app: APP
kafka:
  partitions: 4
nodes:
  server: [calc, relay]
  client: [codec]
`

// buildServer builds the node binaries of placementYAML for app into dir
// with 'molgen build' (build.Build) and returns the server binary.
func buildServer(root, dir, app string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	pf := filepath.Join(dir, "placement.yaml")
	if err := os.WriteFile(pf, []byte(strings.ReplaceAll(placementYAML, "APP", app)), 0o644); err != nil {
		return "", err
	}
	bins, err := build.Build(build.Config{
		Load:      load.Config{Dir: root, Patterns: []string{"./internal/testsvc"}},
		Placement: pf,
		Out:       dir,
	})
	if err != nil {
		return "", err
	}
	for _, b := range bins {
		if b.Node == "server" {
			return b.Path, nil
		}
	}
	return "", fmt.Errorf("molgen build wrote no server binary")
}

// kafkaScript runs scripts/kafka/kafka.sh on this suite's own port and
// data directory, never the default ones: a single broker, or with
// cluster set the 3-broker cluster (its ports port..port+5).
type kafkaScript struct {
	script  string
	port    int
	dir     string
	log     *os.File // the script's stderr, appended
	cluster bool
}

// Addr is the broker's bootstrap address (the cluster's bootstrap list).
func (k *kafkaScript) Addr() string {
	if k.cluster {
		return strings.Join(k.Brokers(), ",")
	}
	return "127.0.0.1:" + strconv.Itoa(k.port)
}

// Brokers is the bootstrap list: broker N of the cluster listens on
// port+2(N-1), as kafka.sh places it.
func (k *kafkaScript) Brokers() []string {
	if !k.cluster {
		return []string{k.Addr()}
	}
	var out []string
	for n := 1; n <= clusterSize; n++ {
		out = append(out, "127.0.0.1:"+strconv.Itoa(k.port+2*(n-1)))
	}
	return out
}

// run runs one subcommand, bounded by timeout.
func (k *kafkaScript) run(timeout time.Duration, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.script, args...)
	cmd.Env = append(os.Environ(),
		"MOLGEN_KAFKA_DIR="+k.dir,
		"MOLGEN_KAFKA_PORT="+strconv.Itoa(k.port),
		"MOLGEN_KAFKA_CONTROLLER_PORT="+strconv.Itoa(k.port+1),
		"MOLGEN_KAFKA_STOP_TIMEOUT=20",
		"MOLGEN_KAFKA_START_TIMEOUT=90",
	)
	if k.cluster {
		// Each broker gets kafka.sh's small cluster heap; the
		// controller ports follow from the base port.
		cmd.Env = append(cmd.Env, "MOLGEN_KAFKA_HEAP_OPTS=-Xms128m -Xmx384m")
	}
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = k.log
	cmd.WaitDelay = 5 * time.Second
	fmt.Fprintf(k.log, "--- %s kafka.sh %s\n", time.Now().Format(time.TimeOnly), strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kafka.sh %s: %v (log: %s)", strings.Join(args, " "), err, k.log.Name())
	}
	return nil
}

// Start starts a fresh broker (its data dir wiped), or a fresh cluster.
func (k *kafkaScript) Start() error {
	if k.cluster {
		return k.run(4*time.Minute, "start", "-cluster", "-port", strconv.Itoa(k.port))
	}
	return k.run(3*time.Minute, "start", "-port", strconv.Itoa(k.port))
}

// Broker runs a per-broker command of the cluster (stop, kill, pause,
// resume, restart, start) on broker n.
func (k *kafkaScript) Broker(cmd string, n int32) error {
	timeout := 30 * time.Second
	if cmd == "start" || cmd == "restart" {
		timeout = 3 * time.Minute
	}
	return k.run(timeout, cmd, "-broker", strconv.Itoa(int(n)))
}

// Restart stops the broker and starts it again on its data.
func (k *kafkaScript) Restart() error {
	return k.run(3*time.Minute, "restart", "-port", strconv.Itoa(k.port))
}

// Running reports whether broker n of the cluster runs (paused or not).
func (k *kafkaScript) Running(n int32) bool {
	return k.run(30*time.Second, "status", "-broker", strconv.Itoa(int(n))) == nil
}

// Stop stops the broker (every broker of the cluster); it is a no-op
// when none runs.
func (k *kafkaScript) Stop() error { return k.run(time.Minute, "stop") }

// Pause SIGSTOPs the broker's JVM.
func (k *kafkaScript) Pause() error { return k.run(30*time.Second, "pause") }

// Resume SIGCONTs the broker's JVM.
func (k *kafkaScript) Resume() error { return k.run(30*time.Second, "resume") }

// proc is a node binary running as a child process, its stderr (the
// node's log) written to a file.
type proc struct {
	Name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	exited  time.Time
}

// procs tracks every child process, so that any exit of the program
// kills what is left.
var procs struct {
	sync.Mutex
	all []*proc
}

// startProc starts bin as instance name with args; its log goes to
// logPath. The child dies with this program (Pdeathsig).
func startProc(name, bin, logPath string, env []string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &proc{Name: name, logPath: logPath, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = f
	p.cmd.Stderr = f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	procs.Lock()
	procs.all = append(procs.all, p)
	procs.Unlock()
	go func() {
		p.err = p.cmd.Wait()
		p.exited = time.Now()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Log returns the process's log so far.
func (p *proc) Log() string {
	data, _ := os.ReadFile(p.logPath)
	return string(data)
}

// WaitLog waits until the log contains s, the process exits, or timeout.
func (p *proc) WaitLog(s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Log(), s) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (%v) before logging %q (log %s)", p.Name, p.err, s, p.logPath)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not log %q within %v (log %s)", p.Name, s, timeout, p.logPath)
		}
		time.Sleep(25 * time.Millisecond)
	}
	return nil
}

// Signal sends sig to the process (nothing if it has exited).
func (p *proc) Signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(sig)
	}
}

// Wait waits up to timeout for the process to exit and returns its exit
// status (-1 when a signal killed it) and whether it exited in time.
func (p *proc) Wait(timeout time.Duration) (int, bool) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return 0, false
	}
	if p.err == nil {
		return 0, true
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode(), true
	}
	return -1, true
}

// Running reports whether the process has not exited.
func (p *proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// killAll kills every child still running and waits for them (bounded).
func killAll() {
	procs.Lock()
	all := append([]*proc(nil), procs.all...)
	procs.Unlock()
	for _, p := range all {
		if p.Running() {
			p.cmd.Process.Kill()
			p.Wait(10 * time.Second)
		}
	}
}

// countLines counts the lines of path that contain every one of subs.
func countLines(path string, subs ...string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		ok := true
		for _, s := range subs {
			if !strings.Contains(line, s) {
				ok = false
				break
			}
		}
		if ok {
			n++
		}
	}
	return n
}

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/proctest"
	"github.com/molgen/molgen/internal/short"
)

// readmeBlock returns the shell lines between the README's markers
// <!-- name:begin --> and <!-- name:end -->, without the code fences.
func readmeBlock(t *testing.T, root, name string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- "+name+":begin -->")
	block, _, ok2 := strings.Cut(rest, "<!-- "+name+":end -->")
	if !ok || !ok2 {
		t.Fatalf("README.md has no %s markers", name)
	}
	var script []string
	for _, line := range strings.Split(block, "\n") {
		if !strings.HasPrefix(line, "```") {
			script = append(script, line)
		}
	}
	return strings.Join(script, "\n")
}

// freePort returns a TCP port nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// runScript runs a README block with bash from root, killing its
// background jobs when it ends and the whole group after limit.
func runScript(t *testing.T, root, script string, limit time.Duration) string {
	t.Helper()
	src := "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script + "\n"
	cmd := exec.Command("bash", "-c", src)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out proctest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the README block failed: %v\n%s", err, out.String())
		}
	case <-time.After(limit):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("the README block took over %v:\n%s", limit, out.String())
	}
	return out.String()
}

// TestReadmeAdvise runs the README's walk-through of molgen advise as
// written (with free ports for the broker and the gateway): measure the
// blog under microservices, advise, rebuild with the proposal, measure
// again.
func TestReadmeAdvise(t *testing.T) {
	short.Skip(t, "builds and runs the blog's node binaries twice")
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	script := readmeBlock(t, root, "advise")
	script = strings.ReplaceAll(strings.ReplaceAll(script, "19092", freePort(t)), "18080", freePort(t))
	out := runScript(t, root, script, 5*time.Minute)
	for _, want := range []string{
		"+   users: [posts, users]\n",
		"search: exact: every placement of 4 services and mains considered",
		"    remote calls/request          ", // the per-request table
		`users__posts -- "`,                  // after: posts -> users is direct
		"saving: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the walk-through's output lacks %q:\n%s", want, out)
		}
	}
}

// TestReadmeQuickStart runs the README's quick start exactly as written
// (with a free port for the embedded broker), from the checkout's root.
func TestReadmeQuickStart(t *testing.T) {
	short.Skip(t, "runs the README's quick start: a new module, go mod tidy, builds, node processes")
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- quickstart:begin -->")
	block, _, ok2 := strings.Cut(rest, "<!-- quickstart:end -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no quickstart markers")
	}
	var script []string
	for _, line := range strings.Split(block, "\n") {
		if !strings.HasPrefix(line, "```") {
			script = append(script, line)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	// Background jobs end with the script, whatever happens.
	src := "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + strings.ReplaceAll(strings.Join(script, "\n"), "19092", port) +
		"\n" + `for i in $(seq 100); do ! kill -0 $broker 2>/dev/null && break; sleep 0.1; done` + "\n" +
		// The module the quick start made: go.mod as it was left, and
		// whether it is tidy (go mod tidy -diff fails when it is not).
		"echo '=== go.mod'; cat go.mod; echo '=== end'; go mod tidy -diff\n"
	cmd := exec.Command("bash", "-c", src)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	done := make(chan struct{})
	var out []byte
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatal("the quick start took over 5 minutes")
	}
	if err != nil {
		t.Fatalf("the README's quick start failed: %v\n%s", err, out)
	}
	const want = "hello, world (and for no name: greeter: no name, errors.Is: true)"
	if n := strings.Count(string(out), want); n != 2 {
		t.Fatalf("the quick start printed %q %d times, want 2 (monolith and over Kafka):\n%s", want, n, out)
	}
	// Generated code imports molgen's runtime, so once the quick start is
	// done molgen is a direct requirement, not "// indirect".
	_, gomod, _ := strings.Cut(string(out), "=== go.mod\n")
	gomod, _, _ = strings.Cut(gomod, "=== end\n")
	if err := checkRequiresDirectly(gomod, "github.com/molgen/molgen"); err != nil {
		t.Fatalf("after the quick start: %v\n%s", err, gomod)
	}
}

// checkRequiresDirectly reports an error unless gomod, the text of a
// go.mod file, requires module on a line not marked "// indirect".
func checkRequiresDirectly(gomod, module string) error {
	for _, line := range strings.Split(gomod, "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) < 2 || f[0] != module {
			continue
		}
		if strings.Contains(line, "// indirect") {
			return fmt.Errorf("go.mod marks %s // indirect: %q", module, strings.TrimSpace(line))
		}
		return nil
	}
	return fmt.Errorf("go.mod does not require %s", module)
}

func TestCheckRequiresDirectly(t *testing.T) {
	const m = "github.com/molgen/molgen"
	for gomod, ok := range map[string]bool{
		"module x\n\nrequire github.com/molgen/molgen v0.0.0\n":                                true,
		"module x\n\nrequire (\n\tgithub.com/molgen/molgen v0.0.0\n\tgolang.org/x/mod v1\n)\n": true,
		"module x\n\nrequire (\n\tgithub.com/molgen/molgen v0.0.0 // indirect\n)\n":            false,
		"module x\n\nrequire github.com/molgen/molgen v0.0.0 // indirect\n":                    false,
		"module x\n\nrequire github.com/molgen/molgenx v0.0.0\n":                               false,
	} {
		if err := checkRequiresDirectly(gomod, m); (err == nil) != ok {
			t.Errorf("checkRequiresDirectly(%q) = %v, want ok=%t", gomod, err, ok)
		}
	}
}

package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadmeQuickStart runs the README's quick start exactly as written
// (with a free port for the embedded broker), from the checkout's root.
func TestReadmeQuickStart(t *testing.T) {
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
		"\n" + `for i in $(seq 100); do ! kill -0 $broker 2>/dev/null && break; sleep 0.1; done` + "\n"
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
}

package testsvc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/build"
	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/load"
	"github.com/molgen/molgen/internal/proctest"
	"github.com/molgen/molgen/internal/short"
	"github.com/molgen/molgen/runtime"
)

// serverBinaries builds the node binaries of placement yaml with
// 'molgen build' and returns the directory holding them.
func serverBinaries(t *testing.T, app, yaml string) (dir, placementFile string) {
	t.Helper()
	dir = t.TempDir()
	placementFile = filepath.Join(dir, "placement.yaml")
	if err := os.WriteFile(placementFile, []byte(strings.ReplaceAll(yaml, "APP", app)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := build.Build(build.Config{Load: load.Config{Patterns: []string{"."}}, Placement: placementFile, Out: dir}); err != nil {
		t.Fatal(err)
	}
	return dir, placementFile
}

func startServer(t *testing.T, dir, instance string) *proctest.Proc {
	t.Helper()
	p := proctest.Start(t, "server "+instance, filepath.Join(dir, "server"),
		[]string{"MOLGEN_INSTANCE=" + instance},
		"-brokers", strings.Join(kafkatest.Brokers(t), ","), "-session-timeout", sessionTimeout().String(), "-log-level", "debug")
	p.WaitLog(t, "node started", 60*time.Second)
	return p
}

// TestKilledServerCallIsServedByAnotherInstance kills the instance running
// a call; the request, still uncommitted, is run by the other instance
// within the call's deadline, and the caller sees one reply.
func TestKilledServerCallIsServedByAnotherInstance(t *testing.T) {
	short.Skip(t, "builds and runs node processes")
	app := kafkatest.App("kill")
	dir, _ := serverBinaries(t, app, serverClient)
	a := startServer(t, dir, "a")
	client := remoteNode(t, app, serverClient, "client", func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	c := NewCalcClient(client)

	type result struct {
		where string
		err   error
	}
	res := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		w, err := c.Where(ctx, 4*time.Second)
		res <- result{w, err}
	}()
	a.WaitLog(t, "method=Where", 30*time.Second) // a has the request
	// Let a few commit intervals (100ms) pass before b joins the group:
	// a commit that ignored the running request would have gone through
	// by then, and b would never see the request.
	time.Sleep(600 * time.Millisecond)
	b := startServer(t, dir, "b")
	a.Kill()
	a.Wait(t, 10*time.Second)
	start := time.Now()
	r := <-res
	if r.err != nil || r.where != "b" {
		t.Fatalf("Where after its server was killed = %q, %v; want it served by b", r.where, r.err)
	}
	t.Logf("instance b answered %v after a was killed", time.Since(start).Round(time.Millisecond))
	b.Signal(syscall.SIGTERM)
	if code := b.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("b exited with %d after SIGTERM", code)
	}
}

// TestSigtermDrainsCallsInFlight sends SIGTERM to a server with calls in
// flight: they finish and are answered, the node exits 0, and the offsets
// are committed (a new instance does not run them again).
func TestSigtermDrainsCallsInFlight(t *testing.T) {
	short.Skip(t, "builds and runs node processes")
	app := kafkatest.App("drain")
	dir, _ := serverBinaries(t, app, serverClient)
	a := startServer(t, dir, "a")
	client := remoteNode(t, app, serverClient, "client", func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	c := NewCalcClient(client)

	const calls = 8
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			w, err := c.Where(ctx, 1500*time.Millisecond)
			if err == nil && w != "a" {
				err = &wrongInstance{w}
			}
			errs <- err
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(a.Stderr(), "method=Where") < calls && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	a.Signal(syscall.SIGTERM)
	start := time.Now()
	if code := a.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("a exited with %d after SIGTERM", code)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a call in flight at SIGTERM failed: %v", err)
		}
	}
	if el := time.Since(start); el < 500*time.Millisecond {
		t.Errorf("a exited %v after SIGTERM: it did not wait for its calls", el)
	}
	b := startServer(t, dir, "b")
	time.Sleep(2 * sessionTimeout())
	runs, err := c.Runs(context.Background())
	if err != nil || runs != 0 {
		t.Fatalf("b ran %d Where calls again (err %v): the drained calls' offsets were not committed", runs, err)
	}
	b.Signal(syscall.SIGTERM)
	b.Wait(t, 30*time.Second)
}

type wrongInstance struct{ got string }

func (e *wrongInstance) Error() string { return "served by " + e.got + ", want a" }

// TestScaleOutSharesLoadAndSurvivesAKill runs the server node twice: both
// instances serve calls (one consumer group), and killing one while calls
// flow loses none of them.
func TestScaleOutSharesLoadAndSurvivesAKill(t *testing.T) {
	short.Skip(t, "builds and runs node processes")
	app := kafkatest.App("scale")
	yaml := strings.Replace(serverClient, "partitions: 2", "partitions: 4", 1)
	dir, _ := serverBinaries(t, app, yaml)
	a := startServer(t, dir, "a")
	b := startServer(t, dir, "b")
	client := remoteNode(t, app, yaml, "client", func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	c := NewCalcClient(client)

	// Once the group has rebalanced, both instances answer.
	seen := map[string]int{}
	deadline := time.Now().Add(60 * time.Second)
	for (seen["a"] == 0 || seen["b"] == 0) && time.Now().Before(deadline) {
		w, err := c.Where(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		seen[w]++
	}
	if seen["a"] == 0 || seen["b"] == 0 {
		t.Fatalf("after 60s only %v served calls", seen)
	}

	const calls, workers = 240, 8
	var (
		mu      sync.Mutex
		served  = map[string]int{}
		failed  []error
		started sync.WaitGroup
		next    = make(chan int)
	)
	for range workers {
		started.Add(1)
		go func() {
			defer started.Done()
			for range next {
				ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
				w, err := c.Where(ctx, 20*time.Millisecond)
				cancel()
				mu.Lock()
				if err != nil {
					failed = append(failed, err)
				} else {
					served[w]++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range calls {
		if i == calls/4 {
			a.Kill() // a crash, with calls in flight on a
		}
		next <- i
	}
	close(next)
	started.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d calls failed after an instance was killed; first: %v", len(failed), calls, failed[0])
	}
	if served["a"]+served["b"] != calls || served["b"] == 0 {
		t.Fatalf("served: %v, want all %d calls answered", served, calls)
	}
	t.Logf("served %v (a was killed after %d calls were sent)", served, calls/4)
	b.Signal(syscall.SIGTERM)
	if code := b.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("b exited with %d", code)
	}
}

package testsvc

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/proctest"
	"github.com/molgen/molgen/internal/short"
	"github.com/molgen/molgen/runtime"
)

// loadGen calls Where(d) from workers until stop is closed, and counts the
// calls and their failures.
type loadGen struct {
	calls, failed atomic.Int64
	first         atomic.Value // error
	wg            sync.WaitGroup
	stop          chan struct{}
}

func startLoad(c Calc, workers int, d time.Duration) *loadGen {
	l := &loadGen{stop: make(chan struct{})}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
				_, err := c.Where(ctx, d)
				cancel()
				l.calls.Add(1)
				if err != nil {
					l.failed.Add(1)
					l.first.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	return l
}

func (l *loadGen) finish() {
	close(l.stop)
	l.wg.Wait()
}

// runsOf counts the Where requests an instance started, from its debug
// log (one "serving a request" line per request run).
func runsOf(p *proctest.Proc) int {
	n := 0
	for _, line := range strings.Split(p.Stderr(), "\n") {
		if strings.Contains(line, `msg="serving a request"`) && strings.Contains(line, "method=Where") {
			n++
		}
	}
	return n
}

// checkNoReruns: every call succeeded and the instances together ran each
// request exactly once.
func checkNoReruns(t *testing.T, l *loadGen, procs ...*proctest.Proc) {
	t.Helper()
	if f := l.failed.Load(); f > 0 {
		t.Fatalf("%d of %d calls failed; first: %v", f, l.calls.Load(), l.first.Load())
	}
	runs := 0
	var per []string
	for _, p := range procs {
		n := runsOf(p)
		runs += n
		per = append(per, p.Name+"="+strconv.Itoa(n))
	}
	if int64(runs) != l.calls.Load() {
		t.Fatalf("%d calls, %d runs (%s): a clean rebalance ran requests again", l.calls.Load(), runs, strings.Join(per, " "))
	}
	t.Logf("%d calls, each run once (%s)", runs, strings.Join(per, " "))
}

const rebalanceYAML = `
app: APP
kafka:
  partitions: 4
nodes:
  server: [calc, relay]
  client: [codec]
`

// TestCleanRebalancesRunNothingTwice: a SIGTERM of one of two instances,
// and a third instance joining, while calls flow, re-run no request (only
// a crash may: at-least-once).
func TestCleanRebalancesRunNothingTwice(t *testing.T) {
	short.Skip(t, "waits out consumer-group rebalances")
	app := kafkatest.App("rebalance")
	dir, _ := serverBinaries(t, app, rebalanceYAML)
	a := startServer(t, dir, "a")
	b := startServer(t, dir, "b")
	client := remoteNodeWith(t, app, rebalanceYAML, "client", func(o *runtime.Options) { o.Instance = "client" },
		func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	c := NewCalcClient(client)
	// Both instances serve before the load starts.
	seen := map[string]bool{}
	for deadline := time.Now().Add(60 * time.Second); !(seen["a"] && seen["b"]) && time.Now().Before(deadline); {
		w, err := c.Where(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		seen[w] = true
	}
	warmup := runsOf(a) + runsOf(b)

	// Calls last longer than a fetch's wait (500ms), so that requests are
	// running when partitions move.
	l := startLoad(c, 16, time.Second)
	time.Sleep(time.Second)
	// Scale out: a third instance joins while calls run.
	x := startServer(t, dir, "x")
	time.Sleep(2 * time.Second)
	// Scale in: a leaves cleanly while calls run.
	a.Signal(syscall.SIGTERM)
	if code := a.Wait(t, 60*time.Second); code != 0 {
		t.Fatalf("a exited with %d after SIGTERM:\n%s", code, a.Stderr())
	}
	time.Sleep(time.Second)
	l.finish()
	l.calls.Add(int64(warmup))
	checkNoReruns(t, l, a, b, x)
	for _, p := range []*proctest.Proc{b, x} {
		p.Signal(syscall.SIGTERM)
		if code := p.Wait(t, 60*time.Second); code != 0 {
			t.Errorf("%s exited with %d", p.Name, code)
		}
	}
}

package nodemain

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/molgen/molgen/internal/broker"
	"github.com/molgen/molgen/internal/proctest"
	"github.com/molgen/molgen/internal/testsvc"
	"github.com/molgen/molgen/runtime"
)

// TestProbesFollowKafka: a node serving a service, its broker hung (every
// request waits, as a SIGSTOPped broker's would) and then stopped. /readyz
// turns 503 within 5 s of each, saying that Kafka does not answer, and
// 200 again once the broker answers; /healthz stays 200 throughout (a
// Kafka outage is no reason to restart the process). Each change of
// readiness is logged once.
func TestProbesFollowKafka(t *testing.T) {
	b, err := broker.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	defer func() { b.Close() }()
	pl, err := runtime.ParsePlacement("probes.yaml", []byte(strings.ReplaceAll(httpPlacement, "APP", "probes")))
	if err != nil {
		t.Fatal(err)
	}
	var logs proctest.Buffer
	n, err := runtime.NewNode(runtime.Options{Placement: pl, Node: "back", Brokers: []string{addr},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), SessionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := testsvc.RegisterCalc(n, &testsvc.CalcImpl{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	srv := httptest.NewServer(probeHandler(n, nil))
	defer srv.Close()

	// healthy fails the test if /healthz ever says anything but 200.
	var stopWatching sync.Once
	watching := make(chan struct{})
	go func() {
		for {
			select {
			case <-watching:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if code, body := get(t, srv.URL+"/healthz"); code != 200 {
				t.Errorf("/healthz: %d %q, want 200 whatever Kafka does", code, body)
			}
		}
	}()
	defer stopWatching.Do(func() { close(watching) })

	// readyWithin waits for /readyz to answer want, with a body holding
	// says, and returns how long it took.
	readyWithin := func(what string, want int, says string, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			code, body := get(t, srv.URL+"/readyz")
			if code == want && strings.Contains(body, says) {
				took := time.Since(start)
				t.Logf("%s: /readyz %d after %v", what, code, took.Round(10*time.Millisecond))
				return took
			}
			if time.Since(start) > limit {
				t.Fatalf("%s: /readyz %d %q after %v, want %d (%q)\n%s", what, code, body, limit, want, says, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	readyWithin("started", 200, "ok", 30*time.Second)

	// Hung.
	release := make(chan struct{})
	var once sync.Once
	resume := func() { once.Do(func() { close(release) }) }
	defer resume()
	cl := b.Cluster()
	cl.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		cl.KeepControl()
		cl.SleepControl(func() { <-release })
		return nil, nil, false
	})
	readyWithin("broker hung", 503, "does not answer", 5*time.Second)
	resume()
	readyWithin("broker answers again", 200, "ok", 10*time.Second)

	// Stopped, and started again (empty: the node makes its topics again).
	b.Close()
	readyWithin("broker stopped", 503, "does not answer", 5*time.Second)
	for range 50 {
		if b, err = broker.Start(addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	readyWithin("broker back", 200, "ok", 20*time.Second)
	stopWatching.Do(func() { close(watching) })

	// The watch notices the change at its next round (every second).
	for wait := time.Now().Add(5 * time.Second); strings.Count(logs.String(), "ready again") < 2 && time.Now().Before(wait); {
		time.Sleep(50 * time.Millisecond)
	}
	out := logs.String()
	if got := strings.Count(out, "not ready: /readyz answers 503"); got != 2 {
		t.Errorf("want 2 'not ready' lines (hung, stopped), got %d:\n%s", got, out)
	}
	if got := strings.Count(out, "ready again"); got != 2 {
		t.Errorf("want 2 'ready again' lines, got %d:\n%s", got, out)
	}
}

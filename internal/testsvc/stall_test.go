package testsvc

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/molgen/molgen/internal/broker"
	"github.com/molgen/molgen/runtime"
)

// TestDeadlinesHoldWhileTheBrokerHangs: the broker stops answering (every
// request it gets waits, as a SIGSTOPped broker's would: connections stay
// open), and no call returns more than 100 ms after its deadline, whatever
// its request was doing (being written, waiting for its reply); after the
// broker answers again, calls succeed. Before, a write's I/O timeout was
// not bounded by its call's deadline and calls returned 1.3 s late.
func TestDeadlinesHoldWhileTheBrokerHangs(t *testing.T) {
	b, err := broker.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	app := "stall"
	use := func(o *runtime.Options) { o.Brokers = []string{b.Addr()} }
	remoteNodeWith(t, app, serverClient, "server", use, hostCalc)
	client := remoteNodeWith(t, app, serverClient, "client", use, hostCodec)
	c := NewCalcClient(client)
	addAll(t, c, 5, "")

	release := make(chan struct{})
	var once sync.Once
	resume := func() { once.Do(func() { close(release) }) }
	defer resume()
	cl := b.Cluster()
	cl.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		cl.KeepControl()
		cl.SleepControl(func() { <-release })
		return nil, nil, false // then served as usual
	})
	const calls, deadline = 16, 700 * time.Millisecond
	late := make(chan time.Duration, calls)
	for i := range calls {
		go func() {
			// Half start while the others wait: some requests are being
			// written, some wait for replies, some for the write buffer.
			time.Sleep(time.Duration(i) * 20 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			d, _ := ctx.Deadline()
			_, err := c.Add(ctx, 1, 1)
			over := time.Since(d)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("a call while the broker hangs: %v, want DeadlineExceeded", err)
			}
			late <- over
		}()
	}
	var worst time.Duration
	for range calls {
		worst = max(worst, <-late)
	}
	t.Logf("while the broker hung, the latest call returned %v after its deadline", worst.Round(time.Millisecond))
	if worst > 100*time.Millisecond {
		t.Errorf("a call returned %v after its deadline while the broker hung; want at most 100ms", worst)
	}
	resume()
	callUntilOK(t, c, 30*time.Second)
}

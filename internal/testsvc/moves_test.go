package testsvc

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/molgen/molgen/runtime"
)

// TestLeaderAndCoordinatorMovesAreRoutine: on a cluster of three
// (embedded) brokers, every partition's leader moves, and then every
// group's coordinator, while calls flow. Calls go on (none fails), no
// server gives its partitions up (a partition error clears within the
// group's generation: no rebalance), and each move is logged once at INFO,
// never as a WARN.
func TestLeaderAndCoordinatorMovesAreRoutine(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	app := "moves"
	serverLogs, withServerLogs := recordLogs(t)
	clientLogs, withClientLogs := recordLogs(t)
	use := func(logs func(*runtime.Options)) func(*runtime.Options) {
		return func(o *runtime.Options) {
			o.Brokers = c.ListenAddrs()
			logs(o)
		}
	}
	remoteNodeWith(t, app, serverClient, "server", use(withServerLogs), hostCalc)
	client := remoteNodeWith(t, app, serverClient, "client", use(withClientLogs), hostCodec)
	calc := NewCalcClient(client)
	addAll(t, calc, 5, "")
	assigned := len(serverLogs.lines("INFO", "serving requests"))

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				v, err := calc.Add(ctx, 2, 3)
				cancel()
				if err != nil || v != 5 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	reqTopic := "molgen." + app + ".req.calc"
	replyTopic := "molgen." + app + ".reply.client." + client.Instance()
	for _, tp := range []struct {
		topic string
		parts int32
	}{{reqTopic, 2}, {replyTopic, 1}} {
		for p := range tp.parts {
			to := (c.LeaderFor(tp.topic, p) + 1) % 3
			if err := c.MoveTopicPartition(tp.topic, p, to); err != nil {
				t.Fatalf("moving %s/%d: %v", tp.topic, p, err)
			}
		}
	}
	time.Sleep(2 * time.Second)
	c.RehashCoordinators()
	time.Sleep(6 * time.Second) // the watch looks coordinators up every 5s
	close(stop)
	wg.Wait()
	t.Logf("%d calls ok, %d failed during the moves", ok.Load(), failed.Load())
	if failed.Load() > 0 || ok.Load() == 0 {
		t.Errorf("%d calls failed (first: %v), %d ok: leader and coordinator moves must not fail calls", failed.Load(), firstErr.Load(), ok.Load())
	}
	if got := len(serverLogs.lines("INFO", "serving requests")); got != assigned {
		t.Errorf("the server was assigned partitions %d times more: the moves made its group rebalance", got-assigned)
	}
	if got := serverLogs.lines("INFO", "lost partitions"); len(got) > 0 {
		t.Errorf("the server lost partitions:\n%s", strings.Join(got, "\n"))
	}
	for name, l := range map[string]*logRecorder{"server": serverLogs, "client": clientLogs} {
		var w []string
		for _, line := range l.lines("WARN", "") {
			// kfake reports one replica per partition: that warning is
			// right, and not about moves.
			if !strings.Contains(line, "topic has one replica") {
				w = append(w, line)
			}
		}
		if len(w) > 0 {
			t.Errorf("%s logged WARN during routine moves:\n%s", name, strings.Join(w, "\n"))
		}
	}
	if len(clientLogs.lines("INFO", "a partition's leader moved")) == 0 && len(serverLogs.lines("INFO", "a partition's leader moved")) == 0 {
		t.Error("no node logged the leader moves")
	}
	if len(serverLogs.lines("INFO", "coordinator moved")) == 0 {
		t.Error("the server did not log its group's coordinator move")
	}
}

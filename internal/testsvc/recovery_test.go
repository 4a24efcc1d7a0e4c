package testsvc

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/broker"
	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/short"
	"github.com/molgen/molgen/runtime"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// logRecorder keeps a node's log lines (and passes them to the test log
// when verbose) so that tests can count what was said.
type logRecorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
	t   testing.TB
}

func (r *logRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.buf.Write(p)
	r.mu.Unlock()
	if testing.Verbose() {
		r.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// lines returns the recorded lines of level (e.g. "WARN") that contain msg.
func (r *logRecorder) lines(level, msg string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range strings.Split(r.buf.String(), "\n") {
		if strings.Contains(l, "level="+level) && strings.Contains(l, msg) {
			out = append(out, l)
		}
	}
	return out
}

func recordLogs(t testing.TB) (*logRecorder, func(*runtime.Options)) {
	rec := &logRecorder{t: t}
	return rec, func(o *runtime.Options) {
		o.Logger = slog.New(slog.NewTextHandler(rec, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// addAll makes n calls of Add in turn and fails the test at the first
// that does not return the sum; prefix says when (e.g. "after recovery, ").
func addAll(t *testing.T, c Calc, n int, prefix string) {
	t.Helper()
	for i := range n {
		if got, err := c.Add(context.Background(), i, 1); err != nil || got != i+1 {
			t.Fatalf("%sAdd = %d, %v", prefix, got, err)
		}
	}
}

// callUntilOK calls Add with short deadlines until one succeeds, for at
// most within; it returns how long that took.
func callUntilOK(t *testing.T, c Calc, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < within {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		var got int
		got, err = c.Add(ctx, 2, 3)
		cancel()
		if err == nil && got == 5 {
			return time.Since(start)
		}
	}
	t.Fatalf("no call succeeded within %v; last error: %v", within, err)
	return 0
}

// TestCallerRecoversWhenItsReplyTopicIsDeleted: an operator deletes a
// running caller's reply topic. The caller notices (its calls wait while
// no reply comes), recreates the topic with molgen's settings, reads it
// from its new end, and its calls succeed again within seconds, without a
// restart. It says so once at WARN and once at INFO.
func TestCallerRecoversWhenItsReplyTopicIsDeleted(t *testing.T) {
	short.Skip(t, "deletes a reply topic and waits for the recovery")
	app := kafkatest.App("replygone")
	remoteNode(t, app, serverClient, "server", func(n *runtime.Node) error {
		if err := RegisterCalc(n, &CalcImpl{}); err != nil {
			return err
		}
		return RegisterRelay(n, NewRelay(NewCalcClient(n)))
	})
	logs, withLogs := recordLogs(t)
	client := remoteNodeWith(t, app, serverClient, "client", withLogs, func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	c := NewCalcClient(client)
	// Enough replies that a recreated topic takes long to grow past the
	// reader's offset by itself.
	addAll(t, c, 50, "")
	reply := "molgen." + app + ".reply.client." + client.Instance()
	deleteTopic(t, reply)
	took := callUntilOK(t, c, 15*time.Second)
	t.Logf("calls succeeded again %v after the reply topic was deleted", took.Round(time.Millisecond))
	if took > 8*time.Second {
		t.Errorf("calls took %v to succeed again; want a few seconds", took)
	}
	addAll(t, c, 20, "after recovery, ")
	checkTopic(t, reply, 1, time.Hour)
	if w := logs.lines("WARN", "reply topic"); len(w) != 1 {
		t.Errorf("want one WARN about the reply topic, got %d:\n%s", len(w), strings.Join(w, "\n"))
	}
	if i := logs.lines("INFO", "reply topic recovered"); len(i) != 1 {
		t.Errorf("want one INFO saying the reply topic recovered, got %d:\n%s", len(i), strings.Join(i, "\n"))
	}
}

// checkTopic fails the test unless topic has the given partitions and
// retention.
func checkTopic(t *testing.T, topic string, partitions int, retention time.Duration) {
	t.Helper()
	checkTopicWith(t, kafkatest.Admin(t), topic, partitions, retention)
}

// checkTopicWith is checkTopic through adm.
func checkTopicWith(t *testing.T, adm *kadm.Client, topic string, partitions int, retention time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tds, err := adm.ListTopics(ctx, topic)
	td, ok := tds[topic]
	if err != nil || !ok || td.Err != nil {
		t.Fatalf("metadata of %s: %v %+v", topic, err, td)
	}
	if got := len(td.Partitions); got != partitions {
		t.Errorf("%s has %d partitions, want %d", topic, got, partitions)
	}
	if retention == 0 {
		return
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("configs of %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("configs of %s: %v %v", topic, err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" && c.MaybeValue() != fmt.Sprint(retention.Milliseconds()) {
			t.Errorf("%s has retention.ms=%s, want %d", topic, c.MaybeValue(), retention.Milliseconds())
		}
	}
}

// restartable is an embedded broker on a fixed address that a test stops
// and starts again there, without its data: what a restarted 'molgen
// broker' is to the nodes.
type restartable struct {
	addr string
	b    *broker.Broker
}

func startRestartable(t *testing.T) *restartable {
	t.Helper()
	b, err := broker.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &restartable{addr: b.Addr(), b: b}
	t.Cleanup(func() {
		if r.b != nil {
			r.b.Close()
		}
	})
	return r
}

func (r *restartable) start(t *testing.T) {
	t.Helper()
	var err error
	for range 50 { // the old listener may take a moment to let the port go
		if r.b, err = broker.Start(r.addr); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("starting the broker again on %s: %v", r.addr, err)
}

// restart stops the broker, waits down, and starts an empty one on the
// same address.
func (r *restartable) restart(t *testing.T, down time.Duration) {
	t.Helper()
	r.b.Close()
	r.b = nil
	time.Sleep(down)
	r.start(t)
}

func (r *restartable) use(also func(*runtime.Options)) func(*runtime.Options) {
	return func(o *runtime.Options) {
		o.Brokers = []string{r.addr}
		if also != nil {
			also(o)
		}
	}
}

func hostCalc(n *runtime.Node) error {
	if err := RegisterCalc(n, &CalcImpl{}); err != nil {
		return err
	}
	return RegisterRelay(n, NewRelay(NewCalcClient(n)))
}

// TestCallerResumesAfterBrokerRestart: 'molgen broker' restarts on the
// same address and has lost every topic. A caller that keeps running
// notices, creates its reply topic again (and the request topic before
// its next use, with molgen's partition count), and its calls to a server
// started after the restart succeed within seconds. It logs the outage
// and the lost reply topic once each, and their ends once each.
func TestCallerResumesAfterBrokerRestart(t *testing.T) {
	short.Skip(t, "restarts the broker")
	b := startRestartable(t)
	app := kafkatest.App("callerrestart")
	before := remoteNodeWith(t, app, serverClient, "server", b.use(nil), hostCalc)
	logs, withLogs := recordLogs(t)
	client := remoteNodeWith(t, app, serverClient, "client", b.use(withLogs), func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	c := NewCalcClient(client)
	addAll(t, c, 20, "")
	if err := before.Close(); err != nil {
		t.Fatal(err)
	}
	// Down for a while: the caller's probes fail several times, and it
	// says so once.
	b.restart(t, 3*time.Second)
	remoteNodeWith(t, app, serverClient, "server", b.use(nil), hostCalc)
	took := callUntilOK(t, c, 20*time.Second)
	t.Logf("calls succeeded again %v after the broker came back", took.Round(time.Millisecond))
	if took > 8*time.Second {
		t.Errorf("calls took %v to succeed again after the broker restarted; want a few seconds", took)
	}
	addAll(t, c, 20, "after recovery, ")
	checkTopicAt(t, b.addr, "molgen."+app+".req.calc", 2)
	checkTopicAt(t, b.addr, "molgen."+app+".reply.client."+client.Instance(), 1)
	for _, want := range []struct{ level, msg string }{
		{"WARN", "Kafka does not answer"},
		{"INFO", "Kafka answers again"},
		{"WARN", "reply topic lost"},
		{"INFO", "reply topic recovered"},
		// The embedded broker started again is a new cluster.
		{"WARN", "Kafka's cluster id changed"},
	} {
		if got := logs.lines(want.level, want.msg); len(got) != 1 {
			t.Errorf("want one %s %q, got %d:\n%s", want.level, want.msg, len(got), strings.Join(got, "\n"))
		}
	}
	if got := logs.lines("WARN", ""); len(got) > 3 {
		t.Errorf("want no other WARN than the three above:\n%s", strings.Join(got, "\n"))
	}
}

// TestNodesResumeAfterBrokerRestart is TestCallerResumesAfterBrokerRestart
// with the server running through the restart too: its consumer groups
// must get the new topics' partitions, and forget the requests it
// finished on the old ones.
func TestNodesResumeAfterBrokerRestart(t *testing.T) {
	short.Skip(t, "restarts the broker")
	b := startRestartable(t)
	app := kafkatest.App("restart")
	serverLogs, withServerLogs := recordLogs(t)
	remoteNodeWith(t, app, serverClient, "server", b.use(withServerLogs), hostCalc)
	clientLogs, withClientLogs := recordLogs(t)
	client := remoteNodeWith(t, app, serverClient, "client", b.use(withClientLogs), func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	c := NewCalcClient(client)
	addAll(t, c, 20, "")
	b.restart(t, time.Second)
	took := callUntilOK(t, c, 30*time.Second)
	t.Logf("calls succeeded again %v after the broker came back", took.Round(time.Millisecond))
	if took > 8*time.Second {
		t.Errorf("calls took %v to succeed again after the broker restarted; want a few seconds", took)
	}
	addAll(t, c, 20, "after recovery, ")
	checkTopicAt(t, b.addr, "molgen."+app+".req.calc", 2)
	checkTopicAt(t, b.addr, "molgen."+app+".reply.client."+client.Instance(), 1)
	for _, l := range []*logRecorder{clientLogs, serverLogs} {
		// A node that only serves notices its lost reply topic at its next
		// check, which may come after the calls already succeed again.
		for wait := time.Now().Add(10 * time.Second); len(l.lines("WARN", "reply topic lost")) == 0 && time.Now().Before(wait); {
			time.Sleep(50 * time.Millisecond)
		}
		if w := l.lines("WARN", "reply topic lost"); len(w) != 1 {
			t.Errorf("want one WARN about the lost reply topic, got %d:\n%s", len(w), strings.Join(w, "\n"))
		}
	}
}

// checkTopicAt fails the test unless topic exists on the broker at addr
// with partitions partitions.
func checkTopicAt(t *testing.T, addr, topic string, partitions int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	checkTopicWith(t, kadm.NewClient(cl), topic, partitions, 0)
}

// TestCloseAfterBrokerLostItsData: a node that finished its requests
// drains cleanly (Close returns nil, so the binary exits 0) even when the
// broker restarted without its data meanwhile: commits and leaving a group
// the broker no longer knows fail, and are only logged.
func TestCloseAfterBrokerLostItsData(t *testing.T) {
	short.Skip(t, "restarts the broker without its data")
	b := startRestartable(t)
	app := kafkatest.App("drainlost")
	logs, withLogs := recordLogs(t)
	server := remoteNodeWith(t, app, serverClient, "server", b.use(withLogs), hostCalc)
	client := remoteNodeWith(t, app, serverClient, "client", b.use(nil), func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	c := NewCalcClient(client)
	addAll(t, c, 10, "")
	// A request runs through the restart: its commit goes to a broker
	// that does not know the group.
	slow := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		slow <- c.Sleep(ctx, 1500*time.Millisecond)
	}()
	time.Sleep(300 * time.Millisecond)
	b.restart(t, 500*time.Millisecond)
	<-slow // its reply may be lost with the reply topic: either way it ran
	time.Sleep(time.Second)
	start := time.Now()
	if err := server.Close(); err != nil {
		t.Errorf("Close after the broker lost its data: %v; want nil (the requests were served)", err)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("Close took %v", el)
	}
	if got := logs.lines("ERROR", ""); len(got) > 0 {
		t.Errorf("errors logged:\n%s", strings.Join(got, "\n"))
	}
}

// TestInstanceWritesHeartbeatsToItsReplyTopic: a running instance writes
// a heartbeat record to its reply topic when it starts (molgen topics
// takes a reply topic with no recent record for one no instance uses); its
// own reader skips it without counting it as a late reply.
func TestInstanceWritesHeartbeatsToItsReplyTopic(t *testing.T) {
	app := kafkatest.App("heartbeat")
	n := remoteNode(t, app, allRemote, "all", hostAll(&CalcImpl{}))
	reply := "molgen." + app + ".reply.all." + n.Instance()
	wait := time.Now().Add(10 * time.Second)
	for {
		var beat string
		for _, m := range kafkatest.Records(t, reply) {
			if v, ok := kafkatest.Header(m, "molgen-heartbeat"); ok {
				beat = v
			}
		}
		if beat != "" {
			at, err := time.Parse(time.RFC3339Nano, beat)
			if err != nil || time.Since(at) > time.Minute {
				t.Fatalf("heartbeat %q: %v", beat, err)
			}
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("no heartbeat in %s", reply)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, err := NewCalcClient(n).Add(context.Background(), 1, 2); err != nil || got != 3 {
		t.Fatalf("Add = %d, %v", got, err)
	}
	if st := n.Stats(); st.LateReplies != 0 {
		t.Errorf("stats %+v: the heartbeat counted as a late reply", st)
	}
}

// TestRequestTopicWithOtherPartitionsIsReported: a request topic that
// exists with another partition count than molgen's (auto-created by a
// broker with its defaults, or made by hand) works, and is reported once.
func TestRequestTopicWithOtherPartitionsIsReported(t *testing.T) {
	app := kafkatest.App("otherparts")
	createTopic(t, "molgen."+app+".req.calc", 1)
	logs, withLogs := recordLogs(t)
	remoteNodeWith(t, app, serverClient, "server", withLogs, hostCalc)
	client := remoteNodeWith(t, app, serverClient, "client", withLogs, func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	for i := range 3 {
		if got, err := NewCalcClient(client).Add(context.Background(), i, 1); err != nil || got != i+1 {
			t.Fatalf("Add = %d, %v", got, err)
		}
	}
	// Each node reports it once.
	if got := logs.lines("WARN", "molgen."+app+".req.calc"); len(got) != 2 || !strings.Contains(got[0], "partitions=1 molgen_partitions=2") {
		t.Errorf("want one WARN per node about the partition count, got %d:\n%s", len(got), strings.Join(got, "\n"))
	}
}

// TestServerRunsTheNewTopicsRequestsAfterBrokerLostData: calls flow while
// the broker restarts without its data. The server finished requests that
// it could not commit before the broker went; the request topic is created
// again (by whichever node is first) and its offsets start at 0 again. Once
// calls succeed again, every call must: a server that took the new topic's
// offsets for the old one's would skip requests at offsets it had finished
// before, and their callers would wait out their deadlines.
func TestServerRunsTheNewTopicsRequestsAfterBrokerLostData(t *testing.T) {
	short.Skip(t, "restarts the broker without its data")
	b := startRestartable(t)
	app := kafkatest.App("reincarnate")
	remoteNodeWith(t, app, serverClient, "server", b.use(nil), hostCalc)
	client := remoteNodeWith(t, app, serverClient, "client", b.use(nil), func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	c := NewCalcClient(client)

	var (
		mu        sync.Mutex
		restarted time.Time // when the broker was back
		recovered time.Time // the first call that succeeded after it
		before    int       // calls that succeeded before the restart
		after     int       // calls started after recovery + slack
		failed    []string  // of those, the failures
	)
	const slack = 3 * time.Second
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				began := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				got, err := c.Add(ctx, w, i)
				cancel()
				ok := err == nil && got == w+i
				mu.Lock()
				switch {
				case restarted.IsZero():
					if ok {
						before++
					}
				case ok && recovered.IsZero() && began.After(restarted):
					recovered = time.Now()
				case !recovered.IsZero() && began.After(recovered.Add(slack)):
					after++
					if !ok {
						failed = append(failed, fmt.Sprintf("Add(%d, %d) = %d, %v", w, i, got, err))
					}
				}
				mu.Unlock()
			}
		}()
	}
	// Enough requests per partition that the new topic's offsets take a
	// while to reach the old ones.
	time.Sleep(1500 * time.Millisecond)
	b.restart(t, 500*time.Millisecond)
	mu.Lock()
	restarted = time.Now()
	n := before
	mu.Unlock()
	// Run until the new topic has more requests than the old one had.
	deadline := time.Now().Add(60 * time.Second)
	for {
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		done := after > 2*n+200
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d calls before the restart; recovered %v after it; %d calls after recovery + %v, %d failed",
		n, recovered.Sub(restarted).Round(time.Millisecond), after, slack, len(failed))
	if recovered.IsZero() {
		t.Fatal("no call succeeded after the broker came back")
	}
	if after <= n {
		t.Fatalf("only %d calls after recovery, fewer than the %d before the restart: the new topic's offsets never reached the old ones", after, n)
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d calls failed after recovery; first ones:\n%s", len(failed), after, strings.Join(failed[:min(5, len(failed))], "\n"))
	}
}

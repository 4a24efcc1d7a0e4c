package testsvc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/short"
	"github.com/molgen/molgen/runtime"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRemoteHandlerRunsUnderTheCallersDeadline: the server runs a request
// with the caller's deadline (carried in molgen-deadline), not without one.
func TestRemoteHandlerRunsUnderTheCallersDeadline(t *testing.T) {
	n := remoteNode(t, kafkatest.App("srvdeadline"), allRemote, "all", hostAll(&CalcImpl{}))
	c := NewCalcClient(n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	want, _ := ctx.Deadline()
	got, err := c.Deadline(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) {
		t.Fatalf("the handler ran with deadline %v; the caller's was %v", got, want)
	}

	// A handler that waits is cut short by the caller's deadline on the
	// server too: its Sleep returns long before the 10s it asked for.
	impl := &CalcImpl{}
	n = remoteNode(t, kafkatest.App("srvdeadline"), allRemote, "all", hostAll(impl))
	short, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	if err := NewCalcClient(n).Sleep(short, 10*time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sleep under a 500ms deadline: %v", err)
	}
	start := time.Now()
	if err := n.Close(); err != nil { // drains: waits for the running Sleep
		t.Fatal(err)
	}
	if el := time.Since(start); el > 3*time.Second || impl.Sleeps.Load() != 1 {
		t.Fatalf("the server's Sleep ran on for %v after the caller's deadline (%d started): the handler ignored the deadline", el, impl.Sleeps.Load())
	}
}

// TestDefaultTimeoutBoundsRemoteCalls: with no deadline in the context and
// no //molgen:timeout, Options.DefaultTimeout bounds a remote call, and the
// handler runs under it.
func TestDefaultTimeoutBoundsRemoteCalls(t *testing.T) {
	const timeout = 700 * time.Millisecond
	n := remoteNodeWith(t, kafkatest.App("deftimeout"), allRemote, "all",
		func(o *runtime.Options) { o.DefaultTimeout = timeout }, hostAll(&CalcImpl{}))
	c := NewCalcClient(n)
	before := time.Now()
	d, err := c.Deadline(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Before(before.Add(timeout)) || d.After(time.Now().Add(timeout)) {
		t.Fatalf("handler deadline %v after a call at %v: want the default timeout %v from the call", d.Sub(before), before, timeout)
	}
	start := time.Now()
	_, err = c.Where(context.Background(), 10*time.Second)
	if el := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || el < timeout || el > timeout+2*time.Second {
		t.Fatalf("Where(10s) with DefaultTimeout %v: err=%v after %v", timeout, err, el)
	}
}

// TestRemoteOnewayReturnsOnceWritten: a //molgen:oneway call returns once
// its request is in Kafka, before the implementation has run, and asks for
// no reply.
func TestRemoteOnewayReturnsOnceWritten(t *testing.T) {
	short.Skip(t, "waits for oneway calls whose implementation blocks")
	app := kafkatest.App("oneway")
	impl := &CalcImpl{}
	n := remoteNode(t, app, allRemote, "all", hostAll(impl))
	c := NewCalcClient(n)
	start := time.Now()
	if err := c.Hold(context.Background(), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > time.Second || impl.Holds.Load() != 0 {
		t.Fatalf("a oneway call returned after %v, with %d Holds done: it waited for the implementation", el, impl.Holds.Load())
	}
	recs := kafkatest.Records(t, "molgen."+app+".req.calc")
	if len(recs) != 1 {
		t.Fatalf("%d requests in Kafka after one oneway call, want 1", len(recs))
	}
	for _, h := range []string{"molgen-reply-to", "molgen-id"} {
		if v, ok := kafkatest.Header(recs[0], h); ok {
			t.Errorf("a oneway request carries %s=%q: it asks for a reply", h, v)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for impl.Holds.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if impl.Holds.Load() != 1 {
		t.Fatal("the oneway request was never run")
	}
	if st := n.Stats(); st.Calls != 0 || st.Served != 1 {
		t.Fatalf("stats %+v: want no call awaiting a reply and one request served", st)
	}
}

// TestMaxConcurrentBoundsRequestsServed: a node serves at most
// Options.MaxConcurrent requests of a service at once; the rest wait in
// Kafka and are served later.
func TestMaxConcurrentBoundsRequestsServed(t *testing.T) {
	app := kafkatest.App("maxconc")
	impl := &CalcImpl{}
	remoteNodeWith(t, app, serverClient, "server", func(o *runtime.Options) { o.MaxConcurrent = 2 }, func(n *runtime.Node) error {
		if err := RegisterCalc(n, impl); err != nil {
			return err
		}
		return RegisterRelay(n, NewRelay(NewCalcClient(n)))
	})
	client := remoteNode(t, app, serverClient, "client", func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	c := NewCalcClient(client)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := c.Where(ctx, 300*time.Millisecond)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := impl.MaxRunning.Load(); got != 2 {
		t.Fatalf("at most %d requests ran at once with MaxConcurrent 2", got)
	}
}

// TestPanicsInUserCodecsBecomeErrors: a MarshalBinary or UnmarshalBinary
// that panics, on the caller or on the server, in the request or in the
// reply, fails that call with ErrPanic, and both nodes go on.
func TestPanicsInUserCodecsBecomeErrors(t *testing.T) {
	app := kafkatest.App("codecpanic")
	server := remoteNode(t, app, serverClient, "server", func(n *runtime.Node) error {
		if err := RegisterCalc(n, &CalcImpl{}); err != nil {
			return err
		}
		return RegisterRelay(n, NewRelay(NewCalcClient(n)))
	})
	client := remoteNode(t, app, serverClient, "client", func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	c := NewCalcClient(client)
	for _, tc := range []struct{ send, where string }{
		{PanicOnMarshal, "encoding the request"},      // on the caller
		{PanicOnUnmarshal, "Fragile.UnmarshalBinary"}, // on the server, decoding the request
		{"reply:" + PanicOnMarshal, "encoding the reply"},
		{"reply:" + PanicOnUnmarshal, "decoding the reply"}, // on the caller
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := c.Echo(ctx, Fragile{S: tc.send})
		cancel()
		if !errors.Is(err, runtime.ErrPanic) || !strings.Contains(err.Error(), tc.where) {
			t.Errorf("Echo(%q) = %v; want ErrPanic %s", tc.send, err, tc.where)
		}
	}
	if got, err := c.Echo(context.Background(), Fragile{S: "reply:fine"}); err != nil || got.S != "fine" {
		t.Fatalf("after panicking codecs, Echo = %q, %v", got.S, err)
	}
	if st := server.Stats(); st.Panics != 2 {
		t.Errorf("server stats %+v: want the 2 panics on its side counted", st)
	}
}

// TestReplyToAMissingTopicDoesNotCreateIt: a server never brings a caller's
// reply topic back (a metadata lookup on a broker with automatic topic
// creation would create it). On the embedded broker, which creates nothing
// on lookups, this only checks the reply is dropped; on real Kafka (CI)
// it checks the lookup.
func TestReplyToAMissingTopicDoesNotCreateIt(t *testing.T) {
	short.Skip(t, "waits for replies that cannot be delivered")
	app := kafkatest.App("ghost")
	server := remoteNode(t, app, serverClient, "server", func(n *runtime.Node) error {
		if err := RegisterCalc(n, &CalcImpl{}); err != nil {
			return err
		}
		return RegisterRelay(n, NewRelay(NewCalcClient(n)))
	})
	ghost := "molgen." + app + ".reply.gone.x"
	deadline := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	writeRaw(t, "molgen."+app+".req.calc", &kgo.Record{Value: []byte{2, 4}, Headers: headers(
		"molgen-version", "2", "molgen-method", "Add", "molgen-deadline", deadline, "molgen-id", "x.1", "molgen-reply-to", ghost)})
	wait := time.Now().Add(15 * time.Second)
	for server.Stats().Served == 0 && time.Now().Before(wait) {
		time.Sleep(20 * time.Millisecond)
	}
	if server.Stats().Served != 1 {
		t.Fatalf("stats %+v: the request was not served", server.Stats())
	}
	time.Sleep(3 * time.Second) // the reply write gives up a second after the deadline
	if kafkatest.Exists(t, ghost) {
		t.Fatalf("serving a request re-created its missing reply topic %s", ghost)
	}
}

// TestRepliesOfAnotherSessionAreDropped: a reply whose id comes from an
// earlier process with the same reply topic (a fixed -instance) never
// answers a call of this one, even with the same counter.
func TestRepliesOfAnotherSessionAreDropped(t *testing.T) {
	short.Skip(t, "restarts a node under the same instance name")
	app := kafkatest.App("session")
	// No server runs calc: only the forged reply could answer. The call
	// waits for it (kafka.wait_for_instances) rather than fail with
	// ErrNoInstance.
	yaml := strings.Replace(serverClient, "  partitions: 2\n", "  partitions: 2\n  wait_for_instances: true\n", 1)
	client := remoteNodeWith(t, app, yaml, "client", func(o *runtime.Options) { o.Instance = "fixed" },
		func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		v, err := NewCalcClient(client).Add(ctx, 1, 2)
		if err == nil {
			err = fmt.Errorf("answered %d", v)
		}
		res <- err
	}()
	reqs := "molgen." + app + ".req.calc"
	wait := time.Now().Add(10 * time.Second)
	var id string
	for id == "" && time.Now().Before(wait) {
		for _, m := range kafkatest.Records(t, reqs) {
			id, _ = kafkatest.Header(m, "molgen-id")
		}
		time.Sleep(50 * time.Millisecond)
	}
	session, counter, ok := strings.Cut(id, ".")
	if !ok {
		t.Fatalf("no request with a molgen-id %q in %s", id, reqs)
	}
	other := strings.Repeat("0", len(session))
	writeRaw(t, "molgen."+app+".reply.client.fixed", &kgo.Record{Value: []byte{14}, Headers: headers(
		"molgen-version", "2", "molgen-id", other+"."+counter, "molgen-status", "ok")})
	if err := <-res; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a call answered only by another session's reply: %v; want DeadlineExceeded", err)
	}
	if st := client.Stats(); st.LateReplies != 1 {
		t.Fatalf("stats %+v: want the other session's reply dropped and counted", st)
	}
}

// TestReplyTopicWithSeveralPartitionsIsRefused: replies are read from
// partition 0 only, so a node refuses to start on a reply topic that has
// more (replies written elsewhere would be lost).
func TestReplyTopicWithSeveralPartitionsIsRefused(t *testing.T) {
	app := kafkatest.App("replyparts")
	createTopic(t, "molgen."+app+".reply.all.three", 3)
	pl, _ := runtime.ParsePlacement("p.yaml", []byte(strings.ReplaceAll(allRemote, "APP", app)))
	n, err := runtime.NewNode(runtime.Options{Placement: pl, Node: "all", Instance: "three", Brokers: kafkatest.Brokers(t), Logger: testLogger(t), SessionTimeout: sessionTimeout()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	hostAll(&CalcImpl{})(n)
	err = n.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "has 3 partitions, not 1") {
		t.Fatalf("Start on a 3-partition reply topic: %v", err)
	}
}

// TestGeneratedReplyTopicIsDeletedOnClose: an instance without a fixed id
// deletes its reply topic when it closes; one with a fixed id keeps it
// (its next run reuses it).
func TestGeneratedReplyTopicIsDeletedOnClose(t *testing.T) {
	app := kafkatest.App("replydel")
	eph := remoteNode(t, app, allRemote, "all", hostAll(&CalcImpl{}))
	fixed := remoteNodeWith(t, app, allRemote, "all", func(o *runtime.Options) { o.Instance = "keep" }, nil)
	ephTopic := "molgen." + app + ".reply.all." + eph.Instance()
	fixedTopic := "molgen." + app + ".reply.all.keep"
	if !kafkatest.Exists(t, ephTopic) || !kafkatest.Exists(t, fixedTopic) {
		t.Fatalf("reply topics %s, %s not created", ephTopic, fixedTopic)
	}
	if err := eph.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fixed.Close(); err != nil {
		t.Fatal(err)
	}
	wait := time.Now().Add(15 * time.Second)
	for kafkatest.Exists(t, ephTopic) && time.Now().Before(wait) {
		time.Sleep(100 * time.Millisecond)
	}
	if kafkatest.Exists(t, ephTopic) {
		t.Errorf("the reply topic %s of an instance with a generated id survived Close", ephTopic)
	}
	if !kafkatest.Exists(t, fixedTopic) {
		t.Errorf("the reply topic %s of a fixed instance was deleted", fixedTopic)
	}
}

// TestClosedNodeAbortsWritesThatRetry: a call whose request cannot be
// written (its topic was deleted) retries until its deadline; closing the
// node ends it at once with ErrClosed rather than waiting for the deadline.
func TestClosedNodeAbortsWritesThatRetry(t *testing.T) {
	short.Skip(t, "waits for writes that keep failing")
	app := kafkatest.App("abort")
	// Calls wait for an instance (none comes), so that they are written
	// rather than refused with ErrNoInstance.
	yaml := strings.Replace(serverClient, "  partitions: 2\n", "  partitions: 2\n  wait_for_instances: true\n", 1)
	client := remoteNode(t, app, yaml, "client", func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	c := NewCalcClient(client)
	// A first call creates the request topic; nobody serves it.
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.Add(short, 1, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call with no server: %v", err)
	}
	deleteTopic(t, "molgen."+app+".req.calc")
	// Let the node's metadata (refreshed every second) learn that the topic
	// is gone: writes then fail with a retriable error before producing.
	time.Sleep(2500 * time.Millisecond)
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err := c.Add(ctx, 1, 1)
		res <- err
	}()
	time.Sleep(time.Second) // the write is retrying
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- client.Close() }()
	select {
	case err := <-res:
		if !errors.Is(err, runtime.ErrClosed) {
			t.Errorf("a call cut short by Close: %v; want ErrClosed", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a call whose write retries was not ended by Close within 15s")
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	t.Logf("Close ended the retrying call in %v", time.Since(start).Round(time.Millisecond))
}

func headers(kv ...string) []kgo.RecordHeader { return kafkatest.Headers(kv...) }

// writeRaw writes recs to topic, as another client would.
func writeRaw(t *testing.T, topic string, recs ...*kgo.Record) { kafkatest.Write(t, topic, recs...) }

func createTopic(t *testing.T, topic string, partitions int) {
	kafkatest.CreateTopic(t, topic, partitions)
}

func deleteTopic(t *testing.T, topic string) { kafkatest.DeleteTopic(t, topic) }

// readRecords reads topic from its start until want holds of what was
// read, and returns it, or fails the test after 30s.
func readRecords(t *testing.T, topic string, want func([]*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	cl := kafkatest.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*kgo.Record
	for !want(got) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %d records read: %v", topic, len(got), ctx.Err())
		}
		got = append(got, fs.Records()...)
	}
	return got
}

// TestFarDeadlinesAreClamped: a request whose deadline is a century away
// runs under the server's maximum (15 minutes), so no request can hold a
// slot for longer.
func TestFarDeadlinesAreClamped(t *testing.T) {
	app := kafkatest.App("clamp")
	remoteNode(t, app, serverClient, "server", func(n *runtime.Node) error {
		if err := RegisterCalc(n, &CalcImpl{}); err != nil {
			return err
		}
		return RegisterRelay(n, NewRelay(NewCalcClient(n)))
	})
	replies := "molgen." + app + ".reply.test.replies"
	createTopic(t, replies, 1)
	far := time.Now().Add(100 * 365 * 24 * time.Hour).UTC().Format(time.RFC3339Nano)
	writeRaw(t, "molgen."+app+".req.calc", &kgo.Record{Headers: headers(
		"molgen-version", "2", "molgen-method", "Deadline", "molgen-deadline", far, "molgen-id", "x.1", "molgen-reply-to", replies)})
	m := readRecords(t, replies, func(rs []*kgo.Record) bool { return len(rs) > 0 })[0]
	d := runtime.NewDecoder(m.Value)
	got := d.Time()
	if err := d.Finish(); err != nil {
		t.Fatalf("reply %q: %v", m.Value, err)
	}
	if limit := time.Now().Add(15 * time.Minute); got.After(limit) || got.Before(limit.Add(-time.Minute)) {
		t.Fatalf("the handler ran with deadline %v; want about 15 minutes from now", got)
	}
}

// TestOneSlotServesEveryPartition: with MaxConcurrent 1 and a request topic
// of two partitions, requests on both partitions are served (a fetcher
// waiting on an idle partition must not hold the only slot).
func TestOneSlotServesEveryPartition(t *testing.T) {
	app := kafkatest.App("oneslot")
	remoteNodeWith(t, app, serverClient, "server", func(o *runtime.Options) { o.MaxConcurrent = 1 }, func(n *runtime.Node) error {
		if err := RegisterCalc(n, &CalcImpl{}); err != nil {
			return err
		}
		return RegisterRelay(n, NewRelay(NewCalcClient(n)))
	})
	client := remoteNode(t, app, serverClient, "client", func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	c := NewCalcClient(client)
	for i := range 6 { // round-robin: both partitions
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := c.Add(ctx, i, 1)
		cancel()
		if err != nil || got != i+1 {
			t.Fatalf("call %d with one slot: %d, %v", i, got, err)
		}
	}
}

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

// registerServer hosts calc and relay, as the server node of serverClient.
func registerServer(impl *CalcImpl) func(n *runtime.Node) error {
	return func(n *runtime.Node) error {
		if err := RegisterCalc(n, impl); err != nil {
			return err
		}
		return RegisterRelay(n, NewRelay(NewCalcClient(n)))
	}
}

func registerClient(n *runtime.Node) error { return RegisterCodec(n, echo{}) }

// TestOversizedRequestFailsAtOnce: a request over the size limit (Kafka's
// message.max.bytes, 1 MiB by default) fails at once with ErrTooLarge,
// naming the method and the sizes; one just under it goes through.
func TestOversizedRequestFailsAtOnce(t *testing.T) {
	n := remoteNode(t, kafkatest.App("bigreq"), allRemote, "all", hostAll(&CalcImpl{}))
	c := NewCalcClient(n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	big := strings.Repeat("x", 400<<10)
	start := time.Now()
	_, err := c.Concat(ctx, big, big, big)
	el := time.Since(start)
	if !errors.Is(err, runtime.ErrTooLarge) || el > 3*time.Second {
		t.Fatalf("Concat of 1.2 MB: %v after %v; want ErrTooLarge at once", err, el)
	}
	if msg := err.Error(); !strings.Contains(msg, "calc.Concat") || !strings.Contains(msg, "bytes") || strings.Contains(msg, "Kafka write errors") {
		t.Fatalf("Concat of 1.2 MB: %q; want a message naming the method and the sizes", msg)
	}
	// 900 KB each way is under the limit.
	part := strings.Repeat("y", 300<<10)
	got, err := c.Concat(ctx, part, part, part)
	if err != nil || len(got) != 3*len(part)+2 {
		t.Fatalf("Concat of 900 KB: %d bytes, %v", len(got), err)
	}
}

// TestOversizedReplyIsAnsweredWithErrTooLarge: a reply over the limit of
// its caller's reply topic (here a topic whose max.message.bytes is 100000)
// becomes an error reply that the caller matches with ErrTooLarge, naming
// the method and the sizes, and is counted; calls answered at the same
// time are not disturbed.
func TestOversizedReplyIsAnsweredWithErrTooLarge(t *testing.T) {
	app := kafkatest.App("bigreply")
	server := remoteNode(t, app, serverClient, "server", registerServer(&CalcImpl{}))
	kafkatest.CreateTopic(t, "molgen."+app+".reply.client.small", 1, "max.message.bytes", "100000")
	client := remoteNodeWith(t, app, serverClient, "client", func(o *runtime.Options) { o.Instance = "small" }, registerClient)
	c := NewCalcClient(client)
	if got, err := c.Add(context.Background(), 1, 2); err != nil || got != 3 {
		t.Fatalf("Add = %d, %v", got, err)
	}
	part := strings.Repeat("z", 40_000) // the request fits its topic; the reply does not fit the reply topic
	err, others := concatWithOthers(c, part, 20)
	if !errors.Is(err, runtime.ErrTooLarge) {
		t.Fatalf("Concat with a 120 KB reply to a 100 KB reply topic: %v; want ErrTooLarge", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "calc.Concat") || !strings.Contains(msg, "over the limit of") {
		t.Fatalf("Concat with a 120 KB reply: %q; want a message naming the method and the sizes", msg)
	}
	if others != nil {
		t.Fatalf("a call answered with the oversized one failed: %v", others)
	}
	if st := server.Stats(); st.TooLarge != 1 {
		t.Fatalf("server stats %+v: want the oversized reply counted", st)
	}
}

// TestReplyRefusedByTheBrokerFailsOnlyItself: the server learned the limit
// of a caller's reply topic, then the topic's max.message.bytes is lowered.
// The broker refuses the batch holding the oversized reply: that reply
// becomes an ErrTooLarge error reply, and the replies batched with it are
// written again and arrive.
func TestReplyRefusedByTheBrokerFailsOnlyItself(t *testing.T) {
	app := kafkatest.App("refused")
	server := remoteNode(t, app, serverClient, "server", registerServer(&CalcImpl{}))
	client := remoteNodeWith(t, app, serverClient, "client", func(o *runtime.Options) { o.Instance = "shrink" }, registerClient)
	c := NewCalcClient(client)
	if got, err := c.Add(context.Background(), 1, 2); err != nil || got != 3 {
		t.Fatalf("Add = %d, %v", got, err)
	}
	alterTopicConfig(t, "molgen."+app+".reply.client.shrink", "max.message.bytes", "100000")
	part := strings.Repeat("z", 40_000)
	err, others := concatWithOthers(c, part, 20)
	if !errors.Is(err, runtime.ErrTooLarge) || !strings.Contains(err.Error(), "calc.Concat") {
		t.Fatalf("Concat with a reply the broker refuses: %v; want ErrTooLarge naming calc.Concat", err)
	}
	if others != nil {
		t.Fatalf("a call answered with the refused one failed: %v", others)
	}
	if st := server.Stats(); st.TooLarge != 1 {
		t.Fatalf("server stats %+v: want the refused reply counted", st)
	}
	// Later replies of that size are refused before they reach Kafka.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if _, err := c.Concat(ctx, part, part, part); !errors.Is(err, runtime.ErrTooLarge) {
		t.Fatalf("a second oversized reply: %v", err)
	}
}

// concatWithOthers calls Concat(part, part, part) together with n small
// calls, all at once, and returns the Concat's error and the first error
// of the others.
func concatWithOthers(c Calc, part string, n int) (concatErr, others error) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got, err := c.Concat(ctx, "a", fmt.Sprint(i), "c")
			if err == nil && got != fmt.Sprintf("a|%d|c", i) {
				err = fmt.Errorf("Concat = %q", got)
			}
			errs <- err
		}()
	}
	close(start)
	_, concatErr = c.Concat(ctx, part, part, part)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && others == nil {
			others = err
		}
	}
	return concatErr, others
}

// TestCallToAServiceWithNoInstanceFailsPromptly: a call to a service that
// no running instance serves (its consumer group never had a member, or
// its last instance has left) fails within about a second with
// ErrNoInstance naming the service, not at its deadline; oneway calls
// still return once written.
func TestCallToAServiceWithNoInstanceFailsPromptly(t *testing.T) {
	short.Skip(t, "waits for the no-instance verdict of several services")
	app := kafkatest.App("noinst")
	client := remoteNode(t, app, serverClient, "client", registerClient)
	c := NewCalcClient(client)
	check := func(when string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.Add(ctx, 1, 2)
		el := time.Since(start)
		if !errors.Is(err, runtime.ErrNoInstance) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, runtime.ErrMayHaveRun) || el > 4*time.Second {
			t.Fatalf("%s: Add = %v after %v; want ErrNoInstance within about a second", when, err, el)
		}
		if !strings.Contains(err.Error(), `"calc"`) {
			t.Fatalf("%s: %q does not name the service", when, err)
		}
		t.Logf("%s: %v after %v", when, err, el.Round(time.Millisecond))
	}
	check("no instance ever")
	if err := c.Count(context.Background()); err != nil {
		t.Fatalf("a oneway call with no instance: %v", err)
	}

	server := remoteNode(t, app, serverClient, "server", registerServer(&CalcImpl{}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if got, err := c.Add(ctx, 1, 2); err != nil || got != 3 {
		t.Fatalf("Add with a server = %d, %v", got, err)
	}
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	// The caller trusts a lookup that found members for half a second: a
	// call made at once may be written before the caller knows. It then
	// fails as one that may still run (ErrMayHaveRun), never as
	// ErrNoInstance, which promises that nothing was written.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Add(ctx, 1, 2)
	if !errors.Is(err, runtime.ErrNoInstance) && !errors.Is(err, runtime.ErrMayHaveRun) || errors.Is(err, runtime.ErrNoInstance) && errors.Is(err, runtime.ErrMayHaveRun) || time.Since(start) > 4*time.Second {
		t.Fatalf("right after the last instance left: Add = %v after %v; want ErrNoInstance or ErrMayHaveRun (not both) within about a second", err, time.Since(start))
	}
	t.Logf("right after the last instance left: %v", err)
	check("the last instance has left")
}

// TestWaitForInstancesKeepsCallsWaiting: with kafka.wait_for_instances a
// call to a service with no instance waits for one (until its deadline),
// for deployments that start callers first.
func TestWaitForInstancesKeepsCallsWaiting(t *testing.T) {
	short.Skip(t, "waits for an instance that starts late")
	app := kafkatest.App("waitinst")
	yaml := strings.Replace(serverClient, "  partitions: 2\n", "  partitions: 2\n  wait_for_instances: true\n", 1)
	client := remoteNode(t, app, yaml, "client", registerClient)
	c := NewCalcClient(client)
	type result struct {
		v   int
		err error
	}
	res := make(chan result, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		v, err := c.Add(ctx, 2, 3)
		res <- result{v, err}
	}()
	time.Sleep(2500 * time.Millisecond)
	select {
	case r := <-res:
		t.Fatalf("with wait_for_instances, a call with no instance ended after %v: %d, %v", time.Since(start), r.v, r.err)
	default:
	}
	remoteNode(t, app, yaml, "server", registerServer(&CalcImpl{}))
	if r := <-res; r.err != nil || r.v != 5 {
		t.Fatalf("a call waiting for an instance = %d, %v", r.v, r.err)
	}
}

// TestNoInstanceIsNotReportedWhileTheGroupRebalances: calls waiting while
// a second instance joins (the group rebalances) are answered.
func TestNoInstanceIsNotReportedWhileTheGroupRebalances(t *testing.T) {
	short.Skip(t, "waits out a consumer-group rebalance")
	app := kafkatest.App("rebalinst")
	remoteNode(t, app, serverClient, "server", registerServer(&CalcImpl{}))
	client := remoteNode(t, app, serverClient, "client", registerClient)
	c := NewCalcClient(client)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := c.Where(ctx, 1200*time.Millisecond)
			errs <- err
		}()
	}
	time.Sleep(300 * time.Millisecond)
	remoteNodeWith(t, app, serverClient, "server", func(o *runtime.Options) { o.Instance = "second" }, registerServer(&CalcImpl{}))
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a call during a rebalance: %v", err)
		}
	}
}

// TestReplyToAGoneCallerIsDroppedAtOnce: a reply whose caller's reply
// topic no longer exists is dropped at once and counted, rather than
// retried until the request's deadline (holding a slot of the service).
func TestReplyToAGoneCallerIsDroppedAtOnce(t *testing.T) {
	app := kafkatest.App("orphan")
	// One partition and one slot: while the reply is retried, the server
	// takes no other request.
	yaml := strings.Replace(serverClient, "partitions: 2", "partitions: 1", 1)
	server := remoteNodeWith(t, app, yaml, "server", func(o *runtime.Options) { o.MaxConcurrent = 1 }, registerServer(&CalcImpl{}))
	client := remoteNode(t, app, yaml, "client", registerClient)
	ghost := "molgen." + app + ".reply.gone.x"
	deadline := time.Now().Add(30 * time.Second).UTC().Format(time.RFC3339Nano)
	writeRaw(t, "molgen."+app+".req.calc", &kgo.Record{Value: []byte{2, 4}, Headers: headers(
		"molgen-version", "2", "molgen-method", "Add", "molgen-deadline", deadline, "molgen-id", "x.1", "molgen-reply-to", ghost)})
	wait := time.Now().Add(8 * time.Second)
	for server.Stats().OrphanedReplies == 0 && time.Now().Before(wait) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := server.Stats(); st.OrphanedReplies != 1 || st.Served != 1 {
		t.Fatalf("server stats %+v: want the reply to a missing topic dropped and counted", st)
	}
	// Its only slot is free again: another call is served at once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if got, err := NewCalcClient(client).Add(ctx, 2, 2); err != nil || got != 4 {
		t.Fatalf("Add after the orphaned reply = %d, %v", got, err)
	}
	if kafkatest.Exists(t, ghost) {
		t.Fatalf("the missing reply topic %s was created", ghost)
	}
}

// alterTopicConfig sets a config of topic and waits until a broker reports
// it.
func alterTopicConfig(t *testing.T, topic, name, value string) {
	t.Helper()
	kafkatest.SetTopicConfig(t, topic, name, value)
	adm := kafkatest.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err == nil {
			if rc, err := rcs.On(topic, nil); err == nil {
				for _, c := range rc.Configs {
					if c.Key == name && c.MaybeValue() == value {
						time.Sleep(300 * time.Millisecond) // every part of the broker has it
						return
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s=%s on %s was not applied", name, value, topic)
}

// TestNoInstanceNeverRunsLater: calls that fail with ErrNoInstance wrote
// nothing, so a server that starts afterwards, well within their
// deadlines, runs none of them; the request topic holds no record. A call
// written while the service had an instance, which failed because the
// instance left, says that it may still run (ErrMayHaveRun), and does
// run when an instance comes back before its deadline.
func TestNoInstanceNeverRunsLater(t *testing.T) {
	short.Skip(t, "waits for the no-instance verdicts and a late server")
	app := kafkatest.App("neverlater")
	client := remoteNode(t, app, serverClient, "client", registerClient)
	c := NewCalcClient(client)
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := c.Where(ctx, 0)
		cancel()
		if !errors.Is(err, runtime.ErrNoInstance) || errors.Is(err, runtime.ErrMayHaveRun) {
			t.Fatalf("call %d with no instance: %v, want ErrNoInstance", i, err)
		}
	}
	impl := &CalcImpl{}
	server := remoteNode(t, app, serverClient, "server", registerServer(impl))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Add(ctx, 1, 2); err != nil {
		t.Fatalf("Add with a server: %v", err)
	}
	// The server ran none of the three: they were never written.
	if n := impl.Wheres.Load(); n != 0 {
		t.Errorf("%d calls that failed with ErrNoInstance ran when a server started", n)
	}

	// Written (the caller saw members a moment ago), then the instance
	// leaves: the call may still run.
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	_, err := c.Where(wctx, 0)
	if errors.Is(err, runtime.ErrNoInstance) == errors.Is(err, runtime.ErrMayHaveRun) {
		t.Fatalf("a call right after the last instance left: %v, want ErrNoInstance or ErrMayHaveRun", err)
	}
	written := 0
	if errors.Is(err, runtime.ErrMayHaveRun) {
		written = 1
		later := &CalcImpl{}
		remoteNode(t, app, serverClient, "server", registerServer(later))
		for wait := time.Now().Add(20 * time.Second); later.Wheres.Load() == 0 && time.Now().Before(wait); {
			time.Sleep(50 * time.Millisecond)
		}
		if later.Wheres.Load() != 1 {
			t.Errorf("a call that failed with ErrMayHaveRun ran %d times on a server started before its deadline, want 1", later.Wheres.Load())
		}
	} else {
		t.Logf("the caller knew the instance had left before writing: %v", err)
	}
	// In Kafka: only the request of the call that may have run.
	wheres := 0
	for _, rec := range kafkatest.Records(t, "molgen."+app+".req.calc") {
		if m, _ := kafkatest.Header(rec, "molgen-method"); m == "Where" {
			wheres++
		}
	}
	if wheres != written {
		t.Errorf("%d Where requests in the request topic, want %d: a call that failed with ErrNoInstance was written", wheres, written)
	}
}

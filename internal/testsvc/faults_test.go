package testsvc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/runtime"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

const serverClient = `
app: APP
kafka:
  partitions: 2
nodes:
  server: [calc, relay]
  client: [codec]
`

func TestExpiredRequestIsNotRun(t *testing.T) {
	app := kafkatest.App("expired")
	// The call waits for an instance (rather than fail with ErrNoInstance):
	// its request is written and stays in Kafka.
	yaml := strings.Replace(serverClient, "  partitions: 2\n", "  partitions: 2\n  wait_for_instances: true\n", 1)
	client := remoteNode(t, app, yaml, "client", func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	c := NewCalcClient(client)
	// No server is running: the request waits in Kafka past its deadline
	// (long enough for the first call to create the request topic).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Sleep(ctx, time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call with no server: %v", err)
	}
	if n := len(kafkatest.Records(t, "molgen."+app+".req.calc")); n != 1 {
		t.Fatalf("%d requests in the topic, want the call's", n)
	}
	impl := &CalcImpl{}
	server := remoteNode(t, app, serverClient, "server", func(n *runtime.Node) error {
		if err := RegisterCalc(n, impl); err != nil {
			return err
		}
		return RegisterRelay(n, NewRelay(NewCalcClient(n)))
	})
	// The server reads the topic from the start: it sees the old request
	// before this one, and must skip it.
	if got, err := c.Add(context.Background(), 1, 2); err != nil || got != 3 {
		t.Fatalf("Add = %d, %v", got, err)
	}
	if n := impl.Sleeps.Load(); n != 0 {
		t.Fatalf("the expired request ran (%d Sleep calls)", n)
	}
	// The earlier request (perhaps on another partition, fetched later) is
	// skipped, and counted.
	wait := time.Now().Add(10 * time.Second)
	for server.Stats().ExpiredRequests == 0 && time.Now().Before(wait) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := impl.Sleeps.Load(); n != 0 {
		t.Fatalf("the expired request ran (%d Sleep calls)", n)
	}
	if st := server.Stats(); st.ExpiredRequests != 1 || st.Served != 1 {
		t.Fatalf("server stats %+v: want 1 expired request and 1 served", st)
	}
}

// TestPoisonMessagesAreAnsweredAndSkipped writes malformed requests straight
// to the request topic (named as docs/WIRE.md says) and checks that each is
// answered with an error when it says where to, and that the consumer
// keeps serving.
func TestPoisonMessagesAreAnsweredAndSkipped(t *testing.T) {
	app := kafkatest.App("poison")
	server := remoteNode(t, app, serverClient, "server", func(n *runtime.Node) error {
		if err := RegisterCalc(n, &CalcImpl{}); err != nil {
			return err
		}
		return RegisterRelay(n, NewRelay(NewCalcClient(n)))
	})
	replyTopic := "molgen." + app + ".reply.test.replies"
	createTopic(t, replyTopic, 1)
	deadline := time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)
	hdr := headers
	poison := []*kgo.Record{
		{Value: []byte("no headers at all")},
		{Value: []byte{0xff, 0xff, 0xff}, Headers: hdr("molgen-version", "2", "molgen-method", "Add", "molgen-deadline", deadline, "molgen-id", "1", "molgen-reply-to", replyTopic)},
		{Value: nil, Headers: hdr("molgen-version", "99", "molgen-method", "Add", "molgen-deadline", deadline, "molgen-id", "2", "molgen-reply-to", replyTopic)},
		{Value: nil, Headers: hdr("molgen-version", "2", "molgen-method", "Nope", "molgen-deadline", deadline, "molgen-id", "3", "molgen-reply-to", replyTopic)},
		{Value: nil, Headers: hdr("molgen-version", "2", "molgen-method", "Add", "molgen-deadline", "tomorrow", "molgen-id", "4", "molgen-reply-to", replyTopic)},
		{Value: []byte{2, 4}, Headers: hdr("molgen-version", "2", "molgen-method", "Add", "molgen-deadline", deadline, "molgen-id", "5", "molgen-reply-to", replyTopic, "molgen-schema", "(string,string)(int)")},
	}
	writeRaw(t, "molgen."+app+".req.calc", poison...)
	want := map[string]string{"1": "bad request", "2": `unsupported molgen-version "99"`, "3": `no method "Nope"`, "4": "invalid molgen-deadline",
		"5": "was called with types incompatible with this server's (parameter 0: string vs int; the caller's schema is (string,string)(int), this server's (int,int)(int))"}
	replies := readRecords(t, replyTopic, func(rs []*kgo.Record) bool { return len(rs) >= len(want) })
	for _, m := range replies {
		id, status := "", ""
		for _, h := range m.Headers {
			switch h.Key {
			case "molgen-id":
				id = string(h.Value)
			case "molgen-status":
				status = string(h.Value)
			}
		}
		if status != "error" || !strings.Contains(string(m.Value), want[id]) {
			t.Errorf("reply %s: status %q, payload %q; want an error containing %q", id, status, m.Value, want[id])
		}
		delete(want, id)
	}
	if got, err := NewCalcClient(server).Add(context.Background(), 2, 3); err != nil || got != 5 {
		t.Fatalf("after poison messages, Add = %d, %v", got, err)
	}
	if st := server.Stats(); st.BadMessages != int64(len(poison)) {
		t.Errorf("stats %+v: want %d bad messages counted", st, len(poison))
	}
}

func TestCloseLeaksNoGoroutines(t *testing.T) {
	kafkatest.Brokers(t) // start the embedded broker first: its goroutines are not ours
	time.Sleep(100 * time.Millisecond)
	ignore := goleak.IgnoreCurrent()
	func() {
		app := kafkatest.App("leak")
		pl, _ := runtime.ParsePlacement("p.yaml", []byte(strings.ReplaceAll(allRemote, "APP", app)))
		n, err := runtime.NewNode(runtime.Options{Placement: pl, Node: "all", Brokers: kafkatest.Brokers(t), Logger: testLogger(t), SessionTimeout: sessionTimeout()})
		if err != nil {
			t.Fatal(err)
		}
		hostAll(&CalcImpl{})(n)
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		c := NewCalcClient(n)
		for i := range 20 {
			if _, err := c.Add(context.Background(), i, i); err != nil {
				t.Fatal(err)
			}
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	goleak.VerifyNone(t, ignore,
		// The embedded broker's own per-connection goroutines end when it
		// notices the closed connections.
		goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*Cluster).run"),
		goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).read"),
		goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).write"),
	)
}

// TestDrainingNodeStillCallsOtherNodes closes a node while one of its
// handlers is about to call a service on another node: the nested call
// goes through and the caller gets its answer.
func TestDrainingNodeStillCallsOtherNodes(t *testing.T) {
	app := kafkatest.App("draincall")
	const yaml = `
app: APP
kafka:
  partitions: 2
nodes:
  front: [relay]
  back: [calc]
  edge: [codec]
`
	remoteNode(t, app, yaml, "back", func(n *runtime.Node) error { return RegisterCalc(n, &CalcImpl{}) })
	front := remoteNode(t, app, yaml, "front", func(n *runtime.Node) error {
		return RegisterRelay(n, NewRelay(NewCalcClient(n)))
	})
	edge := remoteNode(t, app, yaml, "edge", func(n *runtime.Node) error { return RegisterCodec(n, echo{}) })
	type result struct {
		v   int
		err error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		v, err := NewRelayClient(edge).Later(ctx, 700*time.Millisecond, 49)
		res <- result{v, err}
	}()
	time.Sleep(400 * time.Millisecond) // the relay handler is waiting
	closed := make(chan error, 1)
	go func() { closed <- front.Close() }()
	r := <-res
	if r.err != nil || r.v != 7 {
		t.Fatalf("a call whose handler calls another node while its node drains: %d, %v", r.v, r.err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
}

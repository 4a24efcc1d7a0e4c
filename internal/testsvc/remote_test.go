package testsvc

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/runtime"
)

// remoteNode starts a node of placement yaml (with the test broker and a
// fresh app name) that hosts the given services.
func remoteNode(t testing.TB, app, yaml, node string, register func(*runtime.Node) error) *runtime.Node {
	t.Helper()
	return remoteNodeWith(t, app, yaml, node, nil, register)
}

// remoteNodeWith is remoteNode with options changed by opts.
func remoteNodeWith(t testing.TB, app, yaml, node string, opts func(*runtime.Options), register func(*runtime.Node) error) *runtime.Node {
	t.Helper()
	pl, err := runtime.ParsePlacement("test.yaml", []byte(strings.ReplaceAll(yaml, "APP", app)))
	if err != nil {
		t.Fatal(err)
	}
	o := runtime.Options{
		Placement:      pl,
		Node:           node,
		Brokers:        kafkatest.Brokers(t),
		Logger:         testLogger(t),
		SessionTimeout: sessionTimeout(),
	}
	if opts != nil {
		opts(&o)
	}
	n, err := runtime.NewNode(o)
	if err != nil {
		t.Fatal(err)
	}
	if register != nil {
		if err := register(n); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// sessionTimeout is short on the embedded broker, and the real broker's
// minimum (as configured by scripts/kafka) otherwise.
func sessionTimeout() time.Duration {
	if kafkatest.Real() {
		return 2 * time.Second
	}
	return time.Second
}

// allRemote runs every service on one node with prefer_local off, so that
// every call goes through Kafka.
const allRemote = `
app: APP
prefer_local: false
kafka:
  partitions: 4
nodes:
  all: ["*"]
`

func hostAll(impl *CalcImpl) func(n *runtime.Node) error {
	return func(n *runtime.Node) error {
		if err := RegisterCalc(n, impl); err != nil {
			return err
		}
		if err := RegisterCodec(n, echo{}); err != nil {
			return err
		}
		return RegisterRelay(n, NewRelay(NewCalcClient(n)))
	}
}

func TestRemoteCallsGoThroughKafka(t *testing.T) {
	impl := &CalcImpl{}
	n := remoteNode(t, kafkatest.App("remote"), allRemote, "all", hostAll(impl))
	ctx := context.Background()
	c := NewCalcClient(n)

	if got, err := c.Add(ctx, 20, 22); err != nil || got != 42 {
		t.Fatalf("Add = %d, %v", got, err)
	}
	_, err := c.Sqrt(ctx, -9)
	if !errors.Is(err, ErrNegative) || err.Error() != "sqrt(-9): testsvc: negative input" {
		t.Fatalf("Sqrt(-9) err = %v (%T)", err, err)
	}
	var re *runtime.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("Sqrt(-9) did not cross Kafka: %T", err)
	}
	// Several arguments and results of one type keep their order.
	if got, err := c.Concat(ctx, "a", "b", "c"); err != nil || got != "a|b|c" {
		t.Fatalf("Concat(a, b, c) = %q, %v", got, err)
	}
	if before, after, err := c.Split(ctx, "left|right"); err != nil || before != "left" || after != "right" {
		t.Fatalf("Split(left|right) = %q, %q, %v", before, after, err)
	}
	k := fullKinds()
	got, err := NewCodecClient(n).Kinds(ctx, k)
	if err != nil || !reflect.DeepEqual(got, k) {
		t.Fatalf("Kinds round trip over Kafka: %v\n got %+v\nwant %+v", err, got, k)
	}
}

func TestRemotePanicBecomesErrorAndNodeKeepsServing(t *testing.T) {
	n := remoteNode(t, kafkatest.App("panic"), allRemote, "all", hostAll(&CalcImpl{}))
	c := NewCalcClient(n)
	err := c.Panic(context.Background(), "kaboom")
	if !errors.Is(err, runtime.ErrPanic) || !strings.Contains(err.Error(), "kaboom") {
		t.Fatalf("Panic err = %v", err)
	}
	for i := range 3 {
		if got, err := c.Add(context.Background(), i, 1); err != nil || got != i+1 {
			t.Fatalf("after a panic, Add = %d, %v", got, err)
		}
	}
	// An error whose Error method panics (a typed nil) is answered too.
	err = c.Broken(context.Background())
	if err == nil || !strings.Contains(err.Error(), "brokenError (its Error method panicked") {
		t.Fatalf("Broken err = %v", err)
	}
	if got, err := c.Add(context.Background(), 1, 1); err != nil || got != 2 {
		t.Fatalf("after a broken error, Add = %d, %v", got, err)
	}
}

func TestRemoteOnewayAndRetry(t *testing.T) {
	impl := &CalcImpl{}
	n := remoteNode(t, kafkatest.App("oneway"), allRemote, "all", hostAll(impl))
	c := NewCalcClient(n)
	for range 5 {
		if err := c.Count(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for impl.Counter.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got, err := c.Total(context.Background()); err != nil || got != 5 {
		t.Fatalf("Total after 5 oneway calls = %d, %v", got, err)
	}
}

func TestRemoteDeadline(t *testing.T) {
	impl := &CalcImpl{}
	n := remoteNode(t, kafkatest.App("deadline"), allRemote, "all", hostAll(impl))
	c := NewCalcClient(n)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Sleep(ctx, 10*time.Second)
	if el := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || el > 1500*time.Millisecond {
		t.Fatalf("Sleep under a 300ms deadline: err=%v after %v", err, el)
	}
	// Without a deadline in ctx, the method's //molgen:timeout 50ms applies.
	start = time.Now()
	err = c.Sleep(context.Background(), 10*time.Second)
	if el := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || el > time.Second {
		t.Fatalf("Sleep with its 50ms timeout: err=%v after %v", err, el)
	}
}

func TestRemoteErrorsKeepIdentityAcrossTwoHops(t *testing.T) {
	app := kafkatest.App("hops")
	const yaml = `
app: APP
kafka:
  partitions: 2
nodes:
  front: [relay]
  back: [calc, codec]
`
	remoteNode(t, app, yaml, "back", func(n *runtime.Node) error {
		if err := RegisterCodec(n, echo{}); err != nil {
			return err
		}
		return RegisterCalc(n, &CalcImpl{})
	})
	front := remoteNode(t, app, yaml, "front", func(n *runtime.Node) error {
		return RegisterRelay(n, NewRelay(NewCalcClient(n)))
	})
	// test -> relay (local on front) -> calc (remote, on back): one hop.
	// test -> relay via a third node -> calc: two hops.
	caller := remoteNode(t, app, strings.Replace(yaml, "back: [calc, codec]", "back: [calc, codec]\n  edge: [codec]", 1), "edge", func(n *runtime.Node) error {
		return RegisterCodec(n, echo{})
	})
	_ = front
	err := NewRelayClient(caller).Fail(context.Background(), 2)
	if !errors.Is(err, ErrWrapped) {
		t.Fatalf("two remote hops lost the error identity: %v (%T)", err, err)
	}
	if want := "relay: layer 1: layer 0: testsvc: deep failure"; err.Error() != want {
		t.Fatalf("message = %q, want %q", err.Error(), want)
	}
	_, err = NewRelayClient(caller).Sqrt(context.Background(), -1)
	if !errors.Is(err, ErrNegative) || errors.Is(err, ErrWrapped) {
		t.Fatalf("Sqrt through relay: %v", err)
	}
}

func TestUnreachableBrokerGivesClearError(t *testing.T) {
	pl, _ := runtime.ParsePlacement("p.yaml", []byte("app: x\nnodes:\n  a: [calc]\n  b: [codec]\n"))
	n, err := runtime.NewNode(runtime.Options{Placement: pl, Node: "a", Brokers: []string{"127.0.0.1:1"}, Logger: testLogger(t), ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	RegisterCalc(n, &CalcImpl{})
	start := time.Now()
	err = n.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot reach Kafka at 127.0.0.1:1") || !strings.Contains(err.Error(), "connection refused") || time.Since(start) > 10*time.Second {
		t.Fatalf("Start with no broker: %v after %v", err, time.Since(start))
	}
	// codec is placed on b: a remote call on a node that failed to start.
	if err := NewCodecClient(n).Nothing(context.Background()); !errors.Is(err, runtime.ErrClosed) {
		t.Fatalf("a remote call on a node that failed to start: %v", err)
	}
}

// TestRetryResendsAndTheCallerSeesOneReply: a //molgen:retry method whose
// reply is slow is sent again with the same id, to the partition of the
// first copy; the instance running it recognizes the copies (their call
// id) and does not run them again: the call runs once, the caller gets
// its reply, and the copies are counted as duplicates.
func TestRetryResendsAndTheCallerSeesOneReply(t *testing.T) {
	impl := &CalcImpl{}
	n := remoteNode(t, kafkatest.App("retry"), allRemote, "all", hostAll(impl))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got, err := NewCalcClient(n).Slow(ctx, 700*time.Millisecond, "once")
	if err != nil || got != "once" {
		t.Fatalf("Slow = %q, %v", got, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for n.Stats().Duplicates == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if runs := impl.Slows.Load(); runs != 1 {
		t.Errorf("the request ran %d times; want once, its copies recognized", runs)
	}
	if st := n.Stats(); st.Duplicates == 0 || st.Served != 1 {
		t.Fatalf("stats %+v: want the resent copies counted as duplicates, one request served", st)
	}
}

package testsvc

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/proctest"
	"github.com/molgen/molgen/runtime"
)

// TestReadiness: a node with Kafka is not ready before it starts, becomes
// ready only once every service it hosts has been assigned its partitions
// (the transport logs that) and its reply topic is read, and is not ready
// any more from the moment Close begins, while a request still runs.
func TestReadiness(t *testing.T) {
	var logs proctest.Buffer
	impl := &CalcImpl{}
	app := kafkatest.App("ready")
	pl, err := runtime.ParsePlacement("test.yaml", []byte(strings.ReplaceAll(allRemote, "APP", app)))
	if err != nil {
		t.Fatal(err)
	}
	n, err := runtime.NewNode(runtime.Options{
		Placement: pl, Node: "all", Brokers: kafkatest.Brokers(t), SessionTimeout: sessionTimeout(),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := hostAll(impl)(n); err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); err == nil {
		t.Fatal("ready before Start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for last = n.Ready(); last != nil && time.Now().Before(deadline); last = n.Ready() {
		time.Sleep(time.Millisecond)
	}
	if last != nil {
		t.Fatalf("not ready 30s after Start: %v", last)
	}
	if !strings.Contains(logs.String(), "ready: every service served here has joined its consumer group") {
		t.Fatalf("ready before every hosted service was assigned its partitions; logs:\n%s", logs.String())
	}
	if err := n.Healthy(); err != nil {
		t.Fatalf("Healthy: %v", err)
	}

	// A request runs while the node drains: not ready meanwhile.
	result := make(chan error, 1)
	go func() {
		_, err := NewCalcClient(n).Where(ctx, 700*time.Millisecond)
		result <- err
	}()
	for impl.Wheres.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-result:
		t.Fatalf("the call ended before the drain could be seen: %v", err)
	default:
	}
	if err := n.Ready(); err == nil || !strings.Contains(err.Error(), "draining") {
		t.Errorf("Ready while draining = %v, want a draining error", err)
	}
	if err := <-result; err != nil {
		t.Errorf("the call running during the drain: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}

package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/short"
	"github.com/molgen/molgen/runtime/internal/transport"
)

// testTransport connects a transport of app to the test broker, with
// settings changed by edit.
func testTransport(t *testing.T, app string, edit func(*Settings)) *Transport {
	t.Helper()
	set := DefaultSettings()
	if edit != nil {
		edit(&set)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	tr, err := New(ctx, Config{
		App: app, Node: "test", Instance: randomHex(4), Ephemeral: true,
		Brokers: kafkatest.Brokers(t), Partitions: 2, ReplicationFactor: 1,
		Logger:     log,
		ErrorReply: func(err error) []byte { return []byte(err.Error()) },
		Settings:   set,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Drain() })
	return tr
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testRequest(service string) *transport.Request {
	return &transport.Request{Service: service, Method: "M", Deadline: time.Now().Add(time.Minute), Payload: []byte("x")}
}

func testAdmin(t *testing.T) *kafkago.Client {
	tr := &kafkago.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &kafkago.Client{Addr: kafkago.TCP(kafkatest.Brokers(t)...), Transport: tr, Timeout: 10 * time.Second}
}

// TestRetriableErrorsInWriteErrorsAreRetried: a node whose metadata still
// shows a deleted topic writes to it; the broker answers Unknown Topic Or
// Partition (or Not Leader For Partition), which kafka-go returns inside
// kafka.WriteErrors after its own attempts. molgen retries it within the
// call's deadline: a write that runs out of time fails with
// DeadlineExceeded and an error naming the topic and the cause, and one
// with time left succeeds once the topic is back.
func TestRetriableErrorsInWriteErrorsAreRetried(t *testing.T) {
	short.Skip(t, "retries writes against a broker that refuses them")
	app := kafkatest.App("writeerrs")
	tr := testTransport(t, app, func(s *Settings) { s.MetadataTTL = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Send(ctx, testRequest("svc")); err != nil {
		t.Fatal(err)
	}
	topic := requestTopic(app, "svc")
	admin := testAdmin(t)
	res, err := admin.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: []string{topic}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		t.Fatal(err)
	}
	for kafkatest.Exists(t, topic) {
		time.Sleep(50 * time.Millisecond)
	}

	short, cancel2 := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel2()
	start := time.Now()
	err = tr.Send(short, testRequest("svc"))
	el := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || el < time.Second {
		t.Fatalf("a write to a deleted topic under a 1.5s deadline: %v after %v; want DeadlineExceeded at the deadline", err, el)
	}
	if msg := err.Error(); !strings.Contains(msg, topic) || !(strings.Contains(msg, "Unknown Topic Or Partition") || strings.Contains(msg, "Not Leader")) || strings.Contains(msg, "Kafka write errors") {
		t.Fatalf("a write to a deleted topic: %q; want the topic and the broker's answer", msg)
	}
	// The same, with the deadline in the request alone (as Client.Call
	// sends it when the caller's context has none), oneway and not.
	for _, call := range []bool{false, true} {
		req := testRequest("svc")
		req.Deadline = time.Now().Add(1500 * time.Millisecond)
		start := time.Now()
		if call {
			_, err = tr.Call(context.Background(), req)
		} else {
			err = tr.Send(context.Background(), req)
		}
		el := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) || el < time.Second || el > 10*time.Second {
			t.Fatalf("a write (call %v) to a deleted topic with a request deadline of 1.5s: %v after %v; want DeadlineExceeded at the deadline", call, err, el)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "context deadline exceeded (writing the request: ") || !strings.Contains(msg, topic) {
			t.Fatalf("a write (call %v) to a deleted topic with a request deadline: %q; want the deadline, the topic and the broker's answer", call, msg)
		}
	}

	done := make(chan error, 1)
	go func() { done <- tr.Send(ctx, testRequest("svc")) }()
	time.Sleep(time.Second)
	select {
	case err := <-done:
		t.Fatalf("a write to a deleted topic ended before the topic was back: %v", err)
	default:
	}
	cres, err := admin.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: 2, ReplicationFactor: 1}}})
	if err == nil {
		err = cres.Errors[topic]
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("a write retried until its topic was back: %v", err)
	}
}

// TestCallEndsAtTheRequestDeadline: a call whose context has no deadline
// ends at its request's, with context.DeadlineExceeded, when no reply
// comes; so does one whose context's deadline is later.
func TestCallEndsAtTheRequestDeadline(t *testing.T) {
	tr := testTransport(t, kafkatest.App("reqdeadline"), func(s *Settings) { s.InstanceCheck = 0 })
	later, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ctx := range []context.Context{context.Background(), later} {
		req := testRequest("nobody")
		req.Deadline = time.Now().Add(300 * time.Millisecond)
		start := time.Now()
		_, err := tr.Call(ctx, req)
		el := time.Since(start)
		if err != context.DeadlineExceeded || el < 300*time.Millisecond || el > 10*time.Second {
			t.Fatalf("a call without a server and a 300ms request deadline: %v after %v; want context.DeadlineExceeded at the deadline", err, el)
		}
	}
}

// TestConcurrentFirstCallsPrepareTheTopicOnce: many calls of a service
// whose topic is not known yet share one preparation (one CreateTopics),
// and all of them succeed under a short deadline.
func TestConcurrentFirstCallsPrepareTheTopicOnce(t *testing.T) {
	tr := testTransport(t, kafkatest.App("prep"), nil)
	before := tr.stats.createTopics.Load()
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			errs <- tr.Send(ctx, testRequest("many"))
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	var first error
	for err := range errs {
		if err != nil {
			failed++
			first = cmpOr(first, err)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d first calls failed; first: %v", failed, n, first)
	}
	if got := tr.stats.createTopics.Load() - before; got != 1 {
		t.Fatalf("%d concurrent first calls sent %d CreateTopics requests, want 1", n, got)
	}
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// TestSharedAttemptIsNotCached: callers of one key share an attempt in
// flight; a failed attempt is given to those waiting for it, and the next
// caller makes a new one.
func TestSharedAttemptIsNotCached(t *testing.T) {
	tr := &Transport{}
	tr.done, tr.stopDone = context.WithCancel(context.Background())
	defer tr.stopDone()
	release := make(chan struct{})
	var runs sync.WaitGroup
	calls := 0
	var mu sync.Mutex
	attempt := func(ctx context.Context) error {
		mu.Lock()
		calls++
		mu.Unlock()
		<-release
		return errors.New("broker says no")
	}
	errs := make(chan error, 10)
	for range 10 {
		runs.Add(1)
		go func() {
			defer runs.Done()
			errs <- tr.shared(context.Background(), "k", time.Minute, attempt)
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	runs.Wait()
	close(errs)
	for err := range errs {
		if err == nil || err.Error() != "broker says no" {
			t.Fatalf("a caller of a failed attempt got %v", err)
		}
	}
	if calls != 1 {
		t.Fatalf("10 concurrent callers made %d attempts, want 1", calls)
	}
	if err := tr.shared(context.Background(), "k", time.Minute, func(context.Context) error { return nil }); err != nil {
		t.Fatalf("the attempt after a failed one: %v", err)
	}
	// A caller whose context ends stops waiting; the attempt goes on.
	block := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tr.shared(ctx, "slow", time.Minute, func(context.Context) error { <-block; return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a caller whose deadline passed: %v", err)
	}
	close(block)
}

// TestRetriable: which write errors are tried again. Those that say
// nothing was written always are; those after which a message may have
// been written only when a duplicate is harmless.
func TestRetriable(t *testing.T) {
	for _, c := range []struct {
		err      error
		safe, ok bool // retriable without and with duplicates allowed
	}{
		{kafkago.NotLeaderForPartition, true, true},
		{kafkago.UnknownTopicOrPartition, true, true},
		{kafkago.LeaderNotAvailable, true, true},
		{kafkago.WriteErrors{kafkago.NotLeaderForPartition}, true, true},
		{kafkago.WriteErrors{nil, fmt.Errorf("wrapped: %w", kafkago.UnknownTopicOrPartition)}, true, true},
		{fmt.Errorf("kafka.(*Client).Produce: %w", protocol.ErrNoTopic), true, true},
		{protocol.NewErrNoLeader("t", 0), true, true},
		{syscall.ECONNREFUSED, true, true},
		// A connection that broke before a request was written on it (the
		// broker restarting during the version check).
		{kafkago.WriteErrors{&dialError{fmt.Errorf("asking b:9092 for its API versions: %w", io.EOF)}}, true, true},
		{fmt.Errorf("%w: %w", errIdleClosed, io.ErrUnexpectedEOF), true, true},
		{kafkago.WriteErrors{io.ErrUnexpectedEOF}, false, true},
		{kafkago.WriteErrors{syscall.ECONNRESET}, false, true},
		{kafkago.RequestTimedOut, false, true},
		{kafkago.NotEnoughReplicasAfterAppend, false, true},
		{kafkago.TopicAuthorizationFailed, false, false},
		{kafkago.WriteErrors{kafkago.MessageSizeTooLarge}, false, false},
		{kafkago.MessageTooLargeError{}, false, false},
		{errors.New("something else"), false, false},
	} {
		_, cause := failedMessages(make([]kafkago.Message, max(1, lenWriteErrors(c.err))), c.err, true)
		if got := retriable(cause, false); got != c.safe {
			t.Errorf("retriable(%v) without duplicates = %t, want %t", c.err, got, c.safe)
		}
		if got := retriable(cause, true); got != c.ok {
			t.Errorf("retriable(%v) with duplicates = %t, want %t", c.err, got, c.ok)
		}
	}
}

func lenWriteErrors(err error) int {
	if we, ok := err.(kafkago.WriteErrors); ok {
		return len(we)
	}
	return 0
}

// TestWriteFailureReadsClearly: an error that ends a write names the topic
// and the cause, never kafka-go's "Kafka write errors (1/1)" alone.
func TestWriteFailureReadsClearly(t *testing.T) {
	_, cause := failedMessages([]kafkago.Message{{Topic: "molgen.a.req.s"}}, kafkago.WriteErrors{kafkago.TopicAuthorizationFailed}, true)
	err := writeFailure("molgen.a.req.s", []string{"k:9092"}, cause)
	if msg := err.Error(); !strings.Contains(msg, "molgen.a.req.s") || !strings.Contains(msg, "Topic Authorization Failed") || strings.Contains(msg, "Kafka write errors") {
		t.Fatalf("write failure reads %q", msg)
	}
	if !errors.Is(err, kafkago.TopicAuthorizationFailed) {
		t.Fatalf("write failure %v does not match its cause", err)
	}
	err = writeFailure("molgen.a.req.s", []string{"k:9092"}, io.ErrUnexpectedEOF)
	if msg := err.Error(); !strings.Contains(msg, "k:9092") || !strings.Contains(msg, "unexpected EOF") {
		t.Fatalf("a connection failure reads %q; want the brokers named", msg)
	}
}

// TestRefusedBatchFailsOnlyTheOversizedReply: replies written together
// share a produce batch (here a 300ms Linger makes sure of it). The
// broker refuses the batch because one reply is over the topic's
// max.message.bytes (lowered after the transport learned it): the others
// are written again, one per request, and arrive; the oversized one
// becomes an ErrTooLarge error reply.
func TestRefusedBatchFailsOnlyTheOversizedReply(t *testing.T) {
	app := kafkatest.App("batch")
	tr := testTransport(t, app, func(s *Settings) { s.Linger = 300 * time.Millisecond })
	topic := "molgen." + app + ".reply.caller.x"
	admin := testAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic: topic, NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: []kafkago.ConfigEntry{{ConfigName: "max.message.bytes", ConfigValue: "100000"}},
	}}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		t.Fatal(err)
	}
	if !tr.knowReplyTopic(ctx, topic) {
		t.Fatalf("reply topic %s not found", topic)
	}
	tr.setTopicLimit(topic, 1<<20) // as if learned before the topic's limit was lowered

	const small = 10
	var wg sync.WaitGroup
	errs := make(chan error, small+1)
	for i := range small + 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := []byte(fmt.Sprint(i))
			if i == small {
				payload = make([]byte, 120_000)
			}
			errs <- tr.writeReply(ctx, "svc", "M", topic, fmt.Sprint(i), transport.Reply{Payload: payload})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("writeReply: %v", err)
		}
	}
	got := map[string]string{}
	for _, m := range kafkatest.Records(t, topic) {
		id, _ := kafkatest.Header(m, hID)
		status, _ := kafkatest.Header(m, hStatus)
		got[id] = status
		if id == fmt.Sprint(small) && (status != statusError || !strings.Contains(string(m.Value), "the reply of svc.M is")) {
			t.Errorf("the oversized reply arrived as %s %.100q; want an ErrTooLarge error reply", status, m.Value)
		}
	}
	for i := range small {
		if got[fmt.Sprint(i)] != statusOK {
			t.Errorf("reply %d, written with the oversized one: %q; want it delivered (have %v)", i, got[fmt.Sprint(i)], got)
		}
	}
	if n := tr.stats.tooLarge.Load(); n != 1 {
		t.Errorf("%d replies counted too large, want 1", n)
	}
}

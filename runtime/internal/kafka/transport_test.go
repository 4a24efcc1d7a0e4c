package kafka

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/runtime/internal/transport"
)

// testTransport starts a transport of app on the test broker, with
// DefaultSettings edited by edit, drained when the test ends.
func testTransport(t *testing.T, app string, edit func(*Settings)) *Transport {
	t.Helper()
	set := DefaultSettings()
	if edit != nil {
		edit(&set)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := testLogger(t)
	tr, err := New(ctx, Config{
		App: app, Node: "test", Instance: randomHex(4), Ephemeral: true,
		Brokers: kafkatest.Brokers(t), Partitions: 2,
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

// testLogger logs to the test's log when verbose, else nowhere.
func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testRequest(service string) *transport.Request {
	return &transport.Request{Service: service, Method: "M", Deadline: time.Now().Add(time.Minute), Payload: []byte("x")}
}

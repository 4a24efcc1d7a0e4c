package kafka

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// lockedBuffer is a log sink the test reads while the transport writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWatchOneAnsweringBrokerIsNoOutage: on a cluster of three brokers of
// which two hang (connections open, metadata requests never answered), the
// watch finds Kafka answering through the third, whichever broker its
// probe asked first: no "Kafka does not answer", and the transport is not
// down (/readyz stays 200). Only when the third hangs too is it an
// outage, and it ends when they answer again. (Before, a probe that asked
// a hung broker declared an outage, and the next one, asking another,
// ended it: WARN and readiness flapping while two brokers of three
// served, as the fault suite's cluster scenario (c) showed.)
func TestWatchOneAnsweringBrokerIsNoOutage(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var logs lockedBuffer
	set := DefaultSettings()
	set.MetadataProbe = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr, err := New(ctx, Config{
		App: "hung", Node: "test", Instance: randomHex(4), Ephemeral: true,
		Brokers: c.ListenAddrs(), Partitions: 2,
		Logger:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		ErrorReply: func(err error) []byte { return []byte(err.Error()) },
		Settings:   set,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Drain() })

	// Metadata requests to a hung broker wait until release (the cleanup,
	// which runs before the drain and the cluster's close).
	var hung [3]atomic.Bool
	var hits atomic.Int64 // metadata requests that reached a hung broker
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	c.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if n := c.CurrentNode(); n >= 0 && n < 3 && hung[n].Load() {
			hits.Add(1)
			c.SleepControl(func() {
				select {
				case <-release:
				case <-time.After(time.Minute):
				}
			})
		}
		return nil, nil, false
	})

	hung[0].Store(true)
	hung[1].Store(true)
	// Rounds of the watch (one a second) until several probes have met a
	// hung broker, and some more.
	deadline := time.Now().Add(30 * time.Second)
	for rounds := 0; rounds < 4 || hits.Load() < 3; rounds++ {
		if time.Now().After(deadline) {
			t.Fatalf("only %d metadata requests reached the hung brokers in 30s", hits.Load())
		}
		for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if tr.watch.outage.isDown() {
				t.Fatalf("the watch declared an outage while broker 2 answered:\n%s", logs.String())
			}
		}
	}
	if strings.Contains(logs.String(), "Kafka does not answer") {
		t.Fatalf("logged an outage while broker 2 answered:\n%s", logs.String())
	}
	if err := tr.Healthy(); err != nil {
		t.Errorf("Healthy with one broker answering: %v", err)
	}

	// All three hung: that is an outage, within a few rounds.
	hung[2].Store(true)
	for end := time.Now().Add(10 * time.Second); !tr.watch.outage.isDown(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no outage 10s after every broker hung:\n%s", logs.String())
		}
	}
	if n := strings.Count(logs.String(), "Kafka does not answer"); n != 1 {
		t.Errorf("%d WARN of an outage, want 1:\n%s", n, logs.String())
	}
	for i := range hung {
		hung[i].Store(false)
	}
	for end := time.Now().Add(10 * time.Second); tr.watch.outage.isDown(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("still down 10s after the brokers answered again:\n%s", logs.String())
		}
	}
}

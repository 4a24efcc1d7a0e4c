package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/semaphore"

	"github.com/molgen/molgen/runtime/internal/ratelog"
	"github.com/molgen/molgen/runtime/internal/transport"
)

// Transport carries calls between nodes over Kafka: one request topic and
// consumer group per service, one reply topic per running instance. It
// implements transport.Transport. Its rooms: the call path (call.go,
// route.go, replies.go), serving (serve.go, handle.go, offsets.go),
// producing (writer.go), topics (topics.go), and recovery and probes
// (watch.go, health.go, instances.go).
type Transport struct {
	cfg Config
	set Settings
	log *slog.Logger

	w      *writer // writes every record; its client also asks the admin questions
	topics *topics // what the transport knows of the topics it uses
	calls  *calls  // calls waiting for a reply, and the reader of the reply topic
	watch  *watch  // recovery of lost topics, outages, heartbeats
	routes routes  // per service called: its topic and request headers
	dedup  *dedup  // the calls served here, so that none runs twice

	serversMu sync.Mutex
	servers   []*server
	closing   bool

	// draining is set when Drain begins: the node is no longer ready.
	draining atomic.Bool
	// done ends, when the node has drained, the writes and topic checks of
	// calls still waiting (a call may have a long deadline).
	done     context.Context
	stopDone context.CancelFunc

	// gate admits operations that use the clients (enter) until the node
	// has drained: a read lock per operation, so that concurrent ones do
	// not contend.
	gate       sync.RWMutex
	gateClosed bool
	ops        sync.WaitGroup

	// work runs served requests on goroutines that are kept a while, so
	// that each request does not grow a new goroutine's stack.
	work    workers
	stats   stats
	limiter ratelog.Limiter // rate-limits repeated warnings (logs.go)
}

var _ transport.Transport = (*Transport)(nil)

// stats counts events worth knowing about.
type stats struct {
	calls       atomic.Int64 // requests sent that await a reply
	served      atomic.Int64 // requests handed to a handler
	lateReplies atomic.Int64 // replies for calls that were over or already answered
	expired     atomic.Int64 // requests not run because their deadline had passed
	badMessages atomic.Int64 // messages that could not be parsed
	orphaned    atomic.Int64 // replies dropped: the caller's reply topic is gone
	tooLarge    atomic.Int64 // replies over the size limit, answered with ErrTooLarge
	forged      atomic.Int64 // requests and replies dropped: not signed by the node's keys
	misdirected atomic.Int64 // requests dropped: their reply topic is not one of the app's
	duplicates  atomic.Int64 // copies of a call already run or running here: not run again
	// createTopics counts CreateTopics requests (for tests).
	createTopics atomic.Int64
}

// New connects to Kafka, creates this instance's reply topic and starts
// reading it. It waits up to Settings.ConnectTimeout for a broker that is
// starting, then fails with an error naming the brokers.
func New(ctx context.Context, cfg Config) (*Transport, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("molgen: no Kafka brokers")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.conns = &connErrors{}
	t := &Transport{cfg: cfg, set: cfg.Settings, log: cfg.Logger, work: newWorkers()}
	t.done, t.stopDone = context.WithCancel(context.Background())
	t.w = &writer{t: t, buf: semaphore.NewWeighted(t.set.ProduceBuffer)}
	t.w.gather = gather{hold: t.set.Gather, produce: t.w.produce}
	t.topics = newTopics(t)
	t.dedup = newDedup(max(t.set.DedupCalls, 1), t.set.DedupBytes)
	cl, err := cfg.newClient(producerOpts(t.set, t.topics.limit)...)
	if err != nil {
		return nil, err
	}
	t.w.cl = cl
	t.w.prod.Store(cl)
	t.topics.adm = kadm.NewClient(cl)
	t.watch = newWatch(t)
	if err := t.waitForKafka(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	if err := t.startReplies(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	t.watch.start()
	t.log.Info("connected to Kafka", "brokers", strings.Join(cfg.Brokers, ","), "reply_topic", t.calls.topic)
	return t, nil
}

// waitForKafka asks the brokers for metadata until one answers, for at
// most Settings.ConnectTimeout, and learns what the transport needs of
// the cluster.
func (t *Transport) waitForKafka(ctx context.Context) error {
	timeout := t.set.ConnectTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	logged := false
	var last error
	for {
		probe, stop := context.WithTimeout(ctx, t.set.MetadataProbe)
		began := time.Now()
		err := t.topics.learnCluster(probe, t.w.cl)
		stop()
		if cause := t.cfg.conns.since(began); err != nil && cause != nil && errors.Is(err, context.DeadlineExceeded) {
			err = cause // the client retried the failing connection until the probe's time was up
		}
		if err == nil {
			t.watch.clusterID = t.topics.clusterID
			return nil
		}
		// Report what the broker said, not that our own wait ran out.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		// A wrong password or an untrusted certificate stays wrong: say
		// so at once rather than at the end of the wait.
		if cause, permanent := explain(err, t.cfg.Security); permanent {
			return &ConnectError{Brokers: strings.Join(t.cfg.Brokers, ","), Security: t.cfg.Security.String(), Cause: cause, Err: err}
		}
		if ctx.Err() != nil {
			cause, _ := explain(last, t.cfg.Security)
			if cause == "" && errors.Is(last, context.DeadlineExceeded) {
				cause = "no answer"
			}
			return &ConnectError{Brokers: strings.Join(t.cfg.Brokers, ","), Security: t.cfg.Security.String(), Waited: timeout.String(), Cause: cause, Err: last}
		}
		if !logged {
			t.log.Info("waiting for Kafka", "brokers", strings.Join(t.cfg.Brokers, ","), "security", t.cfg.Security.String(), "err", err, "timeout", timeout)
			logged = true
		}
		sleep(ctx, t.set.ConnectRetry)
	}
}

// Stats returns the transport's counters.
func (t *Transport) Stats() transport.Stats {
	return transport.Stats{
		Calls:       t.stats.calls.Load(),
		Served:      t.stats.served.Load(),
		LateReplies: t.stats.lateReplies.Load(),
		Expired:     t.stats.expired.Load(),
		BadMessages: t.stats.badMessages.Load(),
		Orphaned:    t.stats.orphaned.Load(),
		TooLarge:    t.stats.tooLarge.Load(),
		Forged:      t.stats.forged.Load(),
		Misdirected: t.stats.misdirected.Load(),
		Duplicates:  t.stats.duplicates.Load(),
	}
}

// enter registers an operation that uses the clients for a caller, so
// that Drain waits for it; it fails once the node has drained.
func (t *Transport) enter() bool {
	t.gate.RLock()
	defer t.gate.RUnlock()
	if t.gateClosed {
		return false
	}
	t.ops.Add(1)
	return true
}

func (t *Transport) exit() { t.ops.Done() }

// Drain stops taking requests, lets the ones in flight finish and answer,
// commits their offsets, then releases every client and connection.
// Services drain in parallel. It is safe to call more than once.
func (t *Transport) Drain() error {
	t.draining.Store(true)
	t.serversMu.Lock()
	servers := t.servers
	t.servers = nil
	already := t.closing
	t.closing = true
	t.serversMu.Unlock()
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.drain()
		}()
	}
	wg.Wait()
	// A broker that lost its data (or dropped this member) refuses to let
	// a member leave a group it no longer knows: the requests were served,
	// so that is no failure of the drain (see forgotten).
	errs = t.withoutForgotten(errs)
	if already {
		return errors.Join(errs...)
	}
	t.calls.close()
	t.gate.Lock()
	t.gateClosed = true
	t.gate.Unlock()
	t.work.close() // the servers have drained: no request runs any more
	t.watch.stop()
	t.ops.Wait()
	// Records written (replies, a heartbeat) go out before the client
	// closes: a bounded flush.
	fctx, cancel := context.WithTimeout(context.Background(), t.set.CloseTimeout)
	if err := t.w.flush(fctx); err != nil {
		t.log.Debug("flushing writes", "err", err)
	}
	cancel()
	t.stopDone()
	t.calls.stopReading()
	if t.cfg.Ephemeral {
		ctx, cancel := context.WithTimeout(context.Background(), t.set.AdminTimeout)
		if _, err := t.topics.adm.DeleteTopics(ctx, t.calls.topic); err != nil {
			t.log.Debug("deleting reply topic", "topic", t.calls.topic, "err", err)
		}
		cancel()
	}
	t.w.close()
	t.log.Info("disconnected from Kafka",
		"late_replies", t.stats.lateReplies.Load(), "expired_requests", t.stats.expired.Load(),
		"bad_messages", t.stats.badMessages.Load())
	return errors.Join(errs...)
}

// noteJoined logs "ready" when the last service served here joined its
// group.
func (t *Transport) noteJoined() {
	t.serversMu.Lock()
	defer t.serversMu.Unlock()
	for _, s := range t.servers {
		if !s.joined.Load() {
			return
		}
	}
	t.log.Info("ready: every service served here has joined its consumer group", "services", len(t.servers))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// sanitize keeps the characters allowed in Kafka topic names.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

var _ = fmt.Sprint
var _ = time.Second
var _ kgo.Opt

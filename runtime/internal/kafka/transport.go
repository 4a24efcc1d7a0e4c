package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"

	"github.com/molgen/molgen/runtime/internal/transport"

	"github.com/molgen/molgen/runtime/internal/ratelog"
)

// Transport carries calls between nodes over Kafka: one request topic and
// consumer group per service, one reply topic per running instance. It
// implements transport.Transport.
type Transport struct {
	cfg Config
	set Settings
	log *slog.Logger

	tr     *kafkago.Transport
	admin  *kafkago.Client
	prod   *producer
	dialer *kafkago.Dialer

	replyTopic string
	replies    *partReader
	replyStop  context.CancelFunc
	replyDone  chan struct{}

	mu      sync.Mutex
	pending map[uint64]*waiter
	closing bool
	// draining is set when Drain begins: the node is no longer ready.
	draining atomic.Bool
	// repliesRead is set once the reply reader has read a record (the
	// instance's first heartbeat): replies reach this instance.
	repliesRead atomic.Bool
	// done ends, when the node has drained, the writes and topic checks of
	// calls still waiting (a call may have a long deadline).
	done     context.Context
	stopDone context.CancelFunc
	nextID   atomic.Uint64
	// session tells this process's correlation ids apart from those of an
	// earlier process with the same reply topic (a fixed -instance).
	session string

	// gate admits writes (enter) until the node has drained: a read lock
	// per write, so that concurrent calls do not contend on mu.
	gate       sync.RWMutex
	gateClosed bool
	// work runs served requests on goroutines that are kept a while, so
	// that each request does not grow a new goroutine's stack.
	work workers

	replyTopicsMu sync.Mutex
	replyTopics   map[string]bool // reply topics this node's metadata cache is known to hold
	writes        sync.WaitGroup  // writes in flight

	topicsMu sync.Mutex
	topics   map[string]bool // topics known to exist with leaders

	routesMu sync.RWMutex
	routes   map[string]*route // per service: its topic and request headers

	serversMu sync.Mutex
	servers   []*server

	stats stats
	// rel holds the state of writes, topic preparations and instance
	// lookups (produce.go, prepare.go, instances.go).
	rel reliability

	// rec watches the reply topic and the topics in use, and recovers
	// them when the broker lost them (recover.go).
	rec recovery
	// limiter rate-limits repeated warnings (logs.go).
	limiter ratelog.Limiter
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
	set := cfg.Settings
	t := &Transport{
		cfg:         cfg,
		set:         set,
		log:         cfg.Logger,
		pending:     map[uint64]*waiter{},
		topics:      map[string]bool{},
		replyTopics: map[string]bool{},
		routes:      map[string]*route{},
		session:     randomHex(8),
		work:        newWorkers(),
	}
	// Our own Transport, never kafkago.DefaultTransport: its goroutines and
	// connections must end when the node closes.
	tr, dialer, err := cfg.clients()
	if err != nil {
		return nil, err
	}
	t.tr, t.dialer = tr, dialer
	t.admin = &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Transport: t.tr, Timeout: set.AdminTimeout}
	t.done, t.stopDone = context.WithCancel(context.Background())

	if err := t.waitForKafka(ctx, set.ConnectTimeout); err != nil {
		t.tr.CloseIdleConnections()
		return nil, err
	}

	// Requests spread over the partitions, and so over the instances of
	// the consumer group; reply topics have one partition. Topics are
	// created explicitly, with the partition count and retention molgen
	// wants, never by a broker default: the producer never asks for
	// auto-creation.
	t.learnBatchLimit(ctx) // a broker refuses a batch over its message.max.bytes
	t.prod = newProducer(t.tr, kafkago.TCP(cfg.Brokers...), t.dialProducer, set, t.batchLimit)

	if err := t.startReplies(ctx); err != nil {
		t.closeClients()
		return nil, err
	}
	t.log.Info("connected to Kafka", "brokers", strings.Join(cfg.Brokers, ","), "reply_topic", t.replyTopic)
	return t, nil
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
	}
}

// waitForKafka asks the brokers for metadata until one answers, for at
// most timeout.
func (t *Transport) waitForKafka(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	logged := false
	var last error
	for {
		probe, stop := context.WithTimeout(ctx, t.set.MetadataProbe)
		md, err := t.admin.Metadata(probe, &kafkago.MetadataRequest{})
		stop()
		if err == nil {
			// The watch compares later answers with it: a new cluster id
			// means the broker lost every topic and group (see checkCache).
			t.rec.clusterID = md.ClusterID
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
		// The Transport caches a failed metadata fetch until its next
		// refresh: start from a clean one.
		t.tr.CloseIdleConnections()
		sleep(ctx, t.set.ConnectRetry)
	}
}

// dialProducer connects the producer to a broker.
func (t *Transport) dialProducer(addr string) (*brokerConn, error) {
	return t.dialBroker(context.Background(), addr)
}

// startReplies creates this instance's reply topic and starts reading it
// from its current end.
func (t *Transport) startReplies(ctx context.Context) error {
	t.replyTopic = replyTopic(t.cfg.App, t.cfg.Node, t.cfg.Instance)
	if err := t.ensureTopic(ctx, t.replyTopic, 1, t.set.ReplyRetention); err != nil {
		return err
	}
	// Replies are read from partition 0 only: a reply topic with more
	// partitions (made by someone else) would lose replies.
	if md, err := t.admin.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{t.replyTopic}}); err == nil && len(md.Topics) == 1 && len(md.Topics[0].Partitions) != 1 {
		return fmt.Errorf("molgen: reply topic %s has %d partitions, not 1: delete it (or start with another -instance)", t.replyTopic, len(md.Topics[0].Partitions))
	}
	// Resolve the end offset now, before any request is sent, and start
	// exactly there: a reader told to start at "the end" would find it on
	// its first fetch, and skip a reply written before that.
	end, err := t.endOffset(ctx, t.replyTopic)
	if err != nil {
		return err
	}
	t.replies = t.newPartReader(t.replyTopic, 0, t.log)
	if err := t.replies.SetOffset(end); err != nil {
		return err
	}
	rctx, stop := context.WithCancel(context.Background())
	t.replyStop = stop
	t.replyDone = make(chan struct{})
	t.rec.poke = make(chan struct{}, 1)
	go t.replyLoop(rctx)
	t.startWatch()
	return nil
}

func (t *Transport) endOffset(ctx context.Context, topic string) (int64, error) {
	for {
		res, err := t.admin.ListOffsets(ctx, &kafkago.ListOffsetsRequest{
			Topics: map[string][]kafkago.OffsetRequest{topic: {kafkago.LastOffsetOf(0)}},
		})
		if err == nil {
			parts := res.Topics[topic]
			// A failed sub-request reports offset -1, which is also
			// kafkago.LastOffset: check the error, never use -1.
			if len(parts) == 1 && parts[0].Error == nil && parts[0].LastOffset >= 0 {
				return parts[0].LastOffset, nil
			}
			if len(parts) == 1 && parts[0].Error != nil {
				err = parts[0].Error
			} else {
				err = fmt.Errorf("unexpected answer %+v", parts)
			}
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("molgen: reading the end of %s: %w", topic, err)
		}
		t.log.Debug("retrying list offsets", "topic", topic, "err", err)
		sleep(ctx, 100*time.Millisecond)
	}
}

// prepareTopic creates topic when missing and waits until every partition
// has a leader and this node's metadata cache knows it: one attempt of
// ensureTopic (prepare.go).
func (t *Transport) prepareTopic(ctx context.Context, topic string, partitions int, retention time.Duration) error {
	t.topicsMu.Lock()
	ready := t.topics[topic]
	t.topicsMu.Unlock()
	if ready {
		return nil
	}
	t.stats.createTopics.Add(1)
	res, err := t.admin.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
		Topic:             topic,
		NumPartitions:     partitions,
		ReplicationFactor: t.cfg.ReplicationFactor,
		ConfigEntries:     []kafkago.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: fmt.Sprint(retention.Milliseconds())}},
	}}})
	if err != nil {
		return fmt.Errorf("molgen: creating topic %s: %w", topic, err)
	}
	if e := res.Errors[topic]; e != nil {
		if !errors.Is(e, kafkago.TopicAlreadyExists) {
			return fmt.Errorf("molgen: creating topic %s: %w", topic, e)
		}
		// Created by another node: a metadata request that allows
		// auto-creation makes the Transport fetch the topic into its cache
		// now rather than at its next refresh. The topic exists, so nothing
		// is created.
		if _, err := t.tr.RoundTrip(ctx, t.admin.Addr, &metadataAPI.Request{TopicNames: []string{topic}, AllowAutoTopicCreation: true}); err != nil {
			return fmt.Errorf("molgen: reading metadata of %s: %w", topic, err)
		}
	}
	// New topics briefly answer LeaderNotAvailable: wait for leaders.
	for {
		md, err := t.admin.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) > 0 {
			ok := true
			for _, p := range md.Topics[0].Partitions {
				ok = ok && p.Error == nil && p.Leader.Host != ""
			}
			if ok {
				if n := len(md.Topics[0].Partitions); n != partitions {
					t.warnPartitions(topic, n, partitions)
				}
				break
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("molgen: waiting for leaders of topic %s: %w", topic, ctx.Err())
		}
		sleep(ctx, 50*time.Millisecond)
	}
	t.topicsMu.Lock()
	t.topics[topic] = true
	t.topicsMu.Unlock()
	return nil
}

// enter registers an operation that uses Kafka clients for a caller, so
// that close waits for it; it fails once the node has drained.
func (t *Transport) enter() bool {
	t.gate.RLock()
	defer t.gate.RUnlock()
	if t.gateClosed {
		return false
	}
	t.writes.Add(1)
	return true
}

func (t *Transport) exit() { t.writes.Done() }

// replyLoop hands each reply to the call waiting for it.
func (t *Transport) replyLoop(ctx context.Context) {
	defer close(t.replyDone)
	backoff := 10 * time.Millisecond
	var failing time.Time // since when reading fails
	for {
		msg, err := t.replies.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// The watch finds out why (Kafka down, the topic lost) and says
			// so once; an error it cannot explain is warned about when it
			// lasts.
			t.pokeWatch()
			if failing.IsZero() {
				failing = time.Now()
			}
			t.log.Debug("reading replies", "topic", t.replyTopic, "err", err)
			if time.Since(failing) > 5*time.Second && !t.rec.outage.isDown() {
				t.warnLimited("read replies", "reading replies", "topic", t.replyTopic, "err", err, "failing_for", time.Since(failing).Round(time.Second))
			}
			sleep(ctx, backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		failing = time.Time{}
		t.sawRecord()
		t.repliesRead.Store(true)
		if header(msg, hHeartbeat) != "" {
			continue // this instance's own heartbeat
		}
		session, counter, _ := strings.Cut(header(msg, hID), ".")
		id, err := strconv.ParseUint(counter, 10, 64)
		if err != nil || session != t.session {
			// A reply to an earlier process with this reply topic, or junk.
			t.stats.lateReplies.Add(1)
			continue
		}
		// A reply that its call's keys did not sign is dropped before it
		// can take the place of the real one. The signature is checked
		// outside the lock, with what the call said of itself; the waiter
		// is pooled, so it must still be the id's when the reply is handed
		// over.
		t.mu.Lock()
		w := t.pending[id]
		var call pendingCall
		if w != nil {
			call = pendingCall{w.service, w.method, w.ring}
		}
		t.mu.Unlock()
		if w != nil && call.ring != nil && !t.replySigned(&call, &msg) {
			continue
		}
		// Hand over under the lock: close() closes these channels.
		delivered := false
		t.mu.Lock()
		if w != nil && t.pending[id] == w {
			select {
			case w.ch <- msg:
				delivered = true
			default: // a duplicate: the call already has its reply
			}
		}
		t.mu.Unlock()
		if !delivered {
			t.stats.lateReplies.Add(1)
		}
	}
}

// Drain stops taking requests, lets the ones in flight finish and answer,
// commits their offsets, then releases every reader, writer and
// connection. Services drain in parallel. It is safe to call more than
// once.
func (t *Transport) Drain() error {
	t.draining.Store(true)
	t.serversMu.Lock()
	servers := t.servers
	t.servers = nil
	t.serversMu.Unlock()
	for _, s := range servers {
		s.stopFetching()
	}
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
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return errors.Join(errs...)
	}
	t.closing = true
	for id, w := range t.pending {
		delete(t.pending, id)
		close(w.ch)
	}
	t.mu.Unlock()
	t.gate.Lock()
	t.gateClosed = true
	t.gate.Unlock()
	t.work.close() // the servers have drained: no request runs any more
	t.stopDone()
	t.stopWatch()
	t.writes.Wait()
	t.replyStop()
	<-t.replyDone
	if err := t.replies.Close(); err != nil {
		errs = append(errs, t.withoutForgotten([]error{err})...)
	}
	if t.cfg.Ephemeral {
		ctx, cancel := context.WithTimeout(context.Background(), t.set.AdminTimeout)
		if _, err := t.admin.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: []string{t.replyTopic}}); err != nil {
			t.log.Debug("deleting reply topic", "topic", t.replyTopic, "err", err)
		}
		cancel()
	}
	t.closeClients()
	t.log.Info("disconnected from Kafka",
		"late_replies", t.stats.lateReplies.Load(), "expired_requests", t.stats.expired.Load(),
		"bad_messages", t.stats.badMessages.Load())
	return errors.Join(errs...)
}

// forgetTopics drops what the transport believes about topics: that they
// exist with leaders (ensureTopic's cache), that a route's request topic
// is ready, that a caller's reply topic is known. The next use of each
// checks (and creates) it again. No names means every topic. The watch
// calls it when the broker lost topics (deleted, or its data gone).
func (t *Transport) forgetTopics(topics ...string) {
	drop := make(map[string]bool, len(topics))
	for _, topic := range topics {
		drop[topic] = true
	}
	all := len(topics) == 0
	t.topicsMu.Lock()
	for topic := range t.topics {
		if all || drop[topic] {
			delete(t.topics, topic)
		}
	}
	t.topicsMu.Unlock()
	t.routesMu.RLock()
	for _, r := range t.routes {
		if all || drop[r.topic] {
			r.ready.Store(false)
		}
	}
	t.routesMu.RUnlock()
	t.replyTopicsMu.Lock()
	for topic := range t.replyTopics {
		if all || drop[topic] {
			delete(t.replyTopics, topic)
		}
	}
	t.replyTopicsMu.Unlock()
}

func (t *Transport) closeClients() {
	if t.prod != nil {
		t.prod.close()
	}
	t.tr.CloseIdleConnections()
}

func header(m kafkago.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return bytesString(h.Value) // a record's header values are its own
		}
	}
	return ""
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// kafkaLogger adapts kafka-go's logging to slog.
func kafkaLogger(log *slog.Logger, level slog.Level) kafkago.Logger {
	return kafkago.LoggerFunc(func(format string, args ...any) {
		if log.Enabled(context.Background(), level) {
			log.Log(context.Background(), level, "kafka-go: "+fmt.Sprintf(format, args...))
		}
	})
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

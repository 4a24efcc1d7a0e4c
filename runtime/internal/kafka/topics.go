package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// Topics: molgen creates the topics it needs itself, with its settings
// (partitions, retention, the cluster's replication factor unless the
// placement sets one), and never lets a broker create one: no request of
// the transport allows auto-creation, so a topic that is gone stays gone
// until molgen creates it again. It checks what it finds: a topic with
// another partition count than molgen's, a replication factor of 1 on a
// cluster of several brokers, or one below min.insync.replicas, is
// reported once.

// topics is what the transport knows of the topics it uses.
type topics struct {
	t   *Transport
	adm *kadm.Client

	mu      sync.Mutex
	ready   map[string]bool  // created (or found) with leaders
	limits  map[string]int32 // per topic: the most bytes of a record batch
	replyOK map[string]bool  // reply topics of callers known to exist
	warned  map[string]bool  // topics whose shape was reported

	// What the cluster said at start: its id, its brokers, and its limits
	// and defaults.
	clusterID  string
	brokers    int
	batchLimit int32 // the brokers' message.max.bytes, capped by MaxMessageBytes
	minISR     int
	defaultRF  int

	flightsMu sync.Mutex
	flights   map[string]*flight // attempts in flight, by key (shared)
}

func newTopics(t *Transport) *topics {
	return &topics{t: t, ready: map[string]bool{}, limits: map[string]int32{},
		replyOK: map[string]bool{}, warned: map[string]bool{}, batchLimit: int32(min(t.set.MaxMessageBytes, 1<<20))}
}

// metadata asks a broker (any of a client's, or the one given), not the
// client's cache, for the metadata of topics (none: the brokers only). It
// never allows auto-creation.
func metadata(ctx context.Context, cl kmsg.Requestor, topics ...string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	req.Topics = []kmsg.MetadataRequestTopic{}
	for _, topic := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	return req.RequestWith(ctx, cl)
}

// learnCluster reads the cluster's id, its brokers and their limits and
// defaults (a batch over message.max.bytes is refused; topics created
// with the default replication factor take default.replication.factor).
func (tp *topics) learnCluster(ctx context.Context, cl *kgo.Client) error {
	md, err := metadata(ctx, cl)
	if err != nil {
		return err
	}
	tp.clusterID = str(md.ClusterID)
	tp.brokers = len(md.Brokers)
	if len(md.Brokers) == 0 {
		return nil
	}
	rcs, err := tp.adm.DescribeBrokerConfigs(ctx, md.Brokers[0].NodeID)
	if err != nil {
		tp.t.log.Debug("describing a broker's configs", "err", err)
		return nil
	}
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			n, err := strconv.Atoi(c.MaybeValue())
			if err != nil {
				continue
			}
			switch c.Key {
			case "message.max.bytes":
				tp.batchLimit = int32(min(int64(n), tp.t.set.MaxMessageBytes))
			case "min.insync.replicas":
				tp.minISR = n
			case "default.replication.factor":
				tp.defaultRF = n
			}
		}
	}
	return nil
}

// limit is the most bytes a record batch to topic may take: the topic's
// max.message.bytes when it was learned, else the brokers'. The producer
// asks it once per partition, before its first batch.
func (tp *topics) limit(topic string) int32 {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if l, ok := tp.limits[topic]; ok {
		return l
	}
	return tp.batchLimit
}

// recordLimit is the most bytes one record to topic may take.
func (tp *topics) recordLimit(topic string) int64 { return int64(tp.limit(topic)) - batchOverhead }

// learnLimit reads topic's max.message.bytes; it reports whether the
// topic exists.
func (tp *topics) learnLimit(ctx context.Context, topic string) (exists bool, err error) {
	rcs, err := tp.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return false, err
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return false, err
	}
	if rc.Err != nil {
		if errors.Is(rc.Err, kerr.UnknownTopicOrPartition) {
			return false, nil
		}
		return false, rc.Err
	}
	for _, c := range rc.Configs {
		if c.Key == "max.message.bytes" {
			if n, err := strconv.Atoi(c.MaybeValue()); err == nil {
				tp.mu.Lock()
				tp.limits[topic] = int32(min(int64(n), tp.t.set.MaxMessageBytes))
				tp.mu.Unlock()
			}
		}
	}
	return true, nil
}

// relearn learns the limit of topic again after a broker refused a batch
// to it as too large, and makes the writer forget the topic, so that its
// next batches are bounded by the new limit (the client asks a topic's
// limit once). Concurrent callers share one attempt.
func (tp *topics) relearn(topic string) {
	ctx, cancel := context.WithTimeout(tp.t.done, tp.t.set.AdminTimeout)
	defer cancel()
	_ = tp.shared(ctx, "relearn "+topic, tp.t.set.AdminTimeout, func(actx context.Context) error {
		if _, err := tp.learnLimit(actx, topic); err != nil {
			tp.t.log.Debug("reading the size limit of a topic again", "topic", topic, "err", err)
		}
		tp.t.w.renew(nil, "a topic's size limit changed", topic)
		return nil
	})
}

// flight is one attempt of shared, awaited by every caller of its key.
type flight struct {
	done chan struct{} // closed when the attempt has ended
	err  error
}

// shared runs fn once for all the concurrent callers of key: the first
// caller starts an attempt, on a goroutine of its own, and the others wait
// for it. The attempt runs with a context that ends after timeout or when
// the node has drained, not with any caller's: a caller whose context ends
// stops waiting, and the attempt goes on for the others. A finished
// attempt is forgotten, so that a failure is never cached: the next caller
// makes a new attempt.
func (tp *topics) shared(ctx context.Context, key string, timeout time.Duration, fn func(context.Context) error) error {
	t := tp.t
	tp.flightsMu.Lock()
	f := tp.flights[key]
	if f == nil {
		if !t.enter() {
			tp.flightsMu.Unlock()
			return transport.ErrClosed
		}
		f = &flight{done: make(chan struct{})}
		if tp.flights == nil {
			tp.flights = map[string]*flight{}
		}
		tp.flights[key] = f
		go func() {
			defer t.exit()
			actx, cancel := context.WithTimeout(t.done, timeout)
			f.err = fn(actx)
			cancel()
			tp.flightsMu.Lock()
			delete(tp.flights, key)
			tp.flightsMu.Unlock()
			close(f.done)
		}()
	}
	tp.flightsMu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ensure creates topic when missing and waits until every partition has a
// leader. Concurrent callers for one topic share one attempt: one
// CreateTopics and one wait for leaders, however many calls start at once.
// An attempt runs for at most Settings.AdminTimeout; a caller with time
// left after an attempt that ran out of time makes another.
func (tp *topics) ensure(ctx context.Context, topic string, partitions int, retention time.Duration) error {
	for {
		if tp.isReady(topic) {
			return nil
		}
		err := tp.shared(ctx, "topic "+topic, tp.t.set.AdminTimeout, func(actx context.Context) error {
			return tp.prepare(actx, topic, partitions, retention)
		})
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			if errors.Is(err, ctx.Err()) {
				return fmt.Errorf("molgen: preparing topic %s: %w", topic, err)
			}
			return err
		case tp.t.done.Err() != nil:
			return transport.ErrClosed
		case errors.Is(err, context.DeadlineExceeded):
			continue // the attempt ran out of time, this caller has some left
		}
		return err
	}
}

func (tp *topics) isReady(topic string) bool {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.ready[topic]
}

// prepare creates topic (unless it exists) and waits for its leaders: one
// attempt of ensure.
func (tp *topics) prepare(ctx context.Context, topic string, partitions int, retention time.Duration) error {
	rf := int16(-1) // the cluster's default.replication.factor
	if n := tp.t.cfg.ReplicationFactor; n > 0 {
		rf = int16(n)
	}
	tp.t.stats.createTopics.Add(1)
	configs := map[string]*string{"retention.ms": kmsg.StringPtr(strconv.FormatInt(retention.Milliseconds(), 10))}
	_, err := tp.adm.CreateTopic(ctx, int32(partitions), rf, configs, topic)
	switch {
	case err == nil, errors.Is(err, kerr.TopicAlreadyExists):
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		// Created beforehand by an operator, perhaps: go on if it exists.
		tp.t.log.Debug("not authorized to create a topic; using it if it exists", "topic", topic, "err", err)
	default:
		return fmt.Errorf("molgen: creating topic %s: %w", topic, err)
	}
	// New topics briefly answer LEADER_NOT_AVAILABLE: wait for leaders.
	for {
		md, err := metadata(ctx, tp.t.w.cl, topic)
		if err == nil && len(md.Topics) == 1 {
			mt := md.Topics[0]
			if terr := kerr.ErrorForCode(mt.ErrorCode); terr != nil && !kerr.IsRetriable(terr) {
				if errors.Is(terr, kerr.TopicAuthorizationFailed) {
					return &notAuthorizedError{what: "use topic " + topic, err: terr}
				}
				return fmt.Errorf("molgen: topic %s: %w", topic, terr)
			}
			// A leader named in the metadata may not host its partition
			// yet: ask each for its end offset too (a consumer that asks
			// too early waits for its next metadata refresh).
			if mt.ErrorCode == 0 && len(mt.Partitions) > 0 && allLed(mt.Partitions) && tp.allServed(ctx, topic, len(mt.Partitions)) {
				tp.checkShape(topic, &mt, partitions)
				break
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("molgen: waiting for leaders of topic %s: %w", topic, ctx.Err())
		}
		sleep(ctx, 50*time.Millisecond)
	}
	tp.mu.Lock()
	tp.ready[topic] = true
	tp.mu.Unlock()
	return nil
}

// allServed reports whether the leaders of topic's n partitions answer
// for them.
func (tp *topics) allServed(ctx context.Context, topic string, n int) bool {
	offs, err := tp.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return false
	}
	got := 0
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			got++
		}
	})
	return got == n
}

func allLed(ps []kmsg.MetadataResponseTopicPartition) bool {
	for _, p := range ps {
		if p.ErrorCode != 0 || p.Leader < 0 {
			return false
		}
	}
	return true
}

// checkShape reports, once per topic, a partition count other than
// molgen's and a replication that cannot survive a broker's loss.
func (tp *topics) checkShape(topic string, mt *kmsg.MetadataResponseTopic, partitions int) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.warned[topic] {
		return
	}
	tp.warned[topic] = true
	log := tp.t.log
	if n := len(mt.Partitions); n != partitions {
		log.Warn("topic exists with another partition count than molgen creates it with (made by hand, or by a broker that auto-creates topics?): requests spread over its partitions as they are",
			"topic", topic, "partitions", n, "molgen_partitions", partitions)
	}
	rf := len(mt.Partitions[0].Replicas)
	switch {
	case rf == 1 && tp.brokers > 1:
		log.Warn("topic has one replica on a cluster of several brokers: losing that broker loses its records and stops its partitions; set kafka.replication_factor (or the cluster's default.replication.factor) to 3 and recreate the topic",
			"topic", topic, "replication_factor", rf, "brokers", tp.brokers)
	case tp.minISR > 1 && rf < tp.minISR:
		log.Warn("topic has fewer replicas than the cluster's min.insync.replicas: every write to it fails; raise its replication factor",
			"topic", topic, "replication_factor", rf, "min_insync_replicas", tp.minISR)
	}
}

// exists asks a broker whether topic exists (never creating it).
func (tp *topics) exists(ctx context.Context, topic string) (bool, error) {
	md, err := metadata(ctx, tp.t.w.cl, topic)
	if err != nil {
		return false, err
	}
	if len(md.Topics) != 1 {
		return false, fmt.Errorf("metadata of %s: %d topics", topic, len(md.Topics))
	}
	switch err := kerr.ErrorForCode(md.Topics[0].ErrorCode); {
	case err == nil, errors.Is(err, kerr.LeaderNotAvailable):
		return true, nil
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return false, nil
	default:
		return false, err
	}
}

// replyTopicKnown reports whether the reply topic of a caller is known to
// exist.
func (tp *topics) replyTopicKnown(topic string) bool {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.replyOK[topic]
}

// knowReplyTopic learns whether a caller's reply topic exists (and its
// size limit); a topic that does not is not created: its caller has ended.
// When Kafka does not answer, it reports true: the write then retries.
func (tp *topics) knowReplyTopic(ctx context.Context, topic string) bool {
	exists, err := tp.learnLimit(ctx, topic)
	if err != nil {
		tp.t.log.Debug("describing a reply topic", "topic", topic, "err", err)
		return true
	}
	if !exists {
		return false
	}
	tp.mu.Lock()
	if len(tp.replyOK) > 10000 {
		clear(tp.replyOK) // callers come and go; relearning one costs a lookup
	}
	tp.replyOK[topic] = true
	tp.mu.Unlock()
	return true
}

// forget drops what the transport believes about topics (none: all): that
// they exist with leaders, their limits, that a caller's reply topic is
// there. The next use of each checks (and creates) it again.
func (tp *topics) forget(topics ...string) {
	drop := make(map[string]bool, len(topics))
	for _, topic := range topics {
		drop[topic] = true
	}
	all := len(topics) == 0
	tp.mu.Lock()
	for _, m := range []map[string]bool{tp.ready, tp.replyOK, tp.warned} {
		for topic := range m {
			if all || drop[topic] {
				delete(m, topic)
			}
		}
	}
	for topic := range tp.limits {
		if all || drop[topic] {
			delete(tp.limits, topic)
		}
	}
	tp.mu.Unlock()
}

// known returns the topics ensure made sure of.
func (tp *topics) known() []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	out := make([]string, 0, len(tp.ready))
	for topic := range tp.ready {
		out = append(out, topic)
	}
	return out
}

// endOffsets returns the start and end offsets of partition 0 of topic.
func (tp *topics) offsets(ctx context.Context, topic string) (start, end int64, err error) {
	ends, err := tp.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, 0, err
	}
	starts, err := tp.adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, 0, err
	}
	e, ok1 := ends.Lookup(topic, 0)
	s, ok2 := starts.Lookup(topic, 0)
	switch {
	case !ok1 || !ok2:
		return 0, 0, fmt.Errorf("listing the offsets of %s: no answer for partition 0", topic)
	case e.Err != nil:
		return 0, 0, e.Err
	case s.Err != nil:
		return 0, 0, s.Err
	}
	return s.Offset, e.Offset, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// str is *p, or "" for nil.
func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

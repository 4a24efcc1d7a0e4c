package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// Recovery from a broker that forgets: an operator deletes a reply or
// request topic, or the broker restarts without its data. Kafka tells a
// client none of this. A partition reader whose topic was recreated
// waits, silently, for the new topic to grow past its old offset; on a
// broker that auto-creates topics, the topic even comes back at once, with
// the broker's defaults. Calls then fail until the node restarts.
//
// The transport's watch notices instead, from three signals: calls wait
// while the reply reader returns nothing (watchStuckAfter), the reply
// reader returns errors, and the metadata cache (refreshed every
// MetadataTTL anyway) no longer lists a topic the transport uses, or names
// another cluster. It then probes the broker (DescribeConfigs, which never
// creates a topic, and ListOffsets). A reply topic that is gone, or whose
// end offset is below the reader's position, was lost: the watch
// recreates it with molgen's settings (or restores them on a topic the
// broker auto-created), moves the reader to its start, forgets every
// topic it believed in (request topics are created again before their next
// use) and recreates the request topics it used at once. It logs the loss
// once at WARN and the recovery once at INFO, when the reader returns its
// first record again (a heartbeat written right after the reset).
//
// The same probes tell when Kafka does not answer at all: that is logged
// once at WARN with its cause, and once at INFO when Kafka answers again.
//
// Every instance also writes a heartbeat record to its reply topic when it
// starts and every heartbeatEvery: a reply topic with no record newer
// than the reply retention belongs to no running instance (molgen topics
// removes those).

// Timings of the watch. Probes cost one or two admin requests; they run
// only while something looks wrong, and back off while the broker says all
// is well.
const (
	watchTick       = 250 * time.Millisecond // how often the watch looks at its signals
	watchStuckAfter = time.Second            // calls waiting this long with no reply make it probe
	watchCacheEvery = time.Second            // how often it reads the metadata cache
	probeMinGap     = time.Second            // the shortest pause between two probes
	probeMaxGap     = 8 * time.Second        // the longest, while probes find nothing wrong
)

// hHeartbeat marks an instance's heartbeat record in its own reply topic;
// its value is the RFC 3339 time it was written.
const hHeartbeat = "molgen-heartbeat"

// heartbeatEvery returns how often an instance writes a heartbeat to its
// reply topic: often enough that a running instance always has one newer
// than the reply retention (molgen topics assumes so).
func heartbeatEvery(set Settings) time.Duration { return max(set.ReplyRetention/6, time.Second) }

// recovery is the state of the transport's watch.
type recovery struct {
	lastRecord atomic.Int64  // unix nanoseconds: when the reply reader last returned a record
	poke       chan struct{} // the reply reader's errors wake the watch
	stop       context.CancelFunc
	done       chan struct{}
	outage     outage
	beating    atomic.Bool    // a heartbeat is being written
	beats      sync.WaitGroup // heartbeats being written

	// resetAt is when the reply topic was last reset (unix nanoseconds; 0
	// when no reset awaits its first record): the first record read after
	// it is logged as the recovery.
	resetAt atomic.Int64

	// Owned by the watch goroutine.
	streakStart time.Time // since then calls have waited with no record read
	lastSent    uint64    // the call counter at the previous tick
	nextProbe   time.Time
	probeGap    time.Duration
	nextCache   time.Time
	nextBeat    time.Time
	clusterID   string
	lost        string // why the reply topic was lost, while its recovery is under way

	warnedMu sync.Mutex
	warned   map[string]bool // topics whose partition count was reported

	lostMu sync.Mutex
	lostC  map[string]chan struct{} // per topic: closed when it was lost and is back
}

// topicLost returns a channel that is closed the next time the watch
// finds that topic was lost (the broker no longer had it: deleted, or
// the broker's data gone) and has created it again; ask again for the
// time after.
//
// Servers need it: a consumer-group generation that started while its
// topic was missing has no partitions and, in kafka-go, never gets any
// (nothing rebalances the group when the topic comes back). A server ends
// its generation when the channel of its request topic closes; kafka-go
// then rejoins and the new topic's partitions are assigned.
func (t *Transport) topicLost(topic string) <-chan struct{} {
	t.rec.lostMu.Lock()
	defer t.rec.lostMu.Unlock()
	if t.rec.lostC == nil {
		t.rec.lostC = map[string]chan struct{}{}
	}
	c := t.rec.lostC[topic]
	if c == nil {
		c = make(chan struct{})
		t.rec.lostC[topic] = c
	}
	return c
}

// lostTopics tells topicLost's waiters that topics were lost and are back.
func (t *Transport) lostTopics(topics []string) {
	t.rec.lostMu.Lock()
	defer t.rec.lostMu.Unlock()
	for _, topic := range topics {
		if c := t.rec.lostC[topic]; c != nil {
			close(c)
			delete(t.rec.lostC, topic)
		}
	}
}

// startWatch starts the watch of the reply topic and the topics in use.
func (t *Transport) startWatch() {
	ctx, stop := context.WithCancel(context.Background())
	t.rec.stop = stop
	t.rec.done = make(chan struct{})
	t.rec.lastRecord.Store(time.Now().UnixNano())
	go t.watch(ctx)
}

// stopWatch stops the watch and waits for it.
func (t *Transport) stopWatch() {
	if t.rec.stop != nil {
		t.rec.stop()
		<-t.rec.done
		t.rec.beats.Wait()
	}
}

// pokeWatch wakes the watch: something failed.
func (t *Transport) pokeWatch() {
	select {
	case t.rec.poke <- struct{}{}:
	default:
	}
}

// sawRecord records that the reply reader returned a record; the first
// one after a reset of the reply topic completes its recovery.
func (t *Transport) sawRecord() {
	now := time.Now()
	t.rec.lastRecord.Store(now.UnixNano())
	if at := t.rec.resetAt.Load(); at != 0 && t.rec.resetAt.CompareAndSwap(at, 0) {
		t.log.Info("reply topic recovered: replies arrive again", "topic", t.replyTopic, "after", now.Sub(time.Unix(0, at)).Round(time.Millisecond))
	}
}

func (t *Transport) watch(ctx context.Context) {
	defer close(t.rec.done)
	rec := &t.rec
	rec.probeGap = probeMinGap
	tick := time.NewTicker(watchTick)
	defer tick.Stop()
	for {
		poked := false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-rec.poke:
			poked = true
		}
		now := time.Now()
		if !now.Before(rec.nextBeat) {
			rec.nextBeat = now.Add(heartbeatEvery(t.set))
			t.heartbeat(ctx)
		}
		suspect := poked || t.callsStuck(now) || rec.outage.isDown() || rec.lost != ""
		if !now.Before(rec.nextCache) {
			rec.nextCache = now.Add(watchCacheEvery)
			if t.checkCache(ctx) {
				suspect = true
				rec.nextProbe = now // do not wait for the back-off
			}
		}
		if !suspect || now.Before(rec.nextProbe) {
			continue
		}
		// Back off while all is well, and while a recovery keeps failing
		// (say, topics may not be created); probe at once again after
		// anything else (an outage: notice its end soon).
		if t.probe(ctx) || rec.lost != "" {
			rec.probeGap = min(2*rec.probeGap, probeMaxGap)
		} else {
			rec.probeGap = probeMinGap
		}
		rec.nextProbe = time.Now().Add(rec.probeGap)
	}
}

// callsStuck reports whether calls have waited for watchStuckAfter while
// the reply reader returned nothing: calls are pending, or ended (timed
// out) since the previous tick, and no record was read since the first
// tick that saw them.
func (t *Transport) callsStuck(now time.Time) bool {
	rec := &t.rec
	t.mu.Lock()
	pending := len(t.pending)
	t.mu.Unlock()
	sent := t.nextID.Load()
	active := pending > 0 || sent != rec.lastSent
	rec.lastSent = sent
	last := time.Unix(0, rec.lastRecord.Load())
	if !rec.streakStart.IsZero() && last.After(rec.streakStart) {
		// A record arrived: the reply path works.
		rec.streakStart = time.Time{}
		rec.probeGap = probeMinGap
	}
	if active && rec.streakStart.IsZero() {
		rec.streakStart = now
	}
	return !rec.streakStart.IsZero() && now.Sub(rec.streakStart) >= watchStuckAfter
}

// checkCache reads the metadata cache (no request to the broker): topics
// the transport believes in that the broker no longer lists are
// forgotten, and a new cluster id means the broker lost everything. It
// reports whether the reply topic needs a probe.
func (t *Transport) checkCache(ctx context.Context) bool {
	topics := t.knownTopics()
	topics = append(topics, t.replyTopic)
	mctx, cancel := context.WithTimeout(ctx, t.set.MetadataProbe)
	md, err := t.admin.Metadata(mctx, &kafkago.MetadataRequest{Topics: topics})
	cancel()
	if err != nil {
		return false
	}
	suspect := false
	if md.ClusterID != "" && t.rec.clusterID != "" && md.ClusterID != t.rec.clusterID {
		t.log.Warn("Kafka's cluster id changed: its topics and consumer groups start anew", "was", t.rec.clusterID, "now", md.ClusterID)
		t.forgetTopics()
		// A new cluster has none of the old one's topics: whoever creates
		// them again, servers must not take the new topics' offsets for
		// the old ones'.
		t.lostTopics(t.requestTopics())
		suspect = true
	}
	if md.ClusterID != "" {
		t.rec.clusterID = md.ClusterID
	}
	var gone []string
	for _, mt := range md.Topics {
		if !errors.Is(mt.Error, kafkago.UnknownTopicOrPartition) {
			continue
		}
		if mt.Name == t.replyTopic {
			suspect = true
			continue
		}
		gone = append(gone, mt.Name)
	}
	if len(gone) > 0 {
		t.log.Info("topics gone from Kafka: creating them again", "topics", strings.Join(gone, ","))
		t.forgetTopics(gone...)
		t.restoreTopics(ctx, gone)
		// Whoever created them again, they were lost.
		t.lostTopics(gone)
	}
	return suspect
}

// knownTopics returns the topics ensureTopic made sure of, but the reply
// topic.
func (t *Transport) knownTopics() []string {
	t.topicsMu.Lock()
	defer t.topicsMu.Unlock()
	out := make([]string, 0, len(t.topics))
	for topic := range t.topics {
		if topic != t.replyTopic {
			out = append(out, topic)
		}
	}
	return out
}

// requestTopics returns the request topics of the routes made so far.
func (t *Transport) requestTopics() []string {
	t.routesMu.RLock()
	defer t.routesMu.RUnlock()
	out := make([]string, 0, len(t.routes))
	for _, r := range t.routes {
		out = append(out, r.topic)
	}
	return out
}

// restoreTopics creates the request topics among topics that the broker
// no longer has again, with molgen's settings, before a broker that
// auto-creates topics makes them with its defaults. It returns those it
// created. A failure is left to the next use of the topic.
func (t *Transport) restoreTopics(ctx context.Context, topics []string) (restored []string) {
	seen := map[string]bool{}
	for _, topic := range topics {
		if seen[topic] || topic == t.replyTopic || !strings.HasPrefix(topic, requestTopic(t.cfg.App, "")) {
			continue
		}
		seen[topic] = true
		if !t.enter() {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, t.set.AdminTimeout)
		exists, _, err := t.describeRetention(cctx, topic)
		if err == nil && !exists {
			if err = t.ensureTopic(cctx, topic, t.cfg.Partitions, t.set.RequestRetention); err == nil {
				restored = append(restored, topic)
			}
		}
		cancel()
		t.exit()
		if err != nil {
			t.log.Debug("creating a topic again", "topic", topic, "err", err)
		}
	}
	return restored
}

// probe asks the broker about the reply topic, and recovers it when it
// was lost. It reports whether all was well.
func (t *Transport) probe(ctx context.Context) bool {
	pctx, cancel := context.WithTimeout(ctx, t.set.MetadataProbe)
	defer cancel()
	exists, retention, err := t.describeRetention(pctx, t.replyTopic)
	var refused *brokerRefused
	if errors.As(err, &refused) {
		// A broker answered, with an error (say, not authorized to
		// describe the topic): Kafka is there, the probe cannot tell more.
		t.rec.outage.answered(t.log, strings.Join(t.cfg.Brokers, ","))
		t.warnLimited("probe reply topic", "cannot check the reply topic", "topic", t.replyTopic, "err", err)
		return true
	}
	if err != nil {
		if ctx.Err() == nil {
			t.rec.outage.failed(t.log, strings.Join(t.cfg.Brokers, ","), err)
			// The Transport keeps a failed metadata fetch until its next
			// refresh: let it start from a clean one when Kafka is back.
			t.tr.CloseIdleConnections()
		}
		return false
	}
	t.rec.outage.answered(t.log, strings.Join(t.cfg.Brokers, ","))
	if !exists {
		t.recoverReplies(ctx, "the topic was deleted", true)
		return false
	}
	if t.rec.lost != "" {
		// A recovery that did not complete: go on with it.
		t.recoverReplies(ctx, t.rec.lost, false)
		return false
	}
	_, last, err := t.offsets(pctx, t.replyTopic)
	if err != nil {
		t.log.Debug("probing the reply topic", "topic", t.replyTopic, "err", err)
		return true
	}
	if pos := t.replies.Offset(); pos > last {
		t.recoverReplies(ctx, fmt.Sprintf("its end offset went back from at least %d to %d (the topic was recreated)", pos, last), false)
		return false
	}
	if retention != "" && retention != fmt.Sprint(t.set.ReplyRetention.Milliseconds()) {
		t.log.Debug("the reply topic's retention is not molgen's", "topic", t.replyTopic, "retention_ms", retention)
	}
	return true
}

// recoverReplies makes the reply topic usable again after it was lost:
// it is created again (create) or its settings restored, the reader moves
// to its start, and the topics the transport believed in are forgotten
// and created again. It logs the loss once; the recovery is logged when
// the reader returns a record again.
func (t *Transport) recoverReplies(ctx context.Context, why string, create bool) {
	if t.rec.lost == "" {
		t.rec.lost = why
		t.mu.Lock()
		waiting := len(t.pending)
		t.mu.Unlock()
		t.log.Warn("reply topic lost: creating it again; calls waiting for a reply time out", "topic", t.replyTopic, "why", why, "waiting_calls", waiting)
	}
	if !t.enter() {
		return
	}
	defer t.exit()
	known := append(t.knownTopics(), t.requestTopics()...)
	t.forgetTopics()
	cctx, cancel := context.WithTimeout(ctx, t.set.AdminTimeout)
	defer cancel()
	if err := t.ensureTopic(cctx, t.replyTopic, 1, t.set.ReplyRetention); err != nil {
		t.log.Debug("creating the reply topic again", "topic", t.replyTopic, "err", err)
		return
	}
	t.restoreReplySettings(cctx)
	// Everything in the new topic was written since it was created: read
	// it from its start, so that replies to calls still waiting arrive.
	first, _, err := t.offsets(cctx, t.replyTopic)
	if err != nil {
		t.log.Debug("reading the offsets of the new reply topic", "topic", t.replyTopic, "err", err)
		return
	}
	if err := t.replies.SetOffset(first); err != nil {
		t.log.Debug("moving the reply reader", "topic", t.replyTopic, "err", err)
		return
	}
	t.rec.lost = ""
	t.rec.resetAt.Store(time.Now().UnixNano())
	if restored := t.restoreTopics(ctx, known); len(restored) > 0 {
		// Request topics were gone too: the broker lost its data, and all
		// of them were lost, whoever was first to create some again.
		t.lostTopics(known)
	}
	// A record to read proves the reply path works, even with no call.
	t.heartbeat(ctx)
}

// restoreReplySettings gives a reply topic that the broker auto-created
// (a reader's metadata lookup does, on brokers that allow it) molgen's
// retention, and reports a partition count other than 1.
func (t *Transport) restoreReplySettings(ctx context.Context) {
	_, retention, err := t.describeRetention(ctx, t.replyTopic)
	want := fmt.Sprint(t.set.ReplyRetention.Milliseconds())
	if err == nil && retention != want {
		res, err := t.admin.IncrementalAlterConfigs(ctx, &kafkago.IncrementalAlterConfigsRequest{Resources: []kafkago.IncrementalAlterConfigsRequestResource{{
			ResourceType: kafkago.ResourceTypeTopic,
			ResourceName: t.replyTopic,
			Configs:      []kafkago.IncrementalAlterConfigsRequestConfig{{Name: "retention.ms", Value: want, ConfigOperation: kafkago.ConfigOperationSet}},
		}}})
		if err == nil && len(res.Resources) == 1 {
			err = res.Resources[0].Error
		}
		if err != nil {
			t.log.Warn("setting the retention of the reply topic", "topic", t.replyTopic, "retention_ms", want, "err", err)
		}
	}
}

// describeRetention asks a broker whether topic exists, and its retention.ms.
// Unlike a metadata request, DescribeConfigs never creates the topic. err
// is a *brokerRefused when a broker answered with an error, else no broker
// answered.
func (t *Transport) describeRetention(ctx context.Context, topic string) (exists bool, retention string, err error) {
	res, err := t.admin.DescribeConfigs(ctx, &kafkago.DescribeConfigsRequest{Resources: []kafkago.DescribeConfigRequestResource{{
		ResourceType: kafkago.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"},
	}}})
	if err != nil {
		return false, "", err
	}
	if len(res.Resources) != 1 {
		return false, "", fmt.Errorf("describing %s: %d answers", topic, len(res.Resources))
	}
	if e := res.Resources[0].Error; e != nil {
		if errors.Is(e, kafkago.UnknownTopicOrPartition) {
			return false, "", nil
		}
		return false, "", &brokerRefused{e}
	}
	for _, c := range res.Resources[0].ConfigEntries {
		if c.ConfigName == "retention.ms" {
			retention = c.ConfigValue
		}
	}
	return true, retention, nil
}

// brokerRefused is an error a broker answered with. (kafka-go makes up
// some kafka.Error values itself, such as BrokerNotAvailable for a broker
// it has no connection to: their type does not tell that Kafka answered.)
type brokerRefused struct{ err error }

func (e *brokerRefused) Error() string { return e.err.Error() }
func (e *brokerRefused) Unwrap() error { return e.err }

// offsets returns the first and end offsets of partition 0 of topic, in
// one attempt.
func (t *Transport) offsets(ctx context.Context, topic string) (first, last int64, err error) {
	res, err := t.admin.ListOffsets(ctx, &kafkago.ListOffsetsRequest{
		Topics: map[string][]kafkago.OffsetRequest{topic: {kafkago.FirstOffsetOf(0), kafkago.LastOffsetOf(0)}},
	})
	if err != nil {
		return 0, 0, err
	}
	parts := res.Topics[topic]
	if len(parts) != 1 || parts[0].Error != nil || parts[0].FirstOffset < 0 || parts[0].LastOffset < 0 {
		if len(parts) == 1 && parts[0].Error != nil {
			return 0, 0, parts[0].Error
		}
		return 0, 0, fmt.Errorf("listing offsets of %s: unexpected answer %+v", topic, parts)
	}
	return parts[0].FirstOffset, parts[0].LastOffset, nil
}

// heartbeat writes a heartbeat record to the reply topic, on a goroutine
// of its own (a write to a lost topic retries until its timeout, and the
// watch must go on meanwhile), unless one is being written. It tells
// molgen topics that a running instance reads the topic, and the reader's
// returning it proves that replies arrive.
func (t *Transport) heartbeat(ctx context.Context) {
	if !t.rec.beating.CompareAndSwap(false, true) {
		return
	}
	t.rec.beats.Add(1)
	go func() {
		defer t.rec.beats.Done()
		defer t.rec.beating.Store(false)
		wctx, cancel := context.WithTimeout(ctx, t.set.AdminTimeout)
		defer cancel()
		err := t.write(wctx, kafkago.Message{
			Topic: t.replyTopic,
			Headers: []kafkago.Header{
				{Key: hVersion, Value: wireVersion},
				{Key: hHeartbeat, Value: []byte(formatDeadline(time.Now()))},
			},
		})
		if err != nil {
			t.log.Debug("writing a heartbeat to the reply topic", "topic", t.replyTopic, "err", err)
		}
	}()
}

// warnPartitions reports, once per topic, a topic that exists with
// another partition count than molgen would create it with (someone else
// created it, or the broker auto-created it).
func (t *Transport) warnPartitions(topic string, have, want int) {
	t.rec.warnedMu.Lock()
	defer t.rec.warnedMu.Unlock()
	if t.rec.warned[topic] {
		return
	}
	if t.rec.warned == nil {
		t.rec.warned = map[string]bool{}
	}
	t.rec.warned[topic] = true
	t.log.Warn("topic exists with another partition count than molgen creates it with (auto-created by the broker, or made by hand?)",
		"topic", topic, "partitions", have, "molgen_partitions", want)
}

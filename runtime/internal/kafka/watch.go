package kafka

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Recovery and probes: the watch asks a broker, every watchEvery, for the
// metadata of the topics the transport uses (never creating one), and
// every broker it knows when that one does not answer. From the answers
// it tells:
//
//   - whether Kafka answers at all: an outage (no broker answers) is
//     logged once at WARN when it starts, and once at INFO when it ends;
//     one broker of several down is not an outage (the others answer), and
//     is logged at INFO, like a partition leader or a group coordinator
//     that moved;
//   - whether a topic was lost: deleted, or created again (its topic id
//     changed), or the whole cluster started anew (its cluster id changed:
//     a broker that restarted without its data). The watch creates a lost
//     topic again with molgen's settings, and makes the clients forget the
//     old one (they hold its id): the reply reader reads the new reply
//     topic from its start (replies to calls still waiting may be there),
//     and servers read the new request topic, forgetting the requests of
//     the old one. The loss of the reply topic is logged once at WARN, its
//     recovery at INFO when the reader returns a record again (a heartbeat
//     written right after the reset).
//
// Every instance also writes a heartbeat record to its reply topic when it
// starts and every heartbeatEvery: a reply topic with no record newer
// than the reply retention belongs to no running instance (molgen topics
// removes those), and reading it back proves that replies arrive.

// Timings of the watch.
const (
	watchEvery       = time.Second     // how often it reads the metadata of the topics in use
	coordinatorEvery = 5 * time.Second // how often it looks up the coordinators of the groups served
)

// hHeartbeat marks an instance's heartbeat record in its own reply topic;
// its value is the RFC 3339 time it was written.
const hHeartbeat = "molgen-heartbeat"

// heartbeatEvery returns how often an instance writes a heartbeat to its
// reply topic: often enough that a running instance always has one newer
// than the reply retention (molgen topics assumes so).
func heartbeatEvery(set Settings) time.Duration { return max(set.ReplyRetention/6, time.Second) }

// watch is the state of the transport's watch.
type watch struct {
	t         *Transport
	wake      chan struct{} // readers' errors wake the watch
	cancel    context.CancelFunc
	done      chan struct{}
	outage    outage
	beating   atomic.Bool    // a heartbeat is being written
	beats     sync.WaitGroup // heartbeats being written
	resetAt   atomic.Int64   // when the reply topic was last reset (0: no reset awaits its first record)
	lastRead  atomic.Int64   // unix nanoseconds: when the reply reader last returned a record
	lastRound atomic.Int64   // unix nanoseconds: when the watch last finished a round (Healthy)
	everReady atomic.Bool    // Ready has said so once: a change is worth a log line

	// Owned by the watch goroutine.
	clusterID    string
	ids          map[string][16]byte // topic ids, as last seen
	leaders      map[string][]int32  // per topic, each partition's leader as last seen
	brokers      map[int32]string    // the brokers, as last seen
	coordinators map[string]int32    // per group served, its coordinator as last seen
	replyLost    string              // why the reply topic was lost, while its recovery is under way
	unready      string              // why the node is not ready, as last logged ("": ready)
	nextBeat     time.Time
	nextCoord    time.Time
}

func newWatch(t *Transport) *watch {
	return &watch{t: t, wake: make(chan struct{}, 1), ids: map[string][16]byte{}, leaders: map[string][]int32{},
		coordinators: map[string]int32{}}
}

// start starts the watch.
func (w *watch) start() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	w.lastRead.Store(time.Now().UnixNano())
	go w.run(ctx)
}

// stop stops the watch and waits for it.
func (w *watch) stop() {
	if w.cancel != nil {
		w.cancel()
		<-w.done
		w.beats.Wait()
	}
}

// poke wakes the watch: something failed.
func (w *watch) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// sawRecord records that the reply reader returned a record; the first
// one after a reset of the reply topic completes its recovery.
func (w *watch) sawRecord() {
	now := time.Now()
	w.lastRead.Store(now.UnixNano())
	if at := w.resetAt.Load(); at != 0 && w.resetAt.CompareAndSwap(at, 0) {
		w.t.log.Info("reply topic recovered: replies arrive again", "topic", w.t.calls.topic, "after", now.Sub(time.Unix(0, at)).Round(time.Millisecond))
	}
}

func (w *watch) run(ctx context.Context) {
	defer close(w.done)
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	for {
		now := time.Now()
		if !now.Before(w.nextBeat) {
			w.nextBeat = now.Add(heartbeatEvery(w.t.set))
			w.heartbeat(ctx)
		}
		w.check(ctx)
		if !now.Before(w.nextCoord) || w.newGroups() {
			w.nextCoord = now.Add(coordinatorEvery)
			w.checkCoordinators(ctx)
		}
		w.noteReadiness()
		w.lastRound.Store(time.Now().UnixNano())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-w.wake:
		}
	}
}

// check reads the metadata of the topics in use and acts on what changed.
func (w *watch) check(ctx context.Context) {
	t := w.t
	topics := w.topicsInUse()
	mctx, cancel := context.WithTimeout(ctx, t.set.MetadataProbe)
	began := time.Now()
	md, err := metadata(mctx, t.w.cl, topics...)
	cancel()
	if err != nil && ctx.Err() == nil {
		// The broker asked may be the one that is down or hung: Kafka
		// answers as long as one broker does.
		md, err = w.askEveryBroker(ctx, topics)
	}
	brokers := strings.Join(t.cfg.Brokers, ",")
	if err != nil {
		if ctx.Err() == nil {
			if cause := t.cfg.conns.since(began); cause != nil {
				err = fmt.Errorf("%w (%v)", err, cause)
			}
			w.outage.failed(t.log, brokers, err)
		}
		return
	}
	w.outage.answered(t.log, brokers)
	w.noteBrokers(md.Brokers)
	if id := str(md.ClusterID); id != "" {
		if w.clusterID != "" && id != w.clusterID {
			t.log.Warn("Kafka's cluster id changed (a broker started without its data?): its topics and consumer groups start anew; molgen creates its topics again", "was", w.clusterID, "now", id)
			clear(w.ids)
			w.clusterID = id
			w.lost(ctx, topics, "the cluster started anew")
			return
		}
		w.clusterID = id
	}
	var lost []string
	why := map[string]string{}
	for _, mt := range md.Topics {
		name := str(mt.Topic)
		switch err := kerr.ErrorForCode(mt.ErrorCode); {
		case err == kerr.UnknownTopicOrPartition:
			// Lost if it was there before (a topic not created yet is
			// not lost).
			if _, seen := w.ids[name]; seen || name == t.calls.topic {
				lost = append(lost, name)
				why[name] = "the topic was deleted"
				delete(w.ids, name)
			}
			continue
		case err != nil:
			continue
		}
		if old, ok := w.ids[name]; ok && old != mt.TopicID && mt.TopicID != ([16]byte{}) {
			lost = append(lost, name)
			why[name] = "the topic was deleted and created again"
		}
		if mt.TopicID != ([16]byte{}) {
			w.ids[name] = mt.TopicID
		}
		w.noteLeaders(name, mt.Partitions)
	}
	if w.replyLost != "" && !slices.Contains(lost, t.calls.topic) {
		lost = append(lost, t.calls.topic) // a recovery that did not complete
		why[t.calls.topic] = w.replyLost
	}
	if len(lost) > 0 {
		w.lost(ctx, lost, why[lost[0]])
	}
}

// askEveryBroker asks every broker the writer's client knows (those it
// discovered, and the seeds) for the metadata of topics, all at once, each
// for at most MetadataProbe, and returns the first answer, or the last
// error when none answers.
func (w *watch) askEveryBroker(ctx context.Context, topics []string) (*kmsg.MetadataResponse, error) {
	cl := w.t.w.cl
	brokers := append(cl.DiscoveredBrokers(), cl.SeedBrokers()...)
	ctx, cancel := context.WithTimeout(ctx, w.t.set.MetadataProbe)
	defer cancel()
	type answer struct {
		md  *kmsg.MetadataResponse
		err error
	}
	answers := make(chan answer, len(brokers)) // no sender waits once this returns
	for _, b := range brokers {
		go func() {
			md, err := metadata(ctx, b, topics...)
			answers <- answer{md, err}
		}()
	}
	err := fmt.Errorf("no broker to ask")
	for range brokers {
		a := <-answers
		if a.err == nil {
			return a.md, nil
		}
		err = a.err
	}
	return nil, err
}

// topicsInUse returns the reply topic and the request topics the
// transport writes to or serves.
func (w *watch) topicsInUse() []string {
	t := w.t
	topics := append([]string{t.calls.topic}, t.routes.topics()...)
	slices.Sort(topics[1:])
	return slices.Compact(topics)
}

// lost recovers topics that were lost: each is created again with
// molgen's settings, and the clients forget the old one.
func (w *watch) lost(ctx context.Context, topics []string, why string) {
	t := w.t
	if !t.enter() {
		return
	}
	defer t.exit()
	t.topics.forget(topics...)
	t.routes.forget(topics...)
	t.w.renew(nil, why, topics...)
	var requests []string
	for _, topic := range topics {
		if topic == t.calls.topic {
			w.recoverReplies(ctx, why)
			continue
		}
		requests = append(requests, topic)
	}
	if len(requests) == 0 {
		return
	}
	t.log.Info("request topics lost: creating them again", "topics", strings.Join(requests, ","), "why", why)
	for _, topic := range requests {
		cctx, cancel := context.WithTimeout(ctx, t.set.AdminTimeout)
		err := t.topics.ensure(cctx, topic, t.cfg.Partitions, t.set.RequestRetention)
		cancel()
		if err != nil {
			t.log.Debug("creating a request topic again", "topic", topic, "err", err)
		}
	}
	t.serversMu.Lock()
	servers := slices.Clone(t.servers)
	t.serversMu.Unlock()
	for _, s := range servers {
		if slices.Contains(requests, s.topic) {
			s.reread()
		}
	}
}

// recoverReplies makes the reply topic usable again after it was lost:
// it is created again and read from its start. It logs the loss once; the
// recovery is logged when the reader returns a record again.
func (w *watch) recoverReplies(ctx context.Context, why string) {
	t := w.t
	c := t.calls
	if w.replyLost == "" {
		w.replyLost = why
		t.log.Warn("reply topic lost: creating it again; calls waiting for a reply may time out", "topic", c.topic, "why", why, "waiting_calls", c.waiting())
	}
	cctx, cancel := context.WithTimeout(ctx, t.set.AdminTimeout)
	defer cancel()
	if err := t.topics.ensure(cctx, c.topic, 1, t.set.ReplyRetention); err != nil {
		t.log.Debug("creating the reply topic again", "topic", c.topic, "err", err)
		return
	}
	// Everything in the new topic was written since it was created: read
	// it from its start, so that replies to calls still waiting arrive.
	start, _, err := t.topics.offsets(cctx, c.topic)
	if err != nil {
		t.log.Debug("reading the offsets of the new reply topic", "topic", c.topic, "err", err)
		return
	}
	c.readFrom(start)
	w.replyLost = ""
	w.resetAt.Store(time.Now().UnixNano())
	// A record to read proves the reply path works, even with no call.
	w.heartbeat(ctx)
}

// noteBrokers logs brokers that left the cluster's metadata, and came back.
func (w *watch) noteBrokers(bs []kmsg.MetadataResponseBroker) {
	now := map[int32]string{}
	for _, b := range bs {
		now[b.NodeID] = fmt.Sprintf("%s:%d", b.Host, b.Port)
	}
	if w.brokers != nil {
		for id, addr := range w.brokers {
			if _, ok := now[id]; !ok {
				w.t.log.Info("a Kafka broker is gone from the cluster (stopped or restarting): the others serve its partitions once they lead them", "broker", id, "addr", addr, "brokers_left", len(now))
			}
		}
		for id, addr := range now {
			if _, ok := w.brokers[id]; !ok {
				w.t.log.Info("a Kafka broker joined the cluster", "broker", id, "addr", addr, "brokers", len(now))
			}
		}
	}
	w.brokers = now
}

// noteLeaders logs, once per change, a partition of topic whose leader
// moved or that has none.
func (w *watch) noteLeaders(topic string, ps []kmsg.MetadataResponseTopicPartition) {
	leaders := make([]int32, len(ps))
	for _, p := range ps {
		if int(p.Partition) < len(leaders) {
			leaders[p.Partition] = p.Leader
		}
	}
	old := w.leaders[topic]
	w.leaders[topic] = leaders
	if old == nil {
		return
	}
	for i, l := range leaders {
		switch {
		case i >= len(old) || old[i] == l:
		case l < 0:
			w.t.log.Info("a partition has no leader (its replicas' brokers are down): its records wait until one leads it", "topic", topic, "partition", i, "was", old[i])
		default:
			w.t.log.Info("a partition's leader moved", "topic", topic, "partition", i, "from", old[i], "to", l)
		}
	}
}

// newGroups reports whether a group is served here whose coordinator the
// watch has not looked up yet.
func (w *watch) newGroups() bool {
	w.t.serversMu.Lock()
	defer w.t.serversMu.Unlock()
	for _, s := range w.t.servers {
		if _, ok := w.coordinators[s.group]; !ok {
			return true
		}
	}
	return false
}

// checkCoordinators logs, once per change, a group served here whose
// coordinator moved.
func (w *watch) checkCoordinators(ctx context.Context) {
	t := w.t
	t.serversMu.Lock()
	var groups []string
	for _, s := range t.servers {
		groups = append(groups, s.group)
	}
	t.serversMu.Unlock()
	if len(groups) == 0 {
		return
	}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorType = 0 // groups
	req.CoordinatorKeys = groups
	cctx, cancel := context.WithTimeout(ctx, t.set.MetadataProbe)
	resp, err := req.RequestWith(cctx, t.w.cl)
	cancel()
	if err != nil {
		return
	}
	for _, c := range resp.Coordinators {
		if c.ErrorCode != 0 {
			continue
		}
		if old, ok := w.coordinators[c.Key]; ok && old != c.NodeID {
			t.log.Info("a consumer group's coordinator moved: its members rejoin through the new one", "group", c.Key, "from", old, "to", c.NodeID)
		}
		w.coordinators[c.Key] = c.NodeID
	}
}

// heartbeat writes a heartbeat record to the reply topic, on a goroutine
// of its own (a write to a lost topic waits, and the watch must go on
// meanwhile), unless one is being written.
func (w *watch) heartbeat(ctx context.Context) {
	if !w.beating.CompareAndSwap(false, true) {
		return
	}
	t := w.t
	w.beats.Add(1)
	go func() {
		defer w.beats.Done()
		defer w.beating.Store(false)
		err := t.w.writeNow(ctx, time.Now().Add(t.set.AdminTimeout), kgo.Record{
			Topic: t.calls.topic,
			Headers: []kgo.RecordHeader{
				{Key: hVersion, Value: wireVersion},
				{Key: hHeartbeat, Value: []byte(formatDeadline(time.Now()))},
			},
		})
		if err != nil {
			t.log.Debug("writing a heartbeat to the reply topic", "topic", t.calls.topic, "err", err)
		}
	}()
}

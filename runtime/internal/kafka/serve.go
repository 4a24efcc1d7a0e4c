package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// Serving: a server serves one hosted service. It is a member of the
// service's consumer group, with a client of its own, and runs each
// request it reads on a goroutine of its own, bounded by the service's
// slots (handle.go). Requests of a partition finish out of order; an
// offset is committed only when every request before it is done
// (offsets.go), so a crash loses none (at-least-once).
//
// Partitions change hands cooperatively: the group uses the
// cooperative-sticky assignor (or KIP-848's protocol, Settings.
// GroupProtocol), so a rebalance moves only the partitions that change
// owner, and the others keep being served. A member that gives a
// partition up stops taking its requests, lets those it runs finish (for
// at most Settings.RebalanceGrace), commits them, and only then lets the
// group hand the partition over: so clean rebalances run no request
// twice. A member that finds a partition back while requests it took
// before still run (after a lost session) runs none of them again.

// server serves one hosted service.
type server struct {
	t     *Transport
	svc   transport.Service
	topic string
	group string
	cl    *kgo.Client

	ctx    context.Context // ends when the server drains: no request is taken after
	stop   context.CancelFunc
	done   chan struct{} // the poll loop has returned
	joined atomic.Bool   // a first assignment came (Ready)

	mu    sync.Mutex
	parts map[int32]*partition // assigned now
	// live holds the requests running and finished the requests done but
	// perhaps not committed, across assignments, so that a request fetched
	// again (a partition that came back to this member) is not run twice.
	// epoch counts the lives of the topic (see forgetAll).
	epoch    int
	live     map[partOff]*job
	finished map[partOff]bool
	requests sync.WaitGroup // every request started

	lagMu sync.Mutex
	lag   map[int]int64 // per partition assigned: requests beyond the last fetched
}

type partOff struct {
	epoch     int // which life of the topic: forgetAll starts a new one
	partition int32
	offset    int64
}

// pollMax bounds the requests one poll returns.
const pollMax = 256

// Serve joins the consumer group of svc's request topic and serves its
// requests with svc.Handle until Drain.
func (t *Transport) Serve(ctx context.Context, svc transport.Service) error {
	r := t.routes.of(t, svc.Name)
	// Create the topic first: a member of a topic that does not exist yet
	// gets no partitions until the group learns of it.
	if err := t.prepareRoute(ctx, r); err != nil {
		return err
	}
	s := &server{
		t: t, svc: svc, topic: r.topic, group: groupID(t.cfg.App, svc.Name),
		done:     make(chan struct{}),
		parts:    map[int32]*partition{},
		live:     map[partOff]*job{},
		finished: map[partOff]bool{},
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	set := t.set
	opts := []kgo.Opt{
		kgo.ConsumerGroup(s.group),
		kgo.ConsumeTopics(s.topic),
		kgo.SessionTimeout(set.SessionTimeout),
		kgo.HeartbeatInterval(set.HeartbeatInterval),
		// The group waits this long for a member to let its requests
		// finish before it rejoins.
		kgo.RebalanceTimeout(set.RebalanceGrace + set.SessionTimeout),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		// A new group starts at the oldest request: those written before
		// the first server joined are served (expired ones are skipped).
		// An offset past the end (the broker lost its data) starts at the
		// oldest too.
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(set.CommitInterval),
		kgo.AutoCommitCallback(s.committed),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
	}
	if set.GroupProtocol == GroupConsumer {
		opts = append(opts, kgo.ServerSideBalancer())
	}
	cl, err := t.cfg.newClient(opts...)
	if err != nil {
		return fmt.Errorf("molgen: joining consumer group %s: %w", s.group, err)
	}
	s.cl = cl
	t.serversMu.Lock()
	if t.closing {
		t.serversMu.Unlock()
		cl.Close()
		return transport.ErrClosed
	}
	t.servers = append(t.servers, s)
	t.serversMu.Unlock()
	go s.run()
	go s.markLoop()
	return nil
}

// run polls requests and starts them until the server drains.
func (s *server) run() {
	defer close(s.done)
	var failing time.Time // since when fetching fails
	for {
		fs := s.cl.PollRecords(s.ctx, pollMax)
		if fs.IsClientClosed() || s.ctx.Err() != nil {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			if s.skip(err) {
				return
			}
			if failing.IsZero() {
				failing = time.Now()
			}
			s.t.watch.poke()
			s.t.log.Debug("fetching requests", "service", s.svc.Name, "partition", p, "err", err)
			if time.Since(failing) > 5*time.Second && !s.t.watch.outage.isDown() {
				s.t.warnLimited("fetch "+s.svc.Name, "fetching requests fails: they wait in Kafka until it works again", "service", s.svc.Name, "partition", p, "err", err, "failing_for", time.Since(failing).Round(time.Second))
			}
		})
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if n := len(fp.Records); n > 0 {
				failing = time.Time{}
				s.noteLag(fp.Partition, fp.Records[n-1].Offset, fp.HighWatermark)
			}
			for _, rec := range fp.Records {
				s.take(rec)
			}
		})
	}
}

// skip moves past a batch that the client refused to decompress (a
// hostile record), and reports whether err was that.
func (s *server) skip(err error) bool {
	var big *kgo.ErrDecompressTooLarge
	if !errors.As(err, &big) {
		return false
	}
	s.t.stats.badMessages.Add(1)
	s.t.warnLimited("decompress", "skipping a compressed batch of requests that would decompress to more than the limit (a hostile record?)",
		"service", s.svc.Name, "partition", big.Partition, "offset", big.Offset, "next", big.NextOffset)
	s.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{big.Topic: {big.Partition: {Epoch: big.Epoch, Offset: big.NextOffset}}})
	s.mu.Lock()
	if p := s.parts[big.Partition]; p != nil {
		p.skipped(big.NextOffset)
	}
	s.mu.Unlock()
	return true
}

// take starts a fetched request, once a slot of the service is free,
// unless its partition was given up meanwhile (the next owner takes it),
// this member already runs it (it was fetched again after a rebalance),
// or has finished it.
func (s *server) take(rec *kgo.Record) {
	s.mu.Lock()
	p := s.parts[rec.Partition]
	s.mu.Unlock()
	if p == nil {
		return
	}
	// A slot, taken once a request is in hand: an idle partition holds
	// none.
	select {
	case s.svc.Slots <- struct{}{}:
	case <-s.ctx.Done():
		return // not started: fetched again by whoever reads next
	case <-p.revoked:
		return
	}
	s.mu.Lock()
	if s.parts[rec.Partition] != p {
		s.mu.Unlock()
		<-s.svc.Slots
		return
	}
	p.fetched(rec.Offset)
	p.requests.Add(1)
	key := partOff{s.epoch, rec.Partition, rec.Offset}
	running, isLive := s.live[key]
	finished := s.finished[key]
	var j *job
	if !isLive && !finished {
		// One allocation holds what serving the request needs.
		j = &job{s: s, p: p, rec: rec, key: key}
		j.running.Add(1)
		s.live[key] = j
		s.requests.Add(1)
	}
	s.mu.Unlock()
	switch {
	case finished:
		<-s.svc.Slots
		s.finish(p, rec.Offset)
	case isLive:
		// Running since an earlier assignment: count it in this one, but
		// run it once.
		<-s.svc.Slots
		offset := rec.Offset
		go func() {
			running.running.Wait()
			s.finish(p, offset)
		}()
	default:
		s.t.work.Go(j)
	}
}

// finish records that the request at offset of p is done, and marks what
// p may commit.
func (s *server) finish(p *partition, offset int64) {
	p.done(offset)
	p.requests.Done()
}

// assigned takes the partitions the group gave this member (the client
// calls it at every session, with none when nothing changed).
func (s *server) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	s.mu.Lock()
	for _, id := range m[s.topic] {
		if s.parts[id] == nil {
			s.parts[id] = newPartition(id)
		}
	}
	ids := s.partitionIDs()
	s.mu.Unlock()
	if len(m[s.topic]) > 0 || !s.joined.Load() {
		s.t.log.Info("serving requests", "service", s.svc.Name, "partitions", fmt.Sprint(ids))
	}
	s.keepLagOf(ids)
	if !s.joined.Swap(true) {
		s.t.noteJoined()
	}
}

// partitionIDs returns the partitions assigned, sorted (under s.mu).
func (s *server) partitionIDs() []int32 {
	ids := make([]int32, 0, len(s.parts))
	for id := range s.parts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// revoked gives partitions up: it stops taking their requests, lets those
// running finish (RebalanceGrace, or DrainTimeout while draining) and
// commits them; the group hands them over when it returns.
func (s *server) revoked(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	parts := s.giveUp(m[s.topic])
	if len(parts) == 0 {
		return
	}
	grace, why := s.t.set.RebalanceGrace, "rebalance"
	if s.ctx.Err() != nil {
		grace, why = s.t.set.DrainTimeout, "drain"
	}
	until := time.Now().Add(grace)
	for _, p := range parts {
		if !waitFor(&p.requests, time.Until(until)) {
			s.t.log.Warn("requests still running after the "+why+" grace: another instance may run them again",
				"service", s.svc.Name, "partition", p.id, "grace", grace, "running", p.running())
		}
	}
	s.commit(ctx, parts)
}

// lost drops partitions the member lost (its session ended): nothing can
// be committed for them any more. Requests running still answer.
func (s *server) lost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	if parts := s.giveUp(m[s.topic]); len(parts) > 0 {
		s.t.log.Info("lost partitions (the member's session ended): another member serves them; requests running still answer", "service", s.svc.Name, "partitions", len(parts))
	}
}

// giveUp removes partitions from the member: no request of them is taken
// after it.
func (s *server) giveUp(ids []int32) []*partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*partition
	for _, id := range ids {
		if p := s.parts[id]; p != nil {
			close(p.revoked)
			delete(s.parts, id)
			out = append(out, p)
		}
	}
	ids2 := s.partitionIDs()
	go s.keepLagOf(ids2)
	return out
}

// mark marks what each of parts may commit: the offset below which every
// request it took is done.
func (s *server) mark(parts []*partition) bool {
	var offsets map[int32]kgo.EpochOffset
	for _, p := range parts {
		if next, ok := p.committable(); ok {
			if offsets == nil {
				offsets = map[int32]kgo.EpochOffset{}
			}
			offsets[p.id] = kgo.EpochOffset{Epoch: -1, Offset: next}
			p.committedTo(next)
		}
	}
	if offsets == nil {
		return false
	}
	s.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{s.topic: offsets})
	return true
}

// commit marks and commits what parts may commit, now (with what was
// marked before).
func (s *server) commit(ctx context.Context, parts []*partition) {
	s.mark(parts)
	ctx, cancel := context.WithTimeout(ctx, s.t.set.CloseTimeout)
	defer cancel()
	if err := s.cl.CommitMarkedOffsets(ctx); err != nil {
		s.t.log.Debug("committing offsets", "service", s.svc.Name, "err", err)
	}
}

// markLoop marks, every CommitInterval, what the assigned partitions may
// commit; the client commits the marks at the same pace.
func (s *server) markLoop() {
	tick := time.NewTicker(s.t.set.CommitInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
			s.mu.Lock()
			parts := make([]*partition, 0, len(s.parts))
			for _, p := range s.parts {
				parts = append(parts, p)
			}
			s.mu.Unlock()
			s.mark(parts)
		}
	}
}

// committed forgets the finished requests below the offsets a commit
// stored: they are never fetched again.
func (s *server) committed(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err != nil {
		s.t.log.Debug("committing offsets", "service", s.svc.Name, "err", err)
		return
	}
	ok := map[int32]bool{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rt.Topic == s.topic && rp.ErrorCode == 0 {
				ok[rp.Partition] = true
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range req.Topics {
		if rt.Topic != s.topic {
			continue
		}
		for _, rp := range rt.Partitions {
			if !ok[rp.Partition] {
				continue
			}
			for k := range s.finished {
				if k.partition == rp.Partition && k.offset < rp.Offset {
					delete(s.finished, k)
				}
			}
		}
	}
}

// forgetAll forgets every request run or finished: the topic was created
// again (the broker lost its data), and its offsets name other requests.
// Requests still running finish and answer.
func (s *server) forgetAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
	clear(s.finished)
	clear(s.live)
}

// reread makes the member read its topic anew: the watch found it lost
// and created it again, and the client holds the old topic's id.
func (s *server) reread() {
	s.forgetAll()
	s.cl.PurgeTopicsFromClient(s.topic)
	s.cl.AddConsumeTopics(s.topic)
}

// drain stops taking requests, lets every request finish (within
// DrainTimeout) and commits them, then leaves the group.
func (s *server) drain() error {
	s.stop()
	<-s.done
	if !waitFor(&s.requests, s.t.set.DrainTimeout) {
		s.t.log.Warn("requests still running after the drain timeout: another instance may run them again", "service", s.svc.Name, "timeout", s.t.set.DrainTimeout)
	}
	s.mu.Lock()
	parts := make([]*partition, 0, len(s.parts))
	for _, p := range s.parts {
		parts = append(parts, p)
	}
	s.mu.Unlock()
	s.commit(context.Background(), parts)
	// Close leaves the group (the revoke it runs finds nothing running).
	closed := make(chan struct{})
	go func() {
		s.cl.Close()
		close(closed)
	}()
	var err error
	select {
	case <-closed:
	case <-time.After(s.t.set.CloseTimeout):
		err = fmt.Errorf("molgen: leaving consumer group %s took over %v", s.group, s.t.set.CloseTimeout)
	}
	// Requests that a grace left running still answer their callers.
	waitFor(&s.requests, s.t.set.CloseTimeout)
	return err
}

// noteLag records a partition's lag after a fetch: the records beyond the
// last one fetched, by the high watermark the fetch returned.
func (s *server) noteLag(partition int32, offset, highWaterMark int64) {
	s.lagMu.Lock()
	if s.lag == nil {
		s.lag = map[int]int64{}
	}
	s.lag[int(partition)] = max(highWaterMark-offset-1, 0)
	s.lagMu.Unlock()
}

// keepLagOf forgets the lag of partitions no longer assigned here.
func (s *server) keepLagOf(partitions []int32) {
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	for p := range s.lag {
		if !slices.Contains(partitions, int32(p)) {
			delete(s.lag, p)
		}
	}
}

// waitFor waits for wg at most d, and reports whether it is done.
func waitFor(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

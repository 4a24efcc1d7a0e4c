package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// server serves one hosted service: it is a member of the service's
// consumer group and reads each partition of the request topic assigned to
// it, running each request in its own goroutine, bounded by the service's
// slots.
//
// kafka-go's group Reader rebalances eagerly: every member drops its
// partitions at once and fetches them again from their committed offsets,
// so requests running or finished but not yet committed run again. This
// server uses kafka-go's ConsumerGroup instead and ends each generation
// cooperatively: when a rebalance begins (an instance joins or leaves), a
// member stops fetching, lets the requests it runs finish (for at most
// Settings.RebalanceGrace, heartbeating meanwhile), commits them and only
// then rejoins. So clean rebalances run no request twice; only a crash (or
// a request running longer than the grace) does.
type server struct {
	t     *Transport
	svc   transport.Service
	topic string
	group string
	cg    *kafkago.ConsumerGroup

	ctx    context.Context // ends when the server drains
	stop   context.CancelFunc
	done   chan struct{} // run has returned
	joined bool          // a first generation was assigned (under t.serversMu)

	// live holds the requests running, across generations, so that a
	// request fetched again (after a rebalance that gave its partition back
	// to this member) is not run twice; finished holds those done but
	// perhaps not committed.
	mu       sync.Mutex
	lost     <-chan struct{} // closes when the watch finds s.topic lost; held across generations
	epoch    int             // see partOff
	live     map[partOff]*job
	finished map[partOff]bool
	requests sync.WaitGroup // every request started, all generations

	lagMu sync.Mutex
	lag   map[int]int64 // per partition assigned: requests beyond the last fetched
}

type partOff struct {
	epoch     int // which life of the topic: forgetAll starts a new one
	partition int
	offset    int64
}

// Serve joins the consumer group of svc's request topic and serves its
// requests with svc.Handle until Drain.
func (t *Transport) Serve(ctx context.Context, svc transport.Service) error {
	r := t.routeOf(svc.Name)
	// Create the topic first: a group member of a topic that does not
	// exist yet gets no partitions.
	if err := t.ensureTopic(ctx, r.topic, t.cfg.Partitions, t.set.RequestRetention); err != nil {
		return err
	}
	r.ready.Store(true)
	set := t.set
	group := groupID(t.cfg.App, svc.Name)
	cg, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID:                group,
		Brokers:           t.cfg.Brokers,
		Dialer:            t.dialer,
		Topics:            []string{r.topic},
		HeartbeatInterval: set.SessionTimeout / 6,
		SessionTimeout:    set.SessionTimeout,
		// The broker waits this long for every member to rejoin: members
		// finish their requests (RebalanceGrace) before they do.
		RebalanceTimeout: set.RebalanceGrace + set.RebalanceExtra,
		JoinGroupBackoff: set.JoinGroupBackoff,
		// A member that joined while its topic was missing (a broker that
		// lost its data, another node recreating it) gets no partitions;
		// the watcher ends such a generation when the topic's partition
		// count changes, and also when an operator adds partitions.
		WatchPartitionChanges:  true,
		PartitionWatchInterval: set.PartitionWatch,
		// A new group starts at the oldest request: those written before
		// the first server joined are served (expired ones are skipped).
		StartOffset: kafkago.FirstOffset,
		Timeout:     set.AdminTimeout,
		Logger:      kafkaLogger(t.log, -8),
		ErrorLogger: kafkaLogger(t.log, -4),
	})
	if err != nil {
		return fmt.Errorf("molgen: joining consumer group %s: %w", group, err)
	}
	s := &server{
		t: t, svc: svc, topic: r.topic, group: group, cg: cg,
		done:     make(chan struct{}),
		live:     map[partOff]*job{},
		finished: map[partOff]bool{},
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	t.serversMu.Lock()
	if t.closing {
		t.serversMu.Unlock()
		cg.Close()
		return transport.ErrClosed
	}
	t.servers = append(t.servers, s)
	t.serversMu.Unlock()
	go s.run()
	return nil
}

// run takes the group's generations one after another until the server
// drains.
func (s *server) run() {
	defer close(s.done)
	backoff := 100 * time.Millisecond
	for {
		gen, err := s.cg.Next(s.ctx)
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.t.log.Debug("joining the consumer group", "group", s.group, "err", err)
			sleep(s.ctx, backoff)
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		began := time.Now()
		s.serveGeneration(gen)
		// A generation that ends at once (kafka-go ends one whose topic it
		// cannot read, e.g. while a broker has lost it) must not spin.
		if len(gen.Assignments[s.topic]) == 0 {
			wait := s.t.set.JoinGroupBackoff - time.Since(began)
			if wait > 0 {
				sleep(s.ctx, wait)
			}
		}
	}
}

// generation is one generation of the group as this member lives it.
type generation struct {
	s         *server
	gen       *kafkago.Generation
	parts     []*partition
	reader    *groupReader // reads parts
	consumers sync.WaitGroup
	commitMu  sync.Mutex  // one commit at a time: commits never go backwards
	lost      atomic.Bool // the topic was lost (the broker lost its data): commit nothing more
}

// serveGeneration starts a consumer per assigned partition, a commit loop
// and a keep-alive that heartbeats while the generation winds down.
func (s *server) serveGeneration(gen *kafkago.Generation) {
	g := &generation{s: s, gen: gen}
	// A member that joined while its topic was missing (a broker that lost
	// its data) has no partitions, and kafka-go never rebalances it: end
	// the generation when the topic is back. The server holds the signal
	// across generations: a loss found while no generation runs (the
	// member was rejoining) still makes it forget the old topic's requests.
	s.mu.Lock()
	if s.lost == nil {
		s.lost = s.t.topicLost(s.topic)
	}
	lost := s.lost
	s.mu.Unlock()
	select {
	case <-lost:
		s.forgetAll()
		lost = s.lostSignal()
	default:
	}
	// The topic may also have started anew without this member hearing of
	// it (another node created it again first): check the partitions it
	// gets against what it knows of them.
	s.checkIncarnation(gen)
	gen.Start(func(ctx context.Context) {
		select {
		case <-ctx.Done():
		case <-lost:
			// The topic this generation read is gone: its positions and
			// the requests it finished mean nothing in the new one.
			g.lost.Store(true)
			s.forgetAll()
		}
	})
	var ids []int
	for _, pa := range gen.Assignments[s.topic] {
		g.parts = append(g.parts, &partition{id: pa.ID, start: pa.Offset, committed: -1, inflight: map[int64]bool{}})
		ids = append(ids, pa.ID)
	}
	sort.Ints(ids)
	s.keepOnly(ids)
	s.keepLagOf(ids)
	if len(ids) == 0 {
		gen.Start(g.watchUnassigned)
	}
	s.t.log.Info("serving requests", "service", s.svc.Name, "generation", gen.ID, "partitions", fmt.Sprint(ids))
	s.t.noteJoined(s)
	if len(g.parts) > 0 {
		starts := map[int]int64{}
		for _, p := range g.parts {
			starts[p.id] = p.start
		}
		g.reader = s.t.newGroupReader(s.topic, starts, s.t.log.With("service", s.svc.Name))
	}
	for _, p := range g.parts {
		g.consumers.Add(1)
		gen.Start(func(ctx context.Context) {
			defer g.consumers.Done()
			g.consume(ctx, p)
		})
	}
	gen.Start(g.commitLoop)
	gen.Start(g.keepAlive)
}

// consume reads one partition until the generation ends or the server
// drains, then lets the requests it started finish and commits them.
func (g *generation) consume(gctx context.Context, p *partition) {
	s := g.s
	ctx, cancel := context.WithCancel(gctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel) // draining stops fetching too
	defer stop()
	set := s.t.set
	var requests sync.WaitGroup // this partition's, in this generation
	backoff := 10 * time.Millisecond
	var failing time.Time // since when fetching fails
	for ctx.Err() == nil {
		msg, err := g.reader.fetchMessage(ctx, p.id)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			// While Kafka does not answer, the watch says so once; an
			// error it does not explain is warned about when it lasts.
			if failing.IsZero() {
				failing = time.Now()
			}
			s.t.log.Debug("fetching requests", "service", s.svc.Name, "partition", p.id, "err", err)
			if time.Since(failing) > 5*time.Second && !s.t.rec.outage.isDown() {
				s.t.warnLimited("fetch", "fetching requests", "service", s.svc.Name, "partition", p.id, "err", err, "failing_for", time.Since(failing).Round(time.Second))
			}
			sleep(ctx, backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		failing = time.Time{}
		s.noteLag(p.id, msg.Offset, msg.HighWaterMark)
		// A slot of the service, taken once a request is in hand: an idle
		// partition holds none. While none is free, fetching here waits
		// (the reader queues up to queueLimit more).
		select {
		case s.svc.Slots <- struct{}{}:
		case <-ctx.Done():
			continue // not started: fetched again by whoever reads next
		}
		p.fetched(msg.Offset)
		requests.Add(1)
		s.start(p, msg, &requests)
	}
	g.reader.leave() // the last consumer to leave stops the fetching

	// Let the requests finish: a drain waits up to DrainTimeout, a
	// rebalance up to RebalanceGrace (the keep-alive heartbeats meanwhile).
	grace := set.RebalanceGrace
	why := "rebalance"
	if s.ctx.Err() != nil {
		grace, why = set.DrainTimeout, "drain"
	}
	if !waitFor(&requests, grace) {
		s.t.log.Warn("requests still running after the "+why+" grace: another instance may run them again",
			"service", s.svc.Name, "partition", p.id, "grace", grace, "running", p.running())
	}
	if err := g.commit(); err != nil && !errors.Is(err, context.Canceled) {
		s.t.log.Debug("committing offsets", "service", s.svc.Name, "err", err)
	}
}

// start runs a fetched request, unless this member already runs it (it
// was fetched again after a rebalance) or has finished it.
func (s *server) start(p *partition, msg kafkago.Message, requests *sync.WaitGroup) {
	s.mu.Lock()
	key := partOff{s.epoch, msg.Partition, msg.Offset}
	running, isLive := s.live[key]
	finished := s.finished[key]
	var j *job
	if !isLive && !finished {
		// One allocation holds what serving the request needs.
		j = &job{s: s, p: p, msg: msg, requests: requests, key: key}
		j.running.Add(1)
		s.live[key] = j
	}
	s.mu.Unlock()
	switch {
	case finished:
		<-s.svc.Slots
		p.done(msg.Offset)
		requests.Done()
	case isLive:
		// Running since an earlier generation: count it in this one, but
		// run it once.
		<-s.svc.Slots
		offset := msg.Offset // not msg: a closure's would escape on every call
		go func() {
			running.running.Wait()
			p.done(offset)
			requests.Done()
		}()
	default:
		s.requests.Add(1)
		s.t.work.Go(j)
	}
}

// job is one request being served, from its start to its reply: the
// server's records of it, and the context and transport.Request its
// handler gets.
type job struct {
	s        *server
	p        *partition
	msg      kafkago.Message
	requests *sync.WaitGroup // the generation's
	key      partOff
	running  sync.WaitGroup // done once the request is finished

	ctx   deadlineCtx
	req   transport.Request
	trace [3]transport.Header // req.Trace, unless the request has more
}

// run serves j's request and records it as finished.
func (j *job) run() {
	s := j.s
	defer func() {
		// Last line of defence: nothing a request does stops the node.
		if r := recover(); r != nil {
			s.t.log.Error("panic while serving a request", "service", s.svc.Name, "panic", fmt.Sprint(r))
		}
		s.mu.Lock()
		if j.key.epoch == s.epoch {
			delete(s.live, j.key)
			s.finished[j.key] = true
		}
		s.mu.Unlock()
		j.running.Done()
		j.p.done(j.msg.Offset)
		j.requests.Done()
		<-s.svc.Slots
		s.requests.Done()
	}()
	s.handle(j)
}

// watchUnassigned ends a generation that gave this member no partition
// when no member of the group has any while the topic has some: the
// assignment was made before the topic existed (it was being created
// again after a broker lost its data), and kafka-go would keep it. A
// member left without partitions because the group has more members than
// the topic has partitions keeps its generation.
func (g *generation) watchUnassigned(ctx context.Context) {
	s := g.s
	tick := time.NewTicker(s.t.set.PartitionWatch)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, s.t.set.AdminTimeout)
		res, err := s.t.admin.DescribeGroups(rctx, &kafkago.DescribeGroupsRequest{GroupIDs: []string{s.group}})
		cancel()
		if err != nil || len(res.Groups) != 1 || res.Groups[0].Error != nil {
			continue
		}
		assigned := false
		for _, m := range res.Groups[0].Members {
			for _, t := range m.MemberAssignments.Topics {
				assigned = assigned || (t.Topic == s.topic && len(t.Partitions) > 0)
			}
		}
		if !assigned && len(res.Groups[0].Members) > 0 {
			s.t.log.Info("no member of the group has a partition of its topic: joining again", "group", s.group)
			return
		}
	}
}

// commitLoop commits, every CommitInterval, the offsets below which every
// request of each partition is done, until the generation ends.
func (g *generation) commitLoop(ctx context.Context) {
	tick := time.NewTicker(g.s.t.set.CommitInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if err := g.commit(); err != nil {
				g.s.t.log.Debug("committing offsets", "service", g.s.svc.Name, "err", err)
			}
		case <-ctx.Done():
			return
		}
	}
}

// commit commits what each partition has done since its last commit. A
// generation's members own their partitions, so a commit never overwrites
// another member's; the broker refuses commits of an ended generation.
func (g *generation) commit() error {
	g.commitMu.Lock()
	defer g.commitMu.Unlock()
	if g.lost.Load() {
		return nil
	}
	offsets := map[int]int64{}
	var due []*partition
	for _, p := range g.parts {
		if next, ok := p.committable(); ok {
			offsets[p.id] = next
			due = append(due, p)
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	if err := g.gen.CommitOffsets(map[string]map[int]int64{g.s.topic: offsets}); err != nil {
		return err
	}
	for _, p := range due {
		p.committedTo(offsets[p.id])
	}
	g.s.forget(offsets)
	return nil
}

// forgetAll forgets every request run or finished: after the broker lost
// its data, offsets name other requests. Requests still running finish
// and answer; the new topic's offsets are new requests.
func (s *server) forgetAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
	clear(s.finished)
	clear(s.live)
	s.lost = s.t.topicLost(s.topic)
}

// lostSignal returns the channel that closes when the server's topic is
// next found lost.
func (s *server) lostSignal() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lost
}

// checkIncarnation compares the partitions a generation assigned to this
// member with what the member remembers of them (requests running or
// finished, and where the generation starts). A partition whose end is not
// past the highest offset the member ran, or that would start reading past
// its end, belongs to a topic created again since (the broker lost its
// data): the member forgets every request it ran, and reads such a
// partition from its start. Otherwise a request of the new topic at an
// offset the old one had finished would be skipped, and a reader past the
// end would wait, silently, for records that never come.
func (s *server) checkIncarnation(gen *kafkago.Generation) {
	assigned := gen.Assignments[s.topic]
	if len(assigned) == 0 {
		return
	}
	s.mu.Lock()
	known := map[int]int64{}
	for k := range s.finished {
		known[k.partition] = max(known[k.partition], k.offset)
	}
	for k := range s.live {
		known[k.partition] = max(known[k.partition], k.offset)
	}
	s.mu.Unlock()
	reqs := make([]kafkago.OffsetRequest, 0, 2*len(assigned))
	for _, pa := range assigned {
		reqs = append(reqs, kafkago.FirstOffsetOf(pa.ID), kafkago.LastOffsetOf(pa.ID))
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.t.set.AdminTimeout)
	res, err := s.t.admin.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{s.topic: reqs}})
	cancel()
	if err != nil {
		s.t.log.Debug("listing the offsets of assigned partitions", "topic", s.topic, "err", err)
		return
	}
	ends := map[int]kafkago.PartitionOffsets{}
	for _, po := range res.Topics[s.topic] {
		if po.Error == nil {
			ends[po.Partition] = po
		}
	}
	anew := false
	for i, pa := range assigned {
		po, ok := ends[pa.ID]
		if !ok {
			continue
		}
		if off, ok := known[pa.ID]; ok && po.LastOffset <= off {
			anew = true
		}
		if pa.Offset > po.LastOffset {
			s.t.log.Info("a committed request offset is past the end of its partition: the topic was created again; reading it from its start",
				"topic", s.topic, "partition", pa.ID, "committed", pa.Offset, "end", po.LastOffset)
			assigned[i].Offset = po.FirstOffset
			anew = true
		}
	}
	if anew {
		s.t.log.Info("request topic created again since this member last read it: forgetting the requests it ran", "topic", s.topic)
		s.forgetAll()
	}
}

// keepOnly forgets the finished requests of partitions this member no
// longer reads: it will not fetch them again.
func (s *server) keepOnly(partitions []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.finished {
		if _, mine := slices.BinarySearch(partitions, k.partition); !mine {
			delete(s.finished, k)
		}
	}
}

// forget drops the finished requests below committed offsets: they are
// never fetched again.
func (s *server) forget(committed map[int]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.finished {
		if next, ok := committed[k.partition]; ok && k.offset < next {
			delete(s.finished, k)
		}
	}
}

// keepAlive heartbeats for the member while the generation winds down:
// kafka-go stops its heartbeats when a rebalance begins, and the broker
// would drop a member silent for SessionTimeout while it lets its requests
// finish.
func (g *generation) keepAlive(ctx context.Context) {
	<-ctx.Done()
	finished := make(chan struct{})
	go func() {
		g.consumers.Wait()
		close(finished)
	}()
	tick := time.NewTicker(g.s.t.set.SessionTimeout / 6)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			return
		case <-tick.C:
			hctx, cancel := context.WithTimeout(context.Background(), g.s.t.set.SessionTimeout/3)
			_, err := g.s.t.admin.Heartbeat(hctx, &kafkago.HeartbeatRequest{
				GroupID: g.gen.GroupID, GenerationID: g.gen.ID, MemberID: g.gen.MemberID,
			})
			cancel()
			if err != nil {
				g.s.t.log.Debug("heartbeat while finishing requests", "group", g.gen.GroupID, "err", err)
			}
		}
	}
}

func (s *server) stopFetching() { s.stop() }

// drain stops fetching, lets every partition finish (within DrainTimeout)
// and commit its requests, then leaves the group.
func (s *server) drain() error {
	s.stop()
	// Close ends the current generation without joining another: it waits
	// for the partitions to wind down (each bounded by DrainTimeout), then
	// leaves the group.
	bound := s.t.set.DrainTimeout + s.t.set.CloseTimeout
	closed := make(chan error, 1)
	go func() { closed <- s.cg.Close() }()
	var err error
	select {
	case err = <-closed:
		if errors.Is(err, kafkago.ErrGroupClosed) {
			err = nil
		}
		if err != nil {
			err = fmt.Errorf("molgen: leaving consumer group %s: %w", s.group, err)
		}
	case <-time.After(bound):
		err = fmt.Errorf("molgen: leaving consumer group %s took over %v", s.group, bound)
	}
	<-s.done
	// Requests that a grace left running still answer their callers.
	waitFor(&s.requests, s.t.set.CloseTimeout)
	return err
}

// noteJoined records that s was assigned a generation, and logs "ready"
// when that makes every service served here joined (once: the flags only
// change under the lock).
func (t *Transport) noteJoined(s *server) {
	t.serversMu.Lock()
	defer t.serversMu.Unlock()
	if s.joined {
		return
	}
	s.joined = true
	for _, o := range t.servers {
		if !o.joined {
			return
		}
	}
	t.log.Info("ready: every service served here has joined its consumer group", "services", len(t.servers))
}

// waitFor waits for wg at most d, and reports whether it is done.
func waitFor(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// server consumes one hosted service's request topic in the service's
// consumer group and runs each request in its own goroutine, bounded by the
// node's MaxConcurrent.
type server struct {
	t       *kafkaTransport
	svc     *service
	h       *hosted
	methods map[string]int
	reader  *kafka.Reader
	sem     chan struct{} // bounds the requests of this service served at once

	fetchCtx    context.Context
	stopFetch   context.CancelFunc
	fetchDone   chan struct{}
	inflight    sync.WaitGroup
	commitStop  chan struct{}
	commitDone  chan struct{}
	tracker     offsetTracker
	commitMu    sync.Mutex // one commit at a time
	commitCtx   context.Context
	commitClose context.CancelFunc
}

func (t *kafkaTransport) serve(ctx context.Context, s *service) (*server, error) {
	topic := requestTopic(t.app, s.name)
	// A group Reader started before its topic exists gets no partitions and
	// never recovers (kafka-go #800): create the topic first.
	if err := t.ensureTopic(ctx, topic, t.parts, requestRetention); err != nil {
		return nil, err
	}
	s.topicReady.Store(true)
	srv := &server{
		t:          t,
		svc:        s,
		h:          s.hosted,
		methods:    map[string]int{},
		fetchDone:  make(chan struct{}),
		commitStop: make(chan struct{}),
		commitDone: make(chan struct{}),
		tracker:    offsetTracker{parts: map[int]*partitionOffsets{}},
		// Per service, not per node: a handler of one service waiting on
		// another hosted here must not take the slots the other needs.
		sem: make(chan struct{}, t.node.opts.MaxConcurrent),
	}
	for i, m := range s.hosted.desc.Methods {
		srv.methods[m.Name] = i
	}
	opts := t.node.opts
	srv.reader = kafka.NewReader(kafka.ReaderConfig{
		Brokers: t.brokers,
		GroupID: groupID(t.app, s.name),
		Topic:   topic,
		Dialer:  t.dialer,
		// Hand over each request as soon as it is written.
		MinBytes: 1,
		MaxBytes: 16 << 20,
		// Close and rebalances wait for an in-flight fetch: keep it short
		// (the default is 10s).
		MaxWait:          500 * time.Millisecond,
		ReadBatchTimeout: 5 * time.Second,
		// Few prefetched messages: fewer stale ones after a rebalance.
		QueueCapacity: 64,
		// Commits are made by this server, for offsets whose requests (and
		// every earlier one of the partition) are done, not by kafka-go.
		CommitInterval: 0,
		// A dead instance's partitions move after SessionTimeout.
		HeartbeatInterval: opts.SessionTimeout / 6,
		SessionTimeout:    opts.SessionTimeout,
		RebalanceTimeout:  opts.SessionTimeout + 4*time.Second,
		JoinGroupBackoff:  500 * time.Millisecond,
		ReadBackoffMin:    20 * time.Millisecond,
		ReadBackoffMax:    500 * time.Millisecond,
		// A new group starts at the oldest request: those written before
		// the first server joined are served (expired ones are skipped).
		StartOffset:     kafka.FirstOffset,
		ReadLagInterval: -1,
		MaxAttempts:     3,
		Logger:          kafkaLogger(t.log, -8),
		ErrorLogger:     kafkaLogger(t.log, -4),
	})
	srv.fetchCtx, srv.stopFetch = context.WithCancel(context.Background())
	srv.commitCtx, srv.commitClose = context.WithCancel(context.Background())
	go srv.fetchLoop()
	go srv.commitLoop()
	return srv, nil
}

func (s *server) fetchLoop() {
	defer close(s.fetchDone)
	backoff := 10 * time.Millisecond
	for {
		select {
		case s.sem <- struct{}{}:
		case <-s.fetchCtx.Done():
			return
		}
		msg, err := s.reader.FetchMessage(s.fetchCtx)
		if err != nil {
			<-s.sem
			if s.fetchCtx.Err() != nil {
				return
			}
			s.t.log.Warn("fetching requests", "service", s.svc.name, "err", err)
			sleep(s.fetchCtx, backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		s.tracker.start(msg.Partition, msg.Offset)
		s.inflight.Add(1)
		go func() {
			defer func() {
				// Last line of defence: nothing a request does stops the node.
				if r := recover(); r != nil {
					s.t.stats.panics.Add(1)
					s.t.log.Error("panic while serving a request", "service", s.svc.name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				}
				s.tracker.done(msg.Partition, msg.Offset)
				s.inflight.Done()
				<-s.sem
			}()
			s.handle(msg)
		}()
	}
}

// handle runs one request and answers it. It never panics and never stops
// the consumer: bad messages are answered with an error when they say
// where to, and logged otherwise.
func (s *server) handle(msg kafka.Message) {
	var version, method, replyTo, deadlineText, id, schema string
	for _, h := range msg.Headers {
		switch h.Key {
		case hVersion:
			version = string(h.Value)
		case hMethod:
			method = string(h.Value)
		case hReplyTo:
			replyTo = string(h.Value)
		case hDeadline:
			deadlineText = string(h.Value)
		case hID:
			id = string(h.Value)
		case hSchema:
			schema = string(h.Value)
		}
	}
	log := lazyLogger{base: s.t.log, service: s.svc.name, method: method, partition: msg.Partition, offset: msg.Offset}
	log.Debug("serving a request")
	if replyTo != "" && id == "" {
		replyTo = "" // nothing to correlate a reply with
	}
	bad := func(cause error, format string, args ...any) {
		s.t.stats.badMessages.Add(1)
		err := fmt.Errorf("%w: %s", cause, fmt.Sprintf(format, args...))
		log.Warn("bad request", "err", err)
		if replyTo != "" {
			s.reply(context.Background(), log, replyTo, id, time.Now().Add(5*time.Second), nil, err)
		}
	}
	if version != WireVersion {
		bad(ErrBadRequest, "unsupported %s %q (this node speaks %s)", hVersion, version, WireVersion)
		return
	}
	deadline, err := parseDeadline(deadlineText)
	if err != nil {
		bad(ErrBadRequest, "invalid %s %q", hDeadline, deadlineText)
		return
	}
	if time.Now().After(deadline) {
		s.t.stats.expired.Add(1)
		log.Debug("skipping a request whose deadline has passed", "deadline", deadlineText)
		return
	}
	idx, ok := s.methods[method]
	if !ok {
		bad(ErrUnknownMethod, "service %q has no method %q on this node", s.svc.name, method)
		return
	}
	if own := s.h.desc.Methods[idx].Schema; schema != "" && own != "" && schema != own {
		bad(ErrBadRequest, "%s.%s was called with types (schema %s) other than this server's (schema %s): build and deploy caller and server from the same code",
			s.svc.name, method, schema, own)
		return
	}
	// The request runs to its deadline even while the node drains.
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	resp, err := s.invoke(ctx, idx, msg.Value)
	if _, undecodable := err.(*badRequest); undecodable {
		s.t.stats.badMessages.Add(1)
		log.Warn("bad request", "err", errorMessage(err))
	} else {
		s.t.stats.served.Add(1)
	}
	if replyTo == "" {
		if err != nil {
			log.Warn("oneway call failed", "err", errorMessage(err))
		}
		return
	}
	s.reply(ctx, log, replyTo, id, deadline, resp, err)
}

// invoke decodes and runs a request, turning a panic into an error.
func (s *server) invoke(ctx context.Context, idx int, payload []byte) (resp Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.t.stats.panics.Add(1)
			pe := &PanicError{Service: s.svc.name, Method: s.h.desc.Methods[idx].Name, Value: r, Stack: debug.Stack()}
			s.t.log.Error("service panicked", "service", pe.Service, "method", pe.Method, "panic", fmt.Sprint(r), "stack", string(pe.Stack))
			resp, err = nil, pe
		}
	}()
	return s.h.handlers[idx](ctx, s.h.impl, NewDecoder(payload))
}

// reply writes the answer to a request to the caller's reply topic. It
// runs code of the service (MarshalBinary, Error, Is methods); a panic there
// is answered as a panic of the call.
func (s *server) reply(ctx context.Context, log lazyLogger, replyTo, id string, deadline time.Time, resp Message, callErr error) {
	value, status := s.replyValue(resp, callErr)
	// Past the deadline the caller has given up; a little grace still
	// lets a reply that is ready go out.
	wctx, cancel := context.WithDeadline(context.Background(), deadline.Add(time.Second))
	defer cancel()
	s.t.knowReplyTopic(wctx, replyTo)
	err := s.t.write(wctx, kafka.Message{
		Topic: replyTo,
		Value: value,
		Headers: []kafka.Header{
			{Key: hVersion, Value: wireVersion},
			{Key: hID, Value: []byte(id)},
			{Key: hStatus, Value: status},
		},
	})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("writing a reply", "reply_to", replyTo, "err", err)
	}
}

// replyValue encodes a reply's value (a fresh buffer: kafka-go may keep it
// after a write gives up).
func (s *server) replyValue(resp Message, callErr error) (value, status []byte) {
	defer func() {
		if r := recover(); r != nil {
			s.t.stats.panics.Add(1)
			e := NewEncoder(nil)
			encodeError(e, &PanicError{Service: s.svc.name, Method: "(reply)", Value: fmt.Sprintf("encoding the reply: %v", r), Stack: debug.Stack()})
			value, status = e.Data(), statusErrorValue
		}
	}()
	e := NewEncoder(make([]byte, 0, 128))
	if callErr == nil && resp != nil {
		resp.MolgenEncode(e)
		if err := e.Err(); err != nil {
			e = NewEncoder(nil)
			callErr = fmt.Errorf("molgen: encoding the response of %s: %w", s.svc.name, err)
		}
	}
	if callErr != nil {
		encodeError(e, callErr)
		return e.Data(), statusErrorValue
	}
	return e.Data(), statusOKValue
}

// commitLoop commits, every commitInterval, the offsets up to which every
// request of a partition is done.
func (s *server) commitLoop() {
	defer close(s.commitDone)
	tick := time.NewTicker(commitInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			s.commit()
		case <-s.commitStop:
			return
		}
	}
}

func (s *server) commit() error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	offsets := s.tracker.committable()
	if len(offsets) == 0 {
		return nil
	}
	topic := s.reader.Config().Topic
	ctx, cancel := context.WithTimeout(s.commitCtx, 5*time.Second)
	defer cancel()
	// kafka-go cannot tell which partitions this member still owns: after
	// a rebalance, another member may have committed further. Never move a
	// partition's committed offset backwards.
	parts := make([]int, len(offsets))
	for i, o := range offsets {
		parts[i] = o.partition
	}
	current := map[int]int64{}
	if res, err := s.t.admin.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: s.reader.Config().GroupID, Topics: map[string][]int{topic: parts}}); err == nil {
		for _, p := range res.Topics[topic] {
			if p.Error == nil {
				current[p.Partition] = p.CommittedOffset
			}
		}
	}
	msgs := make([]kafka.Message, 0, len(offsets))
	var sent []partitionCommit
	for _, o := range offsets {
		if cur, ok := current[o.partition]; ok && cur >= o.next {
			s.tracker.committed(o) // the group is already past it
			continue
		}
		// CommitMessages commits msg.Offset+1, the next offset to read.
		msgs = append(msgs, kafka.Message{Topic: topic, Partition: o.partition, Offset: o.next - 1})
		sent = append(sent, o)
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := s.reader.CommitMessages(ctx, msgs...); err != nil {
		s.t.log.Debug("committing offsets", "service", s.svc.name, "err", err)
		return err
	}
	for _, o := range sent {
		s.tracker.committed(o)
	}
	return nil
}

func (s *server) stopFetching() {
	s.stopFetch()
}

// drain waits for the fetch loop and every request in flight, commits
// their offsets and closes the reader.
func (s *server) drain() error {
	<-s.fetchDone
	s.inflight.Wait()
	close(s.commitStop)
	<-s.commitDone
	err := s.commit()
	s.commitClose()
	// Reader.Close leaves the group; bound it, since kafka-go can wait on
	// a broker that is gone.
	done := make(chan error, 1)
	go func() { done <- s.reader.Close() }()
	select {
	case cerr := <-done:
		return errors.Join(err, cerr)
	case <-time.After(15 * time.Second):
		return errors.Join(err, fmt.Errorf("molgen: closing the %s consumer took over 15s", s.svc.name))
	}
}

// offsetTracker knows, per partition, which fetched requests are still in
// flight, so that an offset is committed only when every request before it
// is done (requests of a partition finish out of order).
//
// After a rebalance kafka-go fetches a partition again from its committed
// offset: a fetch that does not follow the previous one starts a new
// session of the partition, and requests of older sessions (whose messages
// are fetched again) no longer hold its commits back. Before committing,
// the server reads the group's offsets and never moves one backwards (another
// member may own the partition now).
type offsetTracker struct {
	mu    sync.Mutex
	parts map[int]*partitionOffsets
}

type partitionOffsets struct {
	session   int
	inflight  map[int64]int // offset -> session
	next      int64         // one past the last offset fetched
	committed int64         // the last offset committed (the next to read)
	changes   int           // starts and ends seen
	clean     int           // changes covered by the last commit
}

type partitionCommit struct {
	partition int
	next      int64
	changes   int // the partition's changes when next was computed
}

func (t *offsetTracker) start(partition int, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[partition]
	if p == nil {
		p = &partitionOffsets{inflight: map[int64]int{}, committed: -1, next: offset}
		t.parts[partition] = p
	}
	if offset != p.next {
		p.session++
		p.committed = -1
	}
	p.inflight[offset] = p.session
	p.next = offset + 1
	p.changes++
}

func (t *offsetTracker) done(partition int, offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[partition]
	delete(p.inflight, offset)
	p.changes++
}

// committable returns, for each partition with news, the offset below which
// every request of its current session is done.
func (t *offsetTracker) committable() []partitionCommit {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []partitionCommit
	for id, p := range t.parts {
		if p.changes == p.clean {
			continue
		}
		next := p.next
		for o, session := range p.inflight {
			if session == p.session {
				next = min(next, o)
			}
		}
		if next > p.committed {
			out = append(out, partitionCommit{id, next, p.changes})
		} else if !t.holdsBack(p) {
			p.clean = p.changes // nothing more to commit until something changes
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].partition < out[j].partition })
	return out
}

// holdsBack reports whether requests of p's current session are running.
func (t *offsetTracker) holdsBack(p *partitionOffsets) bool {
	for _, session := range p.inflight {
		if session == p.session {
			return true
		}
	}
	return false
}

// committed records a successful commit made from c.
func (t *offsetTracker) committed(c partitionCommit) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[c.partition]
	if p == nil {
		return
	}
	p.committed = max(p.committed, c.next)
	// Changes since committable ran (a request started or ended while the
	// commit was in flight) keep the partition due for the next commit.
	if p.changes == c.changes && !t.holdsBack(p) {
		p.clean = c.changes
	}
}

// lazyLogger adds a request's attributes to a log line only when one is
// written: building them for every request would cost allocations on the
// hot path for logs that are usually off.
type lazyLogger struct {
	base            *slog.Logger
	service, method string
	partition       int
	offset          int64
}

func (l lazyLogger) log(level slog.Level, msg string, args ...any) {
	if l.base.Enabled(context.Background(), level) {
		attrs := append([]any{"service", l.service, "method", l.method, "partition", l.partition, "offset", l.offset}, args...)
		l.base.Log(context.Background(), level, msg, attrs...)
	}
}

func (l lazyLogger) Debug(msg string, args ...any) { l.log(slog.LevelDebug, msg, args...) }
func (l lazyLogger) Warn(msg string, args ...any)  { l.log(slog.LevelWarn, msg, args...) }

package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// server consumes one hosted service's request topic in the service's
// consumer group and runs each request in its own goroutine, bounded by the
// service's slots.
//
// Its life: Serve starts the fetch and commit loops; drain stops fetching,
// waits for the fetch loop and every request (running), stops the commit
// loop, commits what is done and leaves the group.
type server struct {
	t      *Transport
	svc    transport.Service
	reader *kafkago.Reader

	fetchCtx   context.Context
	stopFetch  context.CancelFunc
	running    sync.WaitGroup // the fetch loop and the requests it started
	commitStop chan struct{}
	commitDone chan struct{}
	tracker    offsetTracker
}

// Serve joins the consumer group of svc's request topic and serves its
// requests with svc.Handle until Drain.
func (t *Transport) Serve(ctx context.Context, svc transport.Service) error {
	r := t.routeOf(svc.Name)
	// A group Reader started before its topic exists gets no partitions and
	// never recovers (kafka-go #800): create the topic first.
	if err := t.ensureTopic(ctx, r.topic, t.cfg.Partitions, t.set.RequestRetention); err != nil {
		return err
	}
	r.ready.Store(true)
	set := t.set
	s := &server{
		t:          t,
		svc:        svc,
		commitStop: make(chan struct{}),
		commitDone: make(chan struct{}),
		tracker:    offsetTracker{parts: map[int]*partitionOffsets{}},
	}
	s.reader = kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: t.cfg.Brokers,
		GroupID: groupID(t.cfg.App, svc.Name),
		Topic:   r.topic,
		Dialer:  t.dialer,
		// Hand over each request as soon as it is written.
		MinBytes:         1,
		MaxBytes:         set.FetchMaxBytes,
		MaxWait:          set.FetchMaxWait,
		ReadBatchTimeout: set.ReadBatchTimeout,
		QueueCapacity:    set.RequestQueue,
		// Commits are made by this server, for offsets whose requests (and
		// every earlier one of the partition) are done, not by kafka-go.
		CommitInterval: 0,
		// A dead instance's partitions move after SessionTimeout.
		HeartbeatInterval: set.SessionTimeout / 6,
		SessionTimeout:    set.SessionTimeout,
		RebalanceTimeout:  set.SessionTimeout + set.RebalanceExtra,
		JoinGroupBackoff:  set.JoinGroupBackoff,
		ReadBackoffMin:    set.ReadBackoffMin,
		ReadBackoffMax:    set.ReadBackoffMax,
		// A new group starts at the oldest request: those written before
		// the first server joined are served (expired ones are skipped).
		StartOffset:     kafkago.FirstOffset,
		ReadLagInterval: -1,
		MaxAttempts:     3,
		Logger:          kafkaLogger(t.log, -8),
		ErrorLogger:     kafkaLogger(t.log, -4),
	})
	s.fetchCtx, s.stopFetch = context.WithCancel(context.Background())
	t.serversMu.Lock()
	if t.closing {
		t.serversMu.Unlock()
		s.reader.Close()
		return transport.ErrClosed
	}
	t.servers = append(t.servers, s)
	t.serversMu.Unlock()
	s.running.Add(1)
	go s.fetchLoop()
	go s.commitLoop()
	return nil
}

func (s *server) fetchLoop() {
	defer s.running.Done()
	backoff := 10 * time.Millisecond
	for {
		select {
		case s.svc.Slots <- struct{}{}:
		case <-s.fetchCtx.Done():
			return
		}
		msg, err := s.reader.FetchMessage(s.fetchCtx)
		if err != nil {
			<-s.svc.Slots
			if s.fetchCtx.Err() != nil {
				return
			}
			s.t.log.Warn("fetching requests", "service", s.svc.Name, "err", err)
			sleep(s.fetchCtx, backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		s.tracker.start(msg.Partition, msg.Offset, s.rebalanced)
		s.running.Add(1)
		go func() {
			defer func() {
				// Last line of defence: nothing a request does stops the node.
				if r := recover(); r != nil {
					s.t.log.Error("panic while serving a request", "service", s.svc.Name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				}
				s.tracker.done(msg.Partition, msg.Offset)
				s.running.Done()
				<-s.svc.Slots
			}()
			s.handle(msg)
		}()
	}
}

// rebalanced reports whether the group rebalanced since it was last asked.
// kafka-go tells no member when it loses or regains a partition; its
// reader's counters (reset by each Stats call) say whether it happened.
func (s *server) rebalanced() bool { return s.reader.Stats().Rebalances > 0 }

// handle runs one request and answers it. It never panics and never stops
// the consumer: bad messages are answered with an error when they say
// where to, and logged otherwise.
func (s *server) handle(msg kafkago.Message) {
	var version, method, replyTo, deadlineText, id, schema, caller string
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
		case hCaller:
			caller = string(h.Value)
		}
	}
	log := lazyLogger{base: s.t.log, service: s.svc.Name, method: method, partition: msg.Partition, offset: msg.Offset}
	log.Debug("serving a request")
	if replyTo != "" && id == "" {
		replyTo = "" // nothing to correlate a reply with
	}
	bad := func(format string, args ...any) {
		s.t.stats.badMessages.Add(1)
		err := fmt.Errorf("%w: %s", transport.ErrBadRequest, fmt.Sprintf(format, args...))
		log.Warn("bad request", "err", err)
		if replyTo != "" {
			s.reply(log, replyTo, id, time.Now().Add(s.t.set.BadReplyTimeout),
				transport.Reply{Status: transport.StatusError, Payload: s.t.cfg.ErrorReply(err)})
		}
	}
	if version != WireVersion {
		bad("unsupported %s %q (this node speaks %s)", hVersion, version, WireVersion)
		return
	}
	deadline, err := parseDeadline(deadlineText)
	if err != nil {
		bad("invalid %s %q", hDeadline, deadlineText)
		return
	}
	if time.Now().After(deadline) {
		s.t.stats.expired.Add(1)
		log.Debug("skipping a request whose deadline has passed", "deadline", deadlineText)
		return
	}
	s.t.stats.served.Add(1)
	// The request runs to its deadline even while the node drains.
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	req := transport.Request{Service: s.svc.Name, Method: method, Schema: schema, Deadline: deadline, Payload: msg.Value, Caller: caller}
	reply := s.svc.Handle(ctx, &req)
	if replyTo == "" {
		return // oneway: the handler logged a failure
	}
	s.reply(log, replyTo, id, deadline, reply)
}

// reply writes the answer to a request to the caller's reply topic.
func (s *server) reply(log lazyLogger, replyTo, id string, deadline time.Time, reply transport.Reply) {
	status := statusOKValue
	if reply.Status == transport.StatusError {
		status = statusErrorValue
	}
	// Past the deadline the caller has given up; a little grace still
	// lets a reply that is ready go out.
	wctx, cancel := context.WithDeadline(context.Background(), deadline.Add(s.t.set.ReplyGrace))
	defer cancel()
	s.t.knowReplyTopic(wctx, replyTo)
	err := s.t.write(wctx, kafkago.Message{
		Topic: replyTo,
		Value: reply.Payload,
		Headers: []kafkago.Header{
			{Key: hVersion, Value: wireVersion},
			{Key: hID, Value: []byte(id)},
			{Key: hStatus, Value: status},
		},
	})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("writing a reply", "reply_to", replyTo, "err", err)
	}
}

// commitLoop commits, every CommitInterval, the offsets up to which every
// request of a partition is done.
func (s *server) commitLoop() {
	defer close(s.commitDone)
	tick := time.NewTicker(s.t.set.CommitInterval)
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
	offsets := s.tracker.committable()
	if len(offsets) == 0 {
		return nil
	}
	topic := s.reader.Config().Topic
	ctx, cancel := context.WithTimeout(context.Background(), s.t.set.CommitTimeout)
	defer cancel()
	// kafka-go cannot tell which partitions this member still owns: after
	// a rebalance, another member may have committed further. Never move a
	// partition's committed offset backwards.
	parts := make([]int, len(offsets))
	for i, o := range offsets {
		parts[i] = o.partition
	}
	current := map[int]int64{}
	if res, err := s.t.admin.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: s.reader.Config().GroupID, Topics: map[string][]int{topic: parts}}); err == nil {
		for _, p := range res.Topics[topic] {
			if p.Error == nil {
				current[p.Partition] = p.CommittedOffset
			}
		}
	}
	msgs := make([]kafkago.Message, 0, len(offsets))
	var sent []partitionCommit
	for _, o := range offsets {
		if cur, ok := current[o.partition]; ok && cur >= o.next {
			s.tracker.committed(o) // the group is already past it
			continue
		}
		// CommitMessages commits msg.Offset+1, the next offset to read.
		msgs = append(msgs, kafkago.Message{Topic: topic, Partition: o.partition, Offset: o.next - 1})
		sent = append(sent, o)
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := s.reader.CommitMessages(ctx, msgs...); err != nil {
		s.t.log.Debug("committing offsets", "service", s.svc.Name, "err", err)
		return err
	}
	for _, o := range sent {
		s.tracker.committed(o)
	}
	return nil
}

func (s *server) stopFetching() { s.stopFetch() }

// drain waits for the fetch loop and every request in flight, commits
// their offsets and leaves the group.
func (s *server) drain() error {
	s.running.Wait()
	close(s.commitStop)
	<-s.commitDone
	err := s.commit()
	// Reader.Close leaves the group; bound it, since kafka-go can wait on
	// a broker that is gone.
	done := make(chan error, 1)
	go func() { done <- s.reader.Close() }()
	select {
	case cerr := <-done:
		return errors.Join(err, cerr)
	case <-time.After(s.t.set.CloseTimeout):
		return errors.Join(err, fmt.Errorf("molgen: closing the %s consumer took over %v", s.svc.Name, s.t.set.CloseTimeout))
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

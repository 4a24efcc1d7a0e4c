package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/molgen/molgen/runtime/internal/envelope"
	"github.com/molgen/molgen/runtime/internal/transport"
)

// job is one request being served, from its start to its reply: the
// server's records of it, the context and transport.Request its handler
// gets, and the write of its reply, in one allocation.
type job struct {
	s       *server
	p       *partition
	rec     *kgo.Record
	key     partOff
	running sync.WaitGroup // done once the request is finished

	ctx   deadlineCtx
	req   transport.Request
	trace [3]transport.Header // req.Trace, unless the request has more

	// The reply, written after the handler returned: its write's outcome
	// finishes the job (replied), on the writer's promise goroutine, so
	// that no goroutine waits for it.
	reply    write
	replying bool // the reply's write finishes the job
	answer   answer
}

// answer is what the reply of a job needs to be written again or
// replaced by an error reply.
type answer struct {
	log         lazyLogger
	replyTo, id string
	attempts    int
}

// run serves j's request and records it as finished, unless its reply is
// being written (replied finishes it then).
func (j *job) run() {
	s := j.s
	defer func() {
		// Last line of defence: nothing a request does stops the node.
		if r := recover(); r != nil {
			s.t.log.Error("panic while serving a request", "service", s.svc.Name, "panic", fmt.Sprint(r))
		}
		if !j.replying {
			j.finish()
		}
	}()
	s.handle(j)
}

// finish records the job as finished and gives its slot back.
func (j *job) finish() {
	s := j.s
	s.mu.Lock()
	if j.key.epoch == s.epoch {
		delete(s.live, j.key)
		s.finished[j.key] = true
	}
	s.mu.Unlock()
	j.running.Done()
	s.finish(j.p, j.rec.Offset)
	<-s.svc.Slots
	s.requests.Done()
}

// replied is the outcome of the reply's write: the job is finished, or
// the failure is dealt with on a goroutine of its own (this runs on the
// writer's promise goroutine, which must not wait).
func (j *job) replied(err error) {
	if err == nil {
		j.finish()
		return
	}
	go func() {
		if j.s.replyFailed(j, j.s.t.w.outcome(j.reply.rec.Topic, err)) {
			return // written again: replied comes again
		}
		j.finish()
	}()
}

// handle runs one request and answers it. It never panics and never stops
// the consumer: a request that the node's keys did not sign, or whose
// reply topic is not one of the app's, is dropped and counted (trust.go);
// other bad messages are answered with an error when they say where to,
// and logged otherwise.
func (s *server) handle(j *job) {
	msg := j.rec
	taken := time.Now()
	in := incoming{trace: j.trace[:0]}
	in.read(msg)
	method, replyTo, id, schema, caller, trace := in.method, in.replyTo, in.id, in.schema, in.caller, in.trace
	log := lazyLogger{base: s.t.log, service: s.svc.Name, method: method, partition: msg.Partition, offset: msg.Offset}
	log.Debug("serving a request")
	if replyTo != "" && id == "" {
		replyTo = "" // nothing to correlate a reply with
		in.replyTo = ""
	}
	if id == "" {
		id = in.callID // a oneway request's call id
	}
	if ring := s.t.cfg.Keys.For(s.svc.Name); ring != nil {
		f := in.fields(s.svc.Name, msg.Value)
		if err := ring.Verify(&f, in.sig); err != nil {
			s.t.stats.forged.Add(1)
			s.t.warnLimited("forged request", "dropping a request that is not signed by the service's key: something other than a caller of this app wrote to the request topic (check the topic's write ACLs and the nodes' keys)",
				"service", s.svc.Name, "partition", msg.Partition, "offset", msg.Offset, "err", err)
			return
		}
	}
	if replyTo != "" && !envelope.ValidReplyTo(s.t.cfg.App, replyTo) {
		s.t.stats.misdirected.Add(1)
		s.t.warnLimited("misdirected request", "dropping a request whose reply topic is not one of this app's: molgen writes replies only to "+envelope.ReplyPrefix(s.t.cfg.App)+"* (something other than a caller of this app wrote to the request topic: check its write ACLs, or set signing keys)",
			"service", s.svc.Name, "partition", msg.Partition, "offset", msg.Offset, "reply_to", clip(replyTo))
		return
	}
	bad := func(format string, args ...any) {
		s.t.stats.badMessages.Add(1)
		err := fmt.Errorf("%w: %s", transport.ErrBadRequest, fmt.Sprintf(format, args...))
		s.t.warnLimited("bad request", "bad request", "service", s.svc.Name, "method", clip(method), "partition", msg.Partition, "offset", msg.Offset, "err", err)
		// Answered only when its id can be carried back (an id over its
		// bound would make the reply as large as the attack).
		if replyTo != "" && len(id) <= envelope.MaxID {
			s.reply(j, log, replyTo, id, time.Now().Add(s.t.set.BadReplyTimeout),
				transport.Reply{Status: transport.StatusError, Payload: s.t.cfg.ErrorReply(err)})
		}
	}
	if p := in.problem(); p != "" {
		bad("%s", p)
		return
	}
	if in.version != WireVersion {
		bad("unsupported %s %q (this node speaks %s)", hVersion, clip(in.version), WireVersion)
		return
	}
	deadline, err := parseDeadline(in.deadline)
	if err != nil {
		bad("invalid %s %q", hDeadline, clip(in.deadline))
		return
	}
	now := time.Now()
	if now.After(deadline) {
		s.t.stats.expired.Add(1)
		log.Debug("skipping a request whose deadline has passed", "deadline", in.deadline)
		return
	}
	// A request holds a slot until its deadline: bound what a caller (a
	// hostile one, or one without limits) may ask for.
	if limit := now.Add(s.t.set.MaxDeadline); deadline.After(limit) {
		log.Debug("clamping a request's deadline", "deadline", in.deadline, "max", s.t.set.MaxDeadline)
		deadline = limit
	}
	// A copy of a call that runs or ran here is not run again.
	var first *ran
	if id != "" {
		var v verdict
		first, v = s.t.dedup.begin(s.svc.Name, id, s.t.dedup.fingerprint(method, replyTo, msg.Value), deadline, now)
		if v != runIt {
			s.t.stats.duplicates.Add(1)
			log.Debug("a copy of a call that ran here already: not run again", "id", clip(id), "first_done", v != dupRunning)
			switch {
			case replyTo == "", v == dupRunning:
				// Oneway, or the first copy answers.
			case v == dupAnswered:
				s.reply(j, log, replyTo, id, deadline, first.reply)
			default:
				s.reply(j, log, replyTo, id, deadline, transport.Reply{Status: transport.StatusError,
					Payload: s.t.cfg.ErrorReply(fmt.Errorf("%w: this call ran already on this instance, and its reply is no longer kept (a copy of its request came after the replies kept filled Settings.DedupBytes)", transport.ErrMayHaveRun))})
			}
			return
		}
	}
	s.t.stats.served.Add(1)
	if len(trace) == 0 {
		trace = nil // as a request without trace context always had
	}
	// The request runs to its deadline even while the node drains.
	ctx := &j.ctx
	ctx.deadline, ctx.id = deadline, id
	defer ctx.cancel()
	req := &j.req
	*req = transport.Request{Service: s.svc.Name, Method: method, Schema: schema, Deadline: deadline, Payload: msg.Value, Caller: caller,
		Trace: trace, Topic: s.topic, Group: s.group, Partition: int(msg.Partition), Offset: msg.Offset, Written: msg.Timestamp, Taken: taken}
	reply := s.svc.Handle(ctx, req)
	s.t.dedup.finish(first, reply)
	if replyTo == "" {
		return // oneway: the handler logged a failure
	}
	s.reply(j, log, replyTo, id, deadline, reply)
}

// reply starts writing the answer to a request to the caller's reply
// topic; the write's outcome finishes the job (replied). Past the
// deadline the caller has given up; a little grace still lets a reply
// that is ready go out. A reply whose topic is gone (its caller ended) is
// dropped and counted; one over the size limit becomes an ErrTooLarge
// error reply.
func (s *server) reply(j *job, log lazyLogger, replyTo, id string, deadline time.Time, reply transport.Reply) {
	t := s.t
	if !t.topics.replyTopicKnown(replyTo) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(t.set.ReplyGrace))
		known := t.topics.knowReplyTopic(ctx, replyTo)
		cancel()
		if !known {
			t.stats.orphaned.Add(1)
			log.Debug("dropping a reply: the caller's reply topic is gone", "reply_to", replyTo)
			return
		}
	}
	j.answer = answer{log: log, replyTo: replyTo, id: id}
	w := &j.reply
	w.job = j
	t.replyRecord(&w.rec, s.svc.Name, log.method, replyTo, id, reply)
	if err := t.checkSize(&w.rec, ""); err != nil {
		s.replyFailed(j, err)
		return
	}
	s.startReply(j)
}

// startReply hands the job's reply record to the writer; its outcome
// comes to replied.
func (s *server) startReply(j *job) {
	j.answer.attempts++
	if err := s.t.w.start(context.Background(), time.Time{}, &j.reply); err != nil {
		j.answer.log.Warn("writing a reply", "reply_to", j.answer.replyTo, "err", err)
		return
	}
	j.replying = true
}

// replyFailed deals with a reply whose write failed with err: a reply
// the broker refused as too large is written again after the topic's
// limit is learned again (it was lowered; the replies batched with it may
// fit), or replaced by an error reply saying so; a reply whose topic is
// gone is dropped. It reports whether the reply is being written again.
func (s *server) replyFailed(j *job, err error) (again bool) {
	t := s.t
	a := &j.answer
	var tl *tooLargeError
	var gone *topicGoneError
	switch {
	case errors.Is(err, transport.ErrClosed):
	case a.attempts < 3 && (errors.As(err, &tl) && tl.limit == 0 || purged(err)):
		// Refused with its batch, or buffered when relearn purged the
		// topic: the writer learns the topic's limit again, and the reply
		// goes again if it fits.
		if tl != nil {
			t.topics.relearn(a.replyTo)
		}
		if t.checkSize(&j.reply.rec, "") == nil {
			j.replying = false
			s.startReply(j)
			return j.replying
		}
		return s.replyFailed(j, t.checkSize(&j.reply.rec, ""))
	case errors.As(err, &gone):
		t.stats.orphaned.Add(1)
		t.topics.forget(a.replyTo)
		t.w.cl.PurgeTopicsFromProducing(a.replyTo) // a topic of that name made later is another topic
		a.log.Debug("dropping a reply: the caller's reply topic is gone", "reply_to", a.replyTo)
	case errors.As(err, &tl):
		tl.what = fmt.Sprintf("molgen: the reply of %s.%s", s.svc.Name, a.log.method)
		t.stats.tooLarge.Add(1)
		t.log.Warn("a reply is over the size limit: its caller gets ErrTooLarge", "service", s.svc.Name, "method", a.log.method, "reply_to", a.replyTo, "err", tl)
		var rec kgo.Record
		t.replyRecord(&rec, s.svc.Name, a.log.method, a.replyTo, a.id, transport.Reply{Status: transport.StatusError, Payload: t.cfg.ErrorReply(tl)})
		if err := t.w.writeNow(context.Background(), time.Now().Add(t.set.BadReplyTimeout), rec); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			a.log.Warn("writing a reply", "reply_to", a.replyTo, "err", err)
		}
	default:
		a.log.Warn("writing a reply", "reply_to", a.replyTo, "err", err)
	}
	return false
}

// lazyLogger adds a request's attributes to a log line only when one is
// written: building them for every request would cost allocations on the
// hot path for logs that are usually off.
type lazyLogger struct {
	base            *slog.Logger
	service, method string
	partition       int32
	offset          int64
}

func (l lazyLogger) log(level slog.Level, msg string, args ...any) {
	if l.base.Enabled(context.Background(), level) {
		attrs := append([]any{"service", l.service, "method", clip(l.method), "partition", l.partition, "offset", l.offset}, args...)
		l.base.Log(context.Background(), level, msg, attrs...)
	}
}

func (l lazyLogger) Debug(msg string, args ...any) { l.log(slog.LevelDebug, msg, args...) }
func (l lazyLogger) Warn(msg string, args ...any)  { l.log(slog.LevelWarn, msg, args...) }

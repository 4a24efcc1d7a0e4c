package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/molgen/molgen/runtime/internal/envelope"
	"github.com/molgen/molgen/runtime/internal/transport"
)

// handle runs one request and answers it. It never panics and never stops
// the consumer: a request that the node's keys did not sign, or whose
// reply topic is not one of the app's, is dropped and counted (trust.go);
// other bad messages are answered with an error when they say where to,
// and logged otherwise.
func (s *server) handle(j *job) {
	msg := &j.msg
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
		s.t.warnLimited("bad request", "bad request", "service", s.svc.Name, "method", method, "partition", msg.Partition, "offset", msg.Offset, "err", err)
		if replyTo != "" {
			s.reply(log, replyTo, id, time.Now().Add(s.t.set.BadReplyTimeout),
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
	deadlineText := in.deadline
	deadline, err := parseDeadline(deadlineText)
	if err != nil {
		bad("invalid %s %q", hDeadline, clip(deadlineText))
		return
	}
	now := time.Now()
	if now.After(deadline) {
		s.t.stats.expired.Add(1)
		log.Debug("skipping a request whose deadline has passed", "deadline", deadlineText)
		return
	}
	// A request holds a slot until its deadline: bound what a caller (a
	// hostile one, or one without limits) may ask for.
	if limit := now.Add(s.t.set.MaxDeadline); deadline.After(limit) {
		log.Debug("clamping a request's deadline", "deadline", deadlineText, "max", s.t.set.MaxDeadline)
		deadline = limit
	}
	s.t.stats.served.Add(1)
	if len(trace) == 0 {
		trace = nil // as a request without trace context always had
	}
	// The request runs to its deadline even while the node drains.
	ctx := &j.ctx
	ctx.deadline = deadline
	defer ctx.cancel()
	req := &j.req
	*req = transport.Request{Service: s.svc.Name, Method: method, Schema: schema, Deadline: deadline, Payload: msg.Value, Caller: caller,
		Trace: trace, Topic: s.topic, Group: s.group, Partition: msg.Partition, Offset: msg.Offset, Written: msg.Time, Taken: taken}
	reply := s.svc.Handle(ctx, req)
	if replyTo == "" {
		return // oneway: the handler logged a failure
	}
	s.reply(log, replyTo, id, deadline, reply)
}

// reply writes the answer to a request to the caller's reply topic.
func (s *server) reply(log lazyLogger, replyTo, id string, deadline time.Time, reply transport.Reply) {
	// Past the deadline the caller has given up; a little grace still
	// lets a reply that is ready go out. A reply whose topic is gone is
	// dropped, one over the size limit becomes an ErrTooLarge error reply
	// (produce.go).
	err := s.t.writeReplyBy(context.Background(), deadline.Add(s.t.set.ReplyGrace), s.svc.Name, log.method, replyTo, id, reply)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("writing a reply", "reply_to", replyTo, "err", err)
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

package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// reliability is the state of the transport's writes, topic preparations
// and instance lookups (produce.go, prepare.go, instances.go).
type reliability struct {
	// batch is the most bytes a produce batch, and so a message, may take:
	// the smaller of the brokers' message.max.bytes and
	// Settings.MaxMessageBytes, less batchOverhead.
	batch int64

	limitsMu sync.Mutex
	limits   map[string]int64 // per topic: the most bytes a message may take

	flightsMu sync.Mutex
	flights   map[string]*flight // attempts in flight, by key (prepare.go)
}

// batchOverhead is what a record batch adds to its records (61 bytes of
// header in Kafka's format v2), with room to spare: a broker measures
// max.message.bytes against the whole batch.
const batchOverhead = 128

// messageSize over-estimates the bytes m takes in a record batch: the
// producer fills a batch up to the batch limit by it.
func messageSize(m *kafkago.Message) int64 {
	n := 32 + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// tooLargeError says that a message is over the size limit of its topic.
// It matches transport.ErrTooLarge.
type tooLargeError struct {
	what  string // "the request", "molgen: the reply of calc.Concat"
	topic string
	size  int64
	limit int64 // 0: a broker refused the message
}

func (e *tooLargeError) Error() string {
	what := e.what
	if what == "" {
		what = "the message"
	}
	if e.limit > 0 {
		return fmt.Sprintf("%s is %d bytes, over the limit of %d bytes for topic %s (Kafka's max.message.bytes, less %d bytes for the record batch)",
			what, e.size, e.limit, e.topic, batchOverhead)
	}
	return fmt.Sprintf("%s is %d bytes, more than the broker accepts for topic %s (its max.message.bytes)", what, e.size, e.topic)
}

// Unwrap returns transport.ErrTooLarge.
func (e *tooLargeError) Unwrap() error { return transport.ErrTooLarge }

// writeFailed is a write that failed for good: it names the topic, and the
// brokers when the cause is not a broker's answer (a lost connection).
type writeFailed struct {
	topic   string
	brokers []string
	err     error
}

func (e *writeFailed) Error() string {
	var ke kafkago.Error
	if errors.As(e.err, &ke) {
		return fmt.Sprintf("writing to topic %s: %v", e.topic, e.err)
	}
	return fmt.Sprintf("writing to topic %s (brokers %s): %v", e.topic, strings.Join(e.brokers, ","), e.err)
}

func (e *writeFailed) Unwrap() error { return e.err }

// writeFailure describes the failure of a write to topic caused by err.
func writeFailure(topic string, brokers []string, err error) error {
	return &writeFailed{topic: topic, brokers: brokers, err: err}
}

// errOrphaned ends the write of a reply whose reply topic is gone.
var errOrphaned = errors.New("the caller's reply topic is gone")

// failedMessages returns the messages of msgs that a write's error says
// were not written, and the error that decides what to do about them: one
// of a message too large first, then one that is not retriable, else the
// first. The producer (like kafka-go's Writer) reports a failed write as
// kafka.WriteErrors, one entry per message (nil for those written); any
// other error fails every message.
func failedMessages(msgs []kafkago.Message, err error, dup bool) ([]kafkago.Message, error) {
	var we kafkago.WriteErrors
	if !errors.As(err, &we) || len(we) != len(msgs) {
		return msgs, err
	}
	var failed []kafkago.Message
	var cause error
	for i, e := range we {
		if e == nil {
			continue
		}
		failed = append(failed, msgs[i])
		switch {
		case cause == nil,
			!isTooLarge(cause) && isTooLarge(e),
			!isTooLarge(cause) && retriable(cause, dup) && !retriable(e, dup):
			cause = e
		}
	}
	if cause == nil {
		return msgs, err
	}
	return failed, cause
}

// isTooLarge reports whether err is a refusal of a message (or its batch)
// for its size, by the producer or by a broker.
func isTooLarge(err error) bool {
	var tl *tooLargeError
	return errors.Is(err, kafkago.MessageSizeTooLarge) || errors.Is(err, kafkago.RecordListTooLarge) || errors.As(err, &tl)
}

// retriable reports whether a write that failed with err may be tried
// again. Errors that say nothing was written are (a moving or missing
// leader, a topic not known yet, a refused connection). Errors after which
// a message may or may not have been written (a connection lost during
// the request, a timeout) are only when dup says a duplicate is harmless.
func retriable(err error, dup bool) bool {
	if isTooLarge(err) {
		return false
	}
	var de *dialError
	if errors.As(err, &de) || errors.Is(err, errIdleClosed) {
		return true // nothing was written
	}
	var ke kafkago.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafkago.RequestTimedOut, kafkago.NotEnoughReplicasAfterAppend, kafkago.NetworkException:
			return dup
		}
		return ke.Temporary()
	}
	switch {
	case errors.Is(err, protocol.ErrNoTopic), errors.Is(err, protocol.ErrNoPartition), errors.Is(err, protocol.ErrNoLeader),
		errors.Is(err, syscall.ECONNREFUSED):
		return true
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded):
		return dup
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return dup
	}
	return false
}

// write sends messages that a duplicate cannot harm (the requests of
// calls, replies, heartbeats: a caller takes the first reply of an id),
// retrying retriable errors until ctx ends or the node has drained.
func (t *Transport) write(ctx context.Context, msgs ...kafkago.Message) error {
	return t.produce(ctx, false, true, nil, msgs...)
}

// produce writes msgs with the producer (alone: each in a produce request
// of its own), retrying the messages that failed with a retriable error
// (see retriable; dup says a duplicate is harmless) until ctx ends or the
// node has drained. A batch that a broker refused as too large is written
// again one message per request, so that only a message too large by
// itself fails (with a *tooLargeError). Before each retry, recheck (when
// set) may end the write with an error of its own. An error that ends the
// write names the topic and the cause.
func (t *Transport) produce(ctx context.Context, alone, dup bool, recheck func(context.Context, error) error, msgs ...kafkago.Message) error {
	return t.produceBy(ctx, time.Time{}, alone, dup, recheck, msgs...)
}

// produceBy is produce, ending at deadline too (when not zero), as if ctx
// had it: a call's request carries its deadline rather than a context of
// its own, made only when a write fails.
func (t *Transport) produceBy(ctx context.Context, deadline time.Time, alone, dup bool, recheck func(context.Context, error) error, msgs ...kafkago.Message) error {
	if !t.enter() {
		return transport.ErrClosed
	}
	defer t.exit()
	backoff := 10 * time.Millisecond
	var last error // the cause of the last retried failure
	for {
		// One write is one produce request per message at most; between
		// retries, a drained node stops waiting (a call's deadline may be
		// far away).
		err := t.prod.writeBy(ctx, deadline, msgs, alone)
		if err == nil {
			return nil
		}
		if !deadline.IsZero() {
			// What follows reads the end of the write from ctx.
			var cancel context.CancelFunc
			ctx, cancel = bounded(ctx, deadline)
			defer cancel()
			deadline = time.Time{}
		}
		failed, cause := failedMessages(msgs, err, dup)
		topic := failed[0].Topic
		if isTooLarge(cause) {
			var tl *tooLargeError
			if errors.As(cause, &tl) {
				return tl // the producer's own check: over the batch limit
			}
			if !alone {
				return t.produceAlone(ctx, dup, recheck, failed)
			}
			return &tooLargeError{topic: topic, size: messageSize(&failed[0])}
		}
		if errors.Is(cause, transport.ErrClosed) {
			return cause
		}
		if ctx.Err() != nil {
			if last != nil && errors.Is(cause, ctx.Err()) {
				cause = last // why it was retrying, rather than that time ran out
			}
			if errors.Is(cause, ctx.Err()) {
				return cause
			}
			return writeFailure(topic, t.cfg.Brokers, cause)
		}
		if !retriable(cause, dup) {
			return writeFailure(topic, t.cfg.Brokers, cause)
		}
		if recheck != nil {
			if err := recheck(ctx, cause); err != nil {
				return err
			}
		}
		if t.done.Err() != nil {
			return transport.ErrClosed
		}
		last = cause
		t.log.Debug("retrying write", "topic", topic, "messages", len(failed), "err", cause)
		msgs = failed
		sleep(ctx, backoff)
		backoff = min(2*backoff, t.set.RetryBackoffMax)
		if ctx.Err() != nil {
			return writeFailure(topic, t.cfg.Brokers, last)
		}
	}
}

// produceAlone writes each message in a produce request of its own: a
// broker refused a batch as too large, and the batch may have held the
// messages of other calls; alone, only a message too large by itself is
// refused. It returns the first error.
func (t *Transport) produceAlone(ctx context.Context, dup bool, recheck func(context.Context, error) error, msgs []kafkago.Message) error {
	var first error
	for _, m := range msgs {
		if err := t.produce(ctx, true, dup, recheck, m); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// learnBatchLimit reads the brokers' message.max.bytes and returns the
// most bytes a produce batch (and so a message) may take: the smaller of
// it and Settings.MaxMessageBytes, less batchOverhead. When the brokers do
// not say, Settings.MaxMessageBytes is used, and a broker's refusal is
// handled when it comes.
func (t *Transport) learnBatchLimit(ctx context.Context) int64 {
	limit := t.set.MaxMessageBytes
	if v, err := t.brokerMessageMax(ctx); err != nil {
		t.log.Debug("reading the brokers' message.max.bytes", "err", err)
	} else if v < limit {
		limit = v
	}
	t.rel.batch = limit - batchOverhead
	return t.rel.batch
}

// batchLimit returns the most bytes a message may take on any topic.
func (t *Transport) batchLimit() int64 {
	if t.rel.batch > 0 {
		return t.rel.batch
	}
	return t.set.MaxMessageBytes - batchOverhead
}

// brokerMessageMax returns the smallest message.max.bytes of the brokers.
func (t *Transport) brokerMessageMax(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, t.set.MetadataProbe)
	defer cancel()
	md, err := t.admin.Metadata(ctx, &kafkago.MetadataRequest{})
	if err != nil {
		return 0, err
	}
	var res []kafkago.DescribeConfigRequestResource
	for _, b := range md.Brokers {
		res = append(res, kafkago.DescribeConfigRequestResource{
			ResourceType: kafkago.ResourceTypeBroker, ResourceName: strconv.Itoa(b.ID), ConfigNames: []string{"message.max.bytes"},
		})
	}
	if len(res) == 0 {
		return 0, errors.New("no brokers in the metadata")
	}
	dc, err := t.admin.DescribeConfigs(ctx, &kafkago.DescribeConfigsRequest{Resources: res})
	if err != nil {
		return 0, err
	}
	smallest := int64(0)
	for _, r := range dc.Resources {
		if r.Error != nil {
			return 0, r.Error
		}
		for _, e := range r.ConfigEntries {
			if v, err := strconv.ParseInt(e.ConfigValue, 10, 64); err == nil && e.ConfigName == "message.max.bytes" && v > 0 && (smallest == 0 || v < smallest) {
				smallest = v
			}
		}
	}
	if smallest == 0 {
		return 0, errors.New("no message.max.bytes in the brokers' configs")
	}
	return smallest, nil
}

// describeLimit asks a broker whether topic exists and returns the most
// bytes a message to it may take (its max.message.bytes, less
// batchOverhead, at most batchLimit). DescribeConfigs goes to a broker and,
// unlike a metadata request, never creates a topic.
func (t *Transport) describeLimit(ctx context.Context, topic string) (limit int64, exists bool, err error) {
	res, err := t.admin.DescribeConfigs(ctx, &kafkago.DescribeConfigsRequest{Resources: []kafkago.DescribeConfigRequestResource{{
		ResourceType: kafkago.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"max.message.bytes"},
	}}})
	if err != nil {
		return 0, true, err
	}
	if len(res.Resources) != 1 {
		return 0, true, fmt.Errorf("describing topic %s: unexpected answer %+v", topic, res.Resources)
	}
	if e := res.Resources[0].Error; e != nil {
		if errors.Is(e, kafkago.UnknownTopicOrPartition) {
			return 0, false, nil
		}
		return 0, true, e
	}
	limit = t.batchLimit()
	for _, e := range res.Resources[0].ConfigEntries {
		if v, err := strconv.ParseInt(e.ConfigValue, 10, 64); err == nil && e.ConfigName == "max.message.bytes" && v-batchOverhead < limit {
			limit = max(v-batchOverhead, 1)
		}
	}
	return limit, true, nil
}

// topicLimit returns the most bytes a message to topic may take, as last
// learned (batchLimit when not known).
func (t *Transport) topicLimit(topic string) int64 {
	t.rel.limitsMu.Lock()
	defer t.rel.limitsMu.Unlock()
	if l, ok := t.rel.limits[topic]; ok {
		return l
	}
	return t.batchLimit()
}

func (t *Transport) setTopicLimit(topic string, limit int64) {
	t.rel.limitsMu.Lock()
	defer t.rel.limitsMu.Unlock()
	if t.rel.limits == nil || len(t.rel.limits) > 10000 {
		t.rel.limits = map[string]int64{} // callers come and go; relearning one costs a lookup
	}
	t.rel.limits[topic] = limit
}

// knowReplyTopic makes sure this node's metadata cache holds a caller's
// reply topic before a reply is written to it (a caller that started after
// the last metadata refresh would otherwise wait for the next one), and
// learns the topic's size limit. It reports whether the topic exists:
// false only when a broker says it does not (the caller has ended and its
// topic was deleted); when it cannot tell, true, and the write finds out.
func (t *Transport) knowReplyTopic(ctx context.Context, topic string) bool {
	if t.replyTopicKnown(topic) {
		return true
	}
	limit, exists, err := t.describeLimit(ctx, topic)
	if err != nil {
		t.log.Debug("describing a reply topic", "topic", topic, "err", err)
		return true
	}
	if !exists {
		return false
	}
	t.setTopicLimit(topic, limit)
	md, err := t.admin.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 {
		return true
	}
	if md.Topics[0].Error != nil {
		// Not cached: make the Transport fetch it with a metadata request
		// that would auto-create a missing topic. It exists (a broker just
		// said so), and a deleted reply topic is never brought back.
		if _, err := t.tr.RoundTrip(ctx, t.admin.Addr, &metadataAPI.Request{TopicNames: []string{topic}, AllowAutoTopicCreation: true}); err != nil {
			return true
		}
	}
	t.replyTopicsMu.Lock()
	if len(t.replyTopics) > 10000 {
		clear(t.replyTopics) // callers come and go; relearning one costs a lookup
	}
	t.replyTopics[topic] = true
	t.replyTopicsMu.Unlock()
	return true
}

// replyTopicKnown reports whether knowReplyTopic has learned topic.
func (t *Transport) replyTopicKnown(topic string) bool {
	t.replyTopicsMu.Lock()
	defer t.replyTopicsMu.Unlock()
	return t.replyTopics[topic]
}

// forgetReplyTopic drops what the transport knows about a reply topic, so
// that the next reply to it checks it again.
func (t *Transport) forgetReplyTopic(topic string) {
	t.replyTopicsMu.Lock()
	delete(t.replyTopics, topic)
	t.replyTopicsMu.Unlock()
	t.rel.limitsMu.Lock()
	delete(t.rel.limits, topic)
	t.rel.limitsMu.Unlock()
}

// replyTopicGone is the recheck of a reply's write: a write that fails
// because the topic is unknown ends with errOrphaned when a broker says
// the topic no longer exists.
func (t *Transport) replyTopicGone(topic string) func(context.Context, error) error {
	return func(ctx context.Context, err error) error {
		if !errors.Is(err, kafkago.UnknownTopicOrPartition) && !errors.Is(err, protocol.ErrNoTopic) {
			return nil
		}
		t.forgetReplyTopic(topic)
		if !t.knowReplyTopic(ctx, topic) {
			return errOrphaned
		}
		return nil
	}
}

// replyMessage builds the reply message to request id.

// writeReply writes the reply to request id, of service's method, to the
// caller's reply topic replyTo, retrying retriable errors until ctx ends.
//
//   - A reply whose topic is gone (its caller has ended) is dropped at once
//     and counted in Stats.Orphaned.
//   - A reply over the size limit of the topic (checked before it reaches
//     the producer, or refused by the broker) is replaced by an error reply
//     that the caller reads as ErrTooLarge, naming the method and the
//     sizes, and counted in Stats.TooLarge. It never fails the replies
//     written with it: a batch a broker refuses is written again one
//     message at a time.
//
// An error that ends the write because ctx ended matches ctx's error.
func (t *Transport) writeReply(ctx context.Context, service, method, replyTo, id string, reply transport.Reply) error {
	return t.writeReplyBy(ctx, time.Time{}, service, method, replyTo, id, reply)
}

// writeReplyBy is writeReply, ending at deadline too (when not zero), as
// if ctx had it: a context of its own is made only on slow paths.
func (t *Transport) writeReplyBy(ctx context.Context, deadline time.Time, service, method, replyTo, id string, reply transport.Reply) error {
	err := t.writeReplyMessage(ctx, deadline, service, method, replyTo, id, reply)
	if err == nil {
		return nil
	}
	if errors.Is(err, errOrphaned) {
		t.stats.orphaned.Add(1)
		t.log.Debug("dropping a reply: the caller's reply topic is gone", "service", service, "method", method, "reply_to", replyTo)
		return nil
	}
	ctx, cancel := bounded(ctx, deadline)
	defer cancel()
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (writing the reply: %v)", ctx.Err(), err)
	}
	return err
}

func (t *Transport) writeReplyMessage(ctx context.Context, deadline time.Time, service, method, replyTo, id string, reply transport.Reply) error {
	if !t.replyTopicKnown(replyTo) {
		ctx, cancel := bounded(ctx, deadline)
		defer cancel()
		if !t.knowReplyTopic(ctx, replyTo) {
			return errOrphaned
		}
	}
	msg := t.replyMessage(service, method, replyTo, id, reply)
	var err error
	if size, limit := messageSize(&msg), t.topicLimit(replyTo); size > limit {
		err = &tooLargeError{topic: replyTo, size: size, limit: limit}
	} else {
		err = t.produceBy(ctx, deadline, false, true, t.replyTopicGone(replyTo), msg)
	}
	if err == nil {
		return nil
	}
	ctx, cancel := bounded(ctx, deadline)
	defer cancel()
	var tl *tooLargeError
	if !errors.As(err, &tl) {
		return err
	}
	if tl.limit == 0 {
		t.forgetReplyTopic(replyTo) // the broker's limit is lower than learned: learn it again
	}
	tl.what = fmt.Sprintf("molgen: the reply of %s.%s", service, method)
	t.stats.tooLarge.Add(1)
	t.log.Warn("a reply is over the size limit: its caller gets ErrTooLarge", "service", service, "method", method, "reply_to", replyTo, "err", tl)
	ereply := t.replyMessage(service, method, replyTo, id, transport.Reply{Status: transport.StatusError, Payload: t.cfg.ErrorReply(tl)})
	return t.produce(ctx, false, true, t.replyTopicGone(replyTo), ereply)
}

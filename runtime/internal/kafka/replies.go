package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// calls is the calling side of a transport: the calls waiting for a
// reply, by correlation id, and the reader of this instance's reply topic
// that hands each reply to its call. The reply topic has one partition,
// read by this instance alone, from where it ended when the instance
// started (or from its start, after the watch created it again).
type calls struct {
	t       *Transport
	topic   string // this instance's reply topic
	session string // tells this process's correlation ids from an earlier one's with the same reply topic
	nextID  atomic.Uint64
	cl      *kgo.Client

	mu      sync.Mutex
	pending map[uint64]*waiter
	closing bool

	read       atomic.Bool  // a record was read: replies reach this instance
	lastRecord atomic.Int64 // unix nanoseconds: when the reader last returned a record
	resetAt    atomic.Int64 // when the watch last reset the topic (0: no reset awaits its first record)
	stop       context.CancelFunc
	done       chan struct{}
}

// startReplies creates this instance's reply topic and starts reading it
// from its current end.
func (t *Transport) startReplies(ctx context.Context) error {
	c := &calls{t: t, topic: replyTopic(t.cfg.App, t.cfg.Node, t.cfg.Instance), session: randomHex(8), pending: map[uint64]*waiter{}}
	t.calls = c
	if err := t.topics.ensure(ctx, c.topic, 1, t.set.ReplyRetention); err != nil {
		return err
	}
	// Replies are read from partition 0 only: a reply topic with more
	// partitions (made by someone else) would lose replies. (Fewer is a
	// broker whose metadata has not caught up with a topic just created:
	// ensure saw its partition led and served.)
	if md, err := metadata(ctx, t.w.cl, c.topic); err == nil && len(md.Topics) == 1 && len(md.Topics[0].Partitions) > 1 {
		return fmt.Errorf("molgen: reply topic %s has %d partitions, not 1: delete it (or start with another -instance)", c.topic, len(md.Topics[0].Partitions))
	}
	if _, err := t.topics.learnLimit(ctx, c.topic); err != nil {
		t.log.Debug("reading the size limit of the reply topic", "topic", c.topic, "err", err)
	}
	// Start exactly at the end as it is now, before any request is sent:
	// a reader told to start at "the end" would find it on its first
	// fetch, and skip a reply written before that.
	var end int64
	for {
		_, e, err := t.topics.offsets(ctx, c.topic)
		if err == nil {
			end = e
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("molgen: reading the end of %s: %w", c.topic, err)
		}
		t.log.Debug("retrying list offsets", "topic", c.topic, "err", err)
		sleep(ctx, 100*time.Millisecond)
	}
	cl, err := t.cfg.newClient(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.topic: {0: kgo.NewOffset().At(end)}}),
		// An offset past the end (the topic was created again) moves to
		// the end, never back to the start: that would replay every
		// reply the topic holds.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
	)
	if err != nil {
		return err
	}
	c.cl = cl
	rctx, stop := context.WithCancel(context.Background())
	c.stop, c.done = stop, make(chan struct{})
	c.lastRecord.Store(time.Now().UnixNano())
	go c.loop(rctx)
	return nil
}

// register adds a waiting call; false once the transport has drained.
func (c *calls) register(id uint64, w *waiter) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.pending[id] = w
	return true
}

// unregister removes a call that is over.
func (c *calls) unregister(id uint64, w *waiter) {
	c.mu.Lock()
	if c.pending[id] == w {
		delete(c.pending, id)
	}
	c.mu.Unlock()
}

// waiting returns how many calls wait for a reply.
func (c *calls) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// loop hands each reply to the call waiting for it.
func (c *calls) loop(ctx context.Context) {
	defer close(c.done)
	var failing time.Time // since when reading fails
	for {
		fs := c.cl.PollFetches(ctx)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			if c.skip(err) {
				return
			}
			// The watch finds out why (Kafka down, the topic lost) and
			// says so once; an error it cannot explain is warned about
			// when it lasts.
			c.t.watch.poke()
			if failing.IsZero() {
				failing = time.Now()
			}
			c.t.log.Debug("reading replies", "topic", c.topic, "err", err)
			if time.Since(failing) > 5*time.Second && !c.t.watch.outage.isDown() {
				c.t.warnLimited("read replies", "reading replies fails: calls time out until it works again", "topic", c.topic, "err", err, "failing_for", time.Since(failing).Round(time.Second))
			}
		})
		fs.EachRecord(func(m *kgo.Record) {
			failing = time.Time{}
			c.deliver(m)
		})
	}
}

// skip moves the reader past a batch that it refused to decompress (a
// hostile record: a compressed batch that decompresses to more than
// Settings.MaxDecompress), and reports whether err was that.
func (c *calls) skip(err error) bool {
	var big *kgo.ErrDecompressTooLarge
	if !errors.As(err, &big) {
		return false
	}
	c.t.stats.badMessages.Add(1)
	c.t.warnLimited("decompress", "skipping a compressed batch that would decompress to more than the limit (a hostile record?)",
		"topic", big.Topic, "partition", big.Partition, "offset", big.Offset, "next", big.NextOffset)
	c.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{big.Topic: {big.Partition: {Epoch: big.Epoch, Offset: big.NextOffset}}})
	return true
}

// deliver hands a reply to its call.
func (c *calls) deliver(m *kgo.Record) {
	c.t.watch.sawRecord()
	c.read.Store(true)
	if header(m, hHeartbeat) != "" {
		return // this instance's own heartbeat
	}
	session, counter, _ := strings.Cut(header(m, hID), ".")
	id, err := strconv.ParseUint(counter, 10, 64)
	if err != nil || session != c.session {
		// A reply to an earlier process with this reply topic, or junk.
		c.t.stats.lateReplies.Add(1)
		return
	}
	// A reply that its call's keys did not sign is dropped before it can
	// take the place of the real one. The signature is checked outside
	// the lock, with what the call said of itself; the waiter is pooled,
	// so it must still be the id's when the reply is handed over.
	c.mu.Lock()
	w := c.pending[id]
	var call pendingCall
	if w != nil {
		call = pendingCall{w.service, w.method, w.ring}
	}
	c.mu.Unlock()
	if w != nil && call.ring != nil && !c.t.replySigned(&call, c.topic, m) {
		return
	}
	if testHookDeliver != nil {
		testHookDeliver()
	}
	delivered := false
	c.mu.Lock()
	if w != nil && c.pending[id] == w {
		select {
		case w.ch <- outcome{rec: m}:
			delivered = true
		default: // a duplicate: the call already has its reply
		}
	}
	c.mu.Unlock()
	if !delivered {
		c.t.stats.lateReplies.Add(1)
	}
}

// testHookDeliver, when set by a test, runs between the lookup of a
// reply's call and its handover: where the call may end and its waiter
// serve another call.
var testHookDeliver func()

// close ends the calls still waiting (they fail with ErrClosed); no call
// waits after it.
func (c *calls) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closing = true
	for id, w := range c.pending {
		delete(c.pending, id)
		select {
		case w.ch <- outcome{}:
		default:
		}
	}
}

// stopReading stops the reader and closes its client.
func (c *calls) stopReading() {
	c.stop()
	c.cl.Close()
	<-c.done
}

// readFrom moves the reader to offset of the reply topic, which the watch
// created again: the client forgets the old topic (it holds its id).
func (c *calls) readFrom(offset int64) {
	c.cl.PurgeTopicsFromClient(c.topic)
	c.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{c.topic: {0: kgo.NewOffset().At(offset)}})
}

// topicMissing reports whether err is a fetch error that says the reply
// topic is gone.
func topicMissing(err error) bool {
	return errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID)
}

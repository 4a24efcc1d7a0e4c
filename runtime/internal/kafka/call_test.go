package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// replyFor is the record of an ok reply to call id of session.
func replyFor(session string, id uint64, value string) *kgo.Record {
	return &kgo.Record{Value: []byte(value), Headers: []kgo.RecordHeader{
		{Key: hVersion, Value: wireVersion},
		{Key: hID, Value: []byte(session + "." + strconv.FormatUint(id, 10))},
		{Key: hStatus, Value: statusOKValue},
	}}
}

// TestLateReplyNeverReachesALaterCall provokes the race between a reply
// that arrives and the call it answers giving up: the call's waiter goes
// back to the pool and serves the next call, which must never find the
// late reply waiting in it. Calls and replies race on goroutines of their
// own, thousands of times.
func TestLateReplyNeverReachesALaterCall(t *testing.T) {
	tr := &Transport{}
	tr.watch = newWatch(tr)
	c := &calls{t: tr, session: "s", pending: map[uint64]*waiter{}}
	tr.calls = c
	const rounds = 5000
	var wg sync.WaitGroup
	for id := uint64(1); id <= rounds; id++ {
		w := getWaiter()
		if !c.register(id, w) {
			t.Fatal("register refused")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.deliver(replyFor("s", id, fmt.Sprint("reply of ", id)))
		}()
		// The call gives up (its deadline), racing the reply.
		c.unregister(id, w)
		w.unref()
		// The next call, possibly on the same waiter.
		next := getWaiter()
		select {
		case o := <-next.ch:
			t.Fatalf("call %d found a reply in its fresh waiter: %+v", id+1, o)
		default:
		}
		next.unref()
	}
	wg.Wait()
	// Every reply either reached its call or was counted as late.
	if got := tr.stats.lateReplies.Load(); got > rounds {
		t.Errorf("%d late replies for %d calls", got, rounds)
	}
}

// TestLateReplyRaces: the two orders of a reply racing its call's end,
// each made to happen. (1) The reply is handed over, and the call ends
// without reading it (its deadline won): the waiter's next call must not
// find it. (2) The reply's call is looked up, then the call ends and its
// waiter serves a new call before the reply is handed over: the reply
// must not reach the new call.
func TestLateReplyRaces(t *testing.T) {
	tr := &Transport{}
	tr.watch = newWatch(tr)
	c := &calls{t: tr, session: "s", pending: map[uint64]*waiter{}}
	tr.calls = c
	for i := range 100 {
		id := uint64(2*i + 1)
		w := getWaiter()
		c.register(id, w)
		c.deliver(replyFor("s", id, "late"))
		c.unregister(id, w)
		w.unref()
		next := getWaiter()
		select {
		case o := <-next.ch:
			t.Fatalf("order 1: a new call found the reply of an ended one: %+v", o)
		default:
		}
		next.unref()
	}
	for i := range 100 {
		id, other := uint64(1000+2*i), uint64(1001+2*i)
		w := getWaiter()
		c.register(id, w)
		var next *waiter
		testHookDeliver = func() {
			c.unregister(id, w)
			w.unref()
			next = getWaiter()
			c.register(other, next)
		}
		c.deliver(replyFor("s", id, "late"))
		testHookDeliver = nil
		select {
		case o := <-next.ch:
			t.Fatalf("order 2: the reply of call %d reached call %d: %+v", id, other, o)
		default:
		}
		c.unregister(other, next)
		next.unref()
	}
}

// TestDeliverHandsEachReplyToItsCall: a reply reaches the call of its id
// once; a second copy (a resent request answered twice), a reply of
// another session and junk are counted as late, never handed over.
func TestDeliverHandsEachReplyToItsCall(t *testing.T) {
	tr := &Transport{}
	tr.watch = newWatch(tr)
	c := &calls{t: tr, session: "s", pending: map[uint64]*waiter{}}
	tr.calls = c
	w := getWaiter()
	c.register(7, w)
	c.deliver(replyFor("s", 7, "first"))
	c.deliver(replyFor("s", 7, "second"))
	c.deliver(replyFor("other", 7, "another session's"))
	c.deliver(&kgo.Record{Value: []byte("junk"), Headers: []kgo.RecordHeader{{Key: hID, Value: []byte("s.x")}}})
	c.deliver(replyFor("s", 8, "no such call"))
	if o := <-w.ch; o.rec == nil || string(o.rec.Value) != "first" {
		t.Errorf("the call got %+v", o)
	}
	select {
	case o := <-w.ch:
		t.Errorf("the call got a second reply %+v", o)
	default:
	}
	if got := tr.stats.lateReplies.Load(); got != 4 {
		t.Errorf("%d late replies counted, want 4", got)
	}
	c.close()
	if o := <-w.ch; o.rec != nil || o.err != nil {
		t.Errorf("after close a waiting call got %+v, want the empty outcome that says the node drained", o)
	}
	if c.register(9, getWaiter()) {
		t.Error("a call registered after close")
	}
}

// TestWriteOutcomes: every error a record can be written with maps to one
// of the transport's rules: too large (ErrTooLarge), topic gone (created
// again and written again), not authorized (said at once), closed
// (ErrClosed), purged (written again), anything else a failure naming the
// topic; wrapped and joined errors too.
func TestWriteOutcomes(t *testing.T) {
	wr := &writer{t: &Transport{cfg: Config{Brokers: []string{"b:9092"}}}}
	wrap := func(err error) error { return fmt.Errorf("produce: %w", err) }
	join := func(err error) error { return errors.Join(errors.New("other"), err) }
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{kerr.MessageTooLarge, "too large"},
		{wrap(kerr.RecordListTooLarge), "too large"},
		{kerr.UnknownTopicOrPartition, "gone"},
		{join(kerr.UnknownTopicID), "gone"},
		{kerr.TopicAuthorizationFailed, "not authorized"},
		{wrap(kerr.ClusterAuthorizationFailed), "not authorized"},
		{kgo.ErrClientClosed, "closed"},
		{errors.New("topic purged while buffered"), "purged"},
		{kerr.NotEnoughReplicas, "failed"},
		{context.DeadlineExceeded, "failed"},
	} {
		err := wr.outcome("t", c.err)
		var tl *tooLargeError
		var gone *topicGoneError
		var na *notAuthorizedError
		var wf *writeFailed
		got := "failed"
		switch {
		case err == nil:
			got = "ok"
		case errors.As(err, &tl) && errors.Is(err, transport.ErrTooLarge):
			got = "too large"
		case errors.As(err, &gone):
			got = "gone"
		case errors.As(err, &na):
			got = "not authorized"
		case errors.Is(err, transport.ErrClosed):
			got = "closed"
		case purged(err):
			got = "purged"
		case !errors.As(err, &wf):
			got = "not a writeFailed"
		}
		if got != c.want {
			t.Errorf("outcome(%v) = %v (%s), want %s", c.err, err, got, c.want)
		}
		if err != nil && !errors.Is(err, transport.ErrClosed) && !errors.Is(err, c.err) {
			t.Errorf("outcome(%v) = %v does not wrap the cause", c.err, err)
		}
	}
}

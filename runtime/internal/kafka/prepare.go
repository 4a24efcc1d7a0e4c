package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// flight is one attempt of shared, awaited by every caller of its key.
type flight struct {
	done chan struct{} // closed when the attempt has ended
	err  error
}

// shared runs fn once for all the concurrent callers of key: the first
// caller starts an attempt, on a goroutine of its own, and the others wait
// for it. The attempt runs with a context that ends after timeout or when
// the node has drained, not with any caller's: a caller whose context ends
// stops waiting, and the attempt goes on for the others. A finished
// attempt is forgotten, so that a failure is never cached: the next caller
// makes a new attempt.
func (t *Transport) shared(ctx context.Context, key string, timeout time.Duration, fn func(context.Context) error) error {
	t.rel.flightsMu.Lock()
	f := t.rel.flights[key]
	if f == nil {
		if !t.enter() {
			t.rel.flightsMu.Unlock()
			return transport.ErrClosed
		}
		f = &flight{done: make(chan struct{})}
		if t.rel.flights == nil {
			t.rel.flights = map[string]*flight{}
		}
		t.rel.flights[key] = f
		go func() {
			defer t.exit()
			actx, cancel := context.WithTimeout(t.done, timeout)
			f.err = fn(actx)
			cancel()
			t.rel.flightsMu.Lock()
			delete(t.rel.flights, key)
			t.rel.flightsMu.Unlock()
			close(f.done)
		}()
	}
	t.rel.flightsMu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ensureTopic creates topic when missing and waits until every partition
// has a leader and this node's metadata cache knows it (prepareTopic).
// Concurrent callers for one topic share one attempt: one CreateTopics and
// one wait for leaders, however many calls start at once. An attempt runs
// for at most Settings.AdminTimeout; a caller with time left after an
// attempt that ran out of time makes another.
func (t *Transport) ensureTopic(ctx context.Context, topic string, partitions int, retention time.Duration) error {
	for {
		t.topicsMu.Lock()
		ready := t.topics[topic]
		t.topicsMu.Unlock()
		if ready {
			return nil
		}
		err := t.shared(ctx, "topic "+topic, t.set.AdminTimeout, func(actx context.Context) error {
			return t.prepareTopic(actx, topic, partitions, retention)
		})
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			if errors.Is(err, ctx.Err()) {
				return fmt.Errorf("molgen: preparing topic %s: %w", topic, err)
			}
			return err
		case t.done.Err() != nil:
			return transport.ErrClosed
		case errors.Is(err, context.DeadlineExceeded):
			continue // the attempt ran out of time, this caller has some left
		}
		return err
	}
}

// prepareRoute makes sure the request topic of route r exists with leaders
// and knows the most bytes a request to it may take. Concurrent first
// calls of a service share one preparation.
func (t *Transport) prepareRoute(ctx context.Context, r *route) error {
	if !r.ready.Load() {
		if err := t.ensureTopic(ctx, r.topic, t.cfg.Partitions, t.set.RequestRetention); err != nil {
			return err
		}
		r.ready.Store(true)
	}
	if r.limit.Load() > 0 {
		return nil
	}
	return t.shared(ctx, "limit "+r.topic, t.set.AdminTimeout, func(actx context.Context) error {
		if r.limit.Load() > 0 {
			return nil
		}
		limit, exists, err := t.describeLimit(actx, r.topic)
		if err != nil || !exists {
			// Without an answer, the brokers' limit; a topic's lower one is
			// met when a broker refuses a request.
			t.log.Debug("reading the size limit of a request topic", "topic", r.topic, "err", err, "exists", exists)
			limit = t.batchLimit()
		}
		r.limit.Store(limit)
		return nil
	})
}

package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// instanceState is what the callers of one service know about its running
// instances: what the lookups of its consumer group found, shared by the
// calls waiting for the service.
type instanceState struct {
	mu         sync.Mutex
	checked    time.Time     // when the last lookup answered (zero: never)
	empty      bool          // the last lookup found the group without members
	emptySince time.Time     // when the lookups in a row that found it so began
	lookup     chan struct{} // closed when the lookup in flight ends; nil when none
}

// noInstanceError fails a call to a service that no running instance
// serves. It matches transport.ErrNoInstance.
type noInstanceError struct{ service, group string }

func (e *noInstanceError) Error() string {
	return fmt.Sprintf("no running instance serves service %q: its consumer group %s has no members; the request was not sent (kafka.wait_for_instances: true in the placement makes calls wait for an instance)", e.service, e.group)
}

// Unwrap returns transport.ErrNoInstance.
func (e *noInstanceError) Unwrap() error { return transport.ErrNoInstance }

// lostInstancesError fails a call whose request was written while its
// service had instances, and which no instance serves now. It matches
// transport.ErrMayHaveRun, not ErrNoInstance: the request stays in Kafka
// and runs if an instance takes it before its deadline.
type lostInstancesError struct{ service, group string }

func (e *lostInstancesError) Error() string {
	return fmt.Sprintf("no running instance serves service %q any more (its consumer group %s has no members): the request was written before they left, and runs if an instance starts before its deadline", e.service, e.group)
}

// Unwrap returns transport.ErrMayHaveRun.
func (e *lostInstancesError) Unwrap() error { return transport.ErrMayHaveRun }

// mayHaveRun is the error of a call that ended (its deadline, its
// context, the node's drain) after its request was written. It reads as
// err, and matches err and transport.ErrMayHaveRun.
type mayHaveRun struct{ err error }

func (e *mayHaveRun) Error() string   { return e.err.Error() }
func (e *mayHaveRun) Unwrap() []error { return []error{e.err, transport.ErrMayHaveRun} }

// maybeRan marks err, the end of a call whose request was written, as one
// that may have run (nil stays nil; an error that says so already is
// returned as it is).
func maybeRan(err error) error {
	if err == nil || errors.Is(err, transport.ErrMayHaveRun) {
		return err
	}
	return &mayHaveRun{err: err}
}

// admit decides, before a call's request is written, whether the
// service has an instance to run it: a call that would fail with
// ErrNoInstance fails before anything is written, so that it never runs.
// A lookup of the service's group younger than InstanceCheck/2 that
// found members is trusted (one runs in the background once it is half
// that old); otherwise the call waits for lookups until the group is
// found with members (nil) or without any twice InstanceCheck/2 apart
// (the error), and at most until deadline (when not zero) or the end of
// ctx (their errors: nothing was written).
func (t *Transport) admit(ctx context.Context, deadline time.Time, r *route) error {
	s := &r.inst
	fresh := t.set.InstanceCheck / 2
	s.mu.Lock()
	if !s.checked.IsZero() && !s.empty {
		age := time.Since(s.checked)
		refresh := age >= fresh/2 && s.lookup == nil
		s.mu.Unlock()
		if age < fresh {
			// Members a moment ago; under load the background lookup
			// keeps this fresh, so calls seldom wait for one.
			if refresh {
				go t.lookedUp(context.Background(), time.Now().Add(t.set.AdminTimeout), r, fresh/2)
			}
			return nil
		}
	} else {
		s.mu.Unlock()
	}
	// The call itself sees the group without members twice, fresh apart
	// (an instance that is starting has joined by then): a verdict of
	// earlier calls is not trusted, since an instance may have started.
	maxAge := admitFresh
	var confirmAt time.Time
	for {
		if !t.lookedUp(ctx, deadline, r, maxAge) {
			if err := ctx.Err(); err != nil {
				return err
			}
			return context.DeadlineExceeded
		}
		s.mu.Lock()
		empty, checked := s.empty, s.checked
		s.mu.Unlock()
		switch {
		case !empty:
			return nil
		case confirmAt.IsZero():
			confirmAt = checked.Add(fresh)
		case !checked.Before(confirmAt):
			return &noInstanceError{service: r.service, group: groupID(t.cfg.App, r.service)}
		}
		wait := time.Until(confirmAt)
		if !deadline.IsZero() {
			if !time.Now().Before(deadline) {
				return context.DeadlineExceeded
			}
			wait = min(wait, time.Until(deadline))
		}
		if wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			}
		}
		maxAge = time.Since(confirmAt) // a lookup made after confirmAt
	}
}

// admitFresh is how recent a lookup that found no member must be for a
// call to fail with ErrNoInstance without looking again.
const admitFresh = 100 * time.Millisecond

// noInstance reports whether the service of route r has no running
// instance: lookups of its consumer group at least InstanceCheck/2 apart
// found it without members, in a row. A group that is rebalancing still
// lists its members, and a member that is starting joins within moments,
// so only a group that stays empty counts; a lookup that fails tells
// nothing. The calls waiting for a service share its lookups, which are
// cached for InstanceCheck/2: at most one per service in that time. It
// waits for a lookup in flight while ctx lasts, until deadline at most
// (when not zero).
func (t *Transport) noInstance(ctx context.Context, deadline time.Time, r *route) bool {
	if !t.lookedUp(ctx, deadline, r, t.set.InstanceCheck/2) {
		return false
	}
	return r.inst.confirmedEmpty(t.set.InstanceCheck / 2)
}

// confirmedEmpty reports whether lookups at least fresh apart found the
// group without members, in a row.
func (s *instanceState) confirmedEmpty(fresh time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.empty && s.checked.Sub(s.emptySince) >= fresh
}

// lookedUp makes sure that r's group was looked up within maxAge: it
// starts a lookup unless one is in flight, and waits for it while ctx
// lasts, until deadline at most (when not zero). It reports whether the
// state is that recent.
func (t *Transport) lookedUp(ctx context.Context, deadline time.Time, r *route, maxAge time.Duration) bool {
	s := &r.inst
	s.mu.Lock()
	if !s.checked.IsZero() && time.Since(s.checked) < maxAge {
		s.mu.Unlock()
		return true
	}
	done := s.lookup
	if done == nil {
		if !t.enter() {
			s.mu.Unlock()
			return false
		}
		done = make(chan struct{})
		s.lookup = done
		go t.lookupInstances(r, done)
	}
	s.mu.Unlock()
	ctx, cancel := bounded(ctx, deadline)
	defer cancel()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// lookupInstances looks the consumer group of r's service up, records
// what it found in r.inst and closes done.
func (t *Transport) lookupInstances(r *route, done chan struct{}) {
	defer t.exit()
	group := groupID(t.cfg.App, r.service)
	ctx, cancel := context.WithTimeout(t.done, t.set.AdminTimeout)
	empty, err := t.groupEmpty(ctx, group)
	cancel()
	s := &r.inst
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	switch {
	case err != nil:
		t.log.Debug("looking up a consumer group", "group", group, "err", err)
		s.empty = false
	case empty && !s.empty:
		s.empty, s.emptySince = true, now
	case !empty:
		s.empty = false
	}
	s.checked = now
	s.lookup = nil
	close(done)
}

// groupEmpty asks the coordinator of a consumer group whether the group
// has no members: it is Empty (its members have left), or Dead or unknown
// (it never had any). A group that is rebalancing lists its members. A
// group of KIP-848's protocol is described by its own request.
func (t *Transport) groupEmpty(ctx context.Context, group string) (bool, error) {
	if t.set.GroupProtocol == GroupConsumer {
		gs, err := t.topics.adm.DescribeConsumerGroups(ctx, group)
		if err != nil {
			return false, err
		}
		g, ok := gs[group]
		switch {
		case !ok:
			return false, fmt.Errorf("no answer for group %s", group)
		case errors.Is(g.Err, kerr.GroupIDNotFound):
			return true, nil
		case g.Err != nil:
			return false, g.Err
		}
		return len(g.Members) == 0, nil
	}
	gs, err := t.topics.adm.DescribeGroups(ctx, group)
	if err != nil {
		return false, err
	}
	g, ok := gs[group]
	switch {
	case !ok:
		return false, fmt.Errorf("no answer for group %s", group)
	case errors.Is(g.Err, kerr.GroupIDNotFound):
		return true, nil
	case g.Err != nil:
		return false, g.Err
	}
	return len(g.Members) == 0 && (g.State == "Empty" || g.State == "Dead"), nil
}

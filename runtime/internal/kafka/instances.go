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
	return fmt.Sprintf("no running instance serves service %q: its consumer group %s has no members (the request stays queued until its deadline; kafka.wait_for_instances: true in the placement makes calls wait for an instance)", e.service, e.group)
}

// Unwrap returns transport.ErrNoInstance.
func (e *noInstanceError) Unwrap() error { return transport.ErrNoInstance }

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
	s := &r.inst
	fresh := t.set.InstanceCheck / 2
	s.mu.Lock()
	if s.checked.IsZero() || time.Since(s.checked) >= fresh {
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
		case <-ctx.Done():
			return false
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	return s.empty && s.checked.Sub(s.emptySince) >= fresh
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

package kafka

import (
	"context"
	"sync"
	"time"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// deadlineCtx is the context a handler runs with: it ends at the
// request's deadline, or when cancelled. Unlike context.WithDeadline it
// starts no timer until something waits for it (Done or AfterFunc): most
// handlers return long before their deadline without ever looking, and a
// timer per request is a large part of serving one. Err reads the clock,
// so a handler that only polls Err sees the deadline pass on time.
type deadlineCtx struct {
	deadline time.Time
	id       string // the call id of the request (transport.CallIDKey)

	mu    sync.Mutex
	done  chan struct{} // made on first Done or AfterFunc
	timer *time.Timer   // ends the context at the deadline, once done is made
	err   error
	funcs map[*afterFunc]struct{} // to run when the context ends
}

func newDeadlineCtx(deadline time.Time) *deadlineCtx { return &deadlineCtx{deadline: deadline} }

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// Value answers the request's call id for transport.CallIDKey.
func (c *deadlineCtx) Value(key any) any {
	if _, ok := key.(transport.CallIDKey); ok && c.id != "" {
		return c.id
	}
	return nil
}

func (c *deadlineCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startLocked()
	return c.done
}

// startLocked makes the Done channel and the timer that closes it.
func (c *deadlineCtx) startLocked() {
	if c.done != nil {
		return
	}
	c.done = make(chan struct{})
	if c.err != nil {
		close(c.done)
		return
	}
	if c.expiredLocked() {
		return // closed by endLocked
	}
	c.timer = time.AfterFunc(time.Until(c.deadline), c.expire)
}

func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expiredLocked()
	return c.err
}

// expiredLocked ends the context if its deadline has passed, and reports
// whether it has ended.
func (c *deadlineCtx) expiredLocked() bool {
	if c.err == nil && !time.Now().Before(c.deadline) {
		c.endLocked(context.DeadlineExceeded)
	}
	return c.err != nil
}

func (c *deadlineCtx) endLocked(err error) {
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	for a := range c.funcs {
		go a.f()
	}
	c.funcs = nil
}

func (c *deadlineCtx) expire() {
	c.mu.Lock()
	if c.err == nil {
		c.endLocked(context.DeadlineExceeded)
	}
	c.mu.Unlock()
}

// cancel ends the context (the request has been served).
func (c *deadlineCtx) cancel() {
	c.mu.Lock()
	if c.err == nil {
		c.endLocked(context.Canceled)
	}
	c.mu.Unlock()
}

// AfterFunc runs f on its own goroutine once the context ends, unless
// the returned stop is called first. Contexts derived from this one use it
// (see context.AfterFunc), as they would a context.WithDeadline's.
func (c *deadlineCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startLocked()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	if c.funcs == nil {
		c.funcs = map[*afterFunc]struct{}{}
	}
	c.funcs[a] = struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.funcs[a]
		delete(c.funcs, a)
		return ok
	}
}

type afterFunc struct{ f func() }

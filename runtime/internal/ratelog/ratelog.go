// Package ratelog keeps repeated warnings from flooding a node's log: a
// line of one kind goes out at most once per interval, and the next one
// says how many were held back. The Kafka transport and the node use it
// for what a broken peer or a failing broker can repeat without bound.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Every is how often one kind of repeated warning is logged at most.
const Every = 10 * time.Second

// Limiter lets through at most one log line per kind per interval and
// counts the lines it held back, so that a stream of bad messages or a
// failing loop cannot flood the log: the next line of that kind says how
// many were suppressed. The zero value limits to one line per Every.
type Limiter struct {
	every time.Duration    // zero means Every
	now   func() time.Time // nil means time.Now; tests replace it (NewTestLimiter)

	mu    sync.Mutex
	kinds map[string]*state
}

type state struct {
	last       time.Time // when a line of this kind was last let through
	suppressed int       // lines held back since then
}

// allow reports whether a line of kind may be logged now and, if so, how
// many lines of that kind were held back since the last one.
func (l *Limiter) Allow(kind string) (ok bool, suppressed int) {
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	every := l.every
	if every <= 0 {
		every = Every
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.kinds[kind]
	if st == nil {
		if l.kinds == nil {
			l.kinds = map[string]*state{}
		}
		if len(l.kinds) >= 1000 {
			// Kinds are a few fixed strings; never let a caller's mistake
			// grow the map without bound.
			clear(l.kinds)
		}
		st = &state{}
		l.kinds[kind] = st
	} else if now.Sub(st.last) < every {
		st.suppressed++
		return false, 0
	}
	suppressed, st.suppressed, st.last = st.suppressed, 0, now
	return true, suppressed
}

// log logs msg at level, unless a line of the same kind went out less
// than the limiter's interval ago; a line that follows suppressed ones
// carries their count as "suppressed".
func (l *Limiter) Log(log *slog.Logger, level slog.Level, kind, msg string, args ...any) {
	if !log.Enabled(context.Background(), level) {
		return
	}
	ok, suppressed := l.Allow(kind)
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	log.Log(context.Background(), level, msg, args...)
}

// NewTestLimiter returns a Limiter that reads the time from now.
func NewTestLimiter(now func() time.Time) *Limiter { return &Limiter{now: now} }

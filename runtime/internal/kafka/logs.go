package kafka

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// warnEvery is how often one kind of repeated warning is logged at most.
const warnEvery = 10 * time.Second

// logLimiter lets through at most one log line per kind per interval and
// counts the lines it held back, so that a stream of bad messages or a
// failing loop cannot flood the log: the next line of that kind says how
// many were suppressed. The zero value limits to one line per warnEvery.
type logLimiter struct {
	every time.Duration    // zero means warnEvery
	now   func() time.Time // nil means time.Now; tests replace it

	mu    sync.Mutex
	kinds map[string]*limitState
}

type limitState struct {
	last       time.Time // when a line of this kind was last let through
	suppressed int       // lines held back since then
}

// allow reports whether a line of kind may be logged now and, if so, how
// many lines of that kind were held back since the last one.
func (l *logLimiter) allow(kind string) (ok bool, suppressed int) {
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	every := l.every
	if every <= 0 {
		every = warnEvery
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.kinds[kind]
	if st == nil {
		if l.kinds == nil {
			l.kinds = map[string]*limitState{}
		}
		if len(l.kinds) >= 1000 {
			// Kinds are a few fixed strings; never let a caller's mistake
			// grow the map without bound.
			clear(l.kinds)
		}
		st = &limitState{}
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
func (l *logLimiter) log(log *slog.Logger, level slog.Level, kind, msg string, args ...any) {
	if !log.Enabled(context.Background(), level) {
		return
	}
	ok, suppressed := l.allow(kind)
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	log.Log(context.Background(), level, msg, args...)
}

// warnLimited logs a WARN of kind at most once per warnEvery, with the
// count of those suppressed in between. Use it for warnings that a broken
// peer or a failing broker can repeat without bound (malformed messages,
// failing fetches); kind groups the lines that are "the same problem",
// e.g. "bad request" or "fetch requests/"+service.
func (t *Transport) warnLimited(kind, msg string, args ...any) {
	t.limiter.log(t.log, slog.LevelWarn, kind, msg, args...)
}

// outage tracks whether Kafka answers this node, so that an outage is
// logged once at WARN when it starts (with its cause) and once at INFO
// when it ends, however many operations fail in between.
type outage struct {
	mu    sync.Mutex
	down  bool
	since time.Time
	fails int
}

// failed records that Kafka did not answer; it logs the first failure of
// an outage. It reports whether the outage is new.
func (o *outage) failed(log *slog.Logger, brokers string, cause error) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fails++
	if o.down {
		return false
	}
	o.down, o.since, o.fails = true, time.Now(), 1
	log.Warn("Kafka does not answer: calls wait or fail until it is back", "brokers", brokers, "err", cause)
	return true
}

// answered records that Kafka answered; it logs the end of an outage.
func (o *outage) answered(log *slog.Logger, brokers string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.down {
		return
	}
	o.down = false
	log.Info("Kafka answers again", "brokers", brokers, "outage", time.Since(o.since).Round(time.Millisecond), "failed_probes", o.fails)
}

// isDown reports whether an outage is going on.
func (o *outage) isDown() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.down
}

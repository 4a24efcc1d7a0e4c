package kafka

import (
	"log/slog"
	"sync"
	"time"
)

// warnLimited logs a WARN of kind at most once per ratelog.Every, with the
// count of those suppressed in between. Use it for warnings that a broken
// peer or a failing broker can repeat without bound (malformed messages,
// failing fetches); kind groups the lines that are "the same problem",
// e.g. "bad request" or "fetch requests/"+service.
func (t *Transport) warnLimited(kind, msg string, args ...any) {
	t.limiter.Log(t.log, slog.LevelWarn, kind, msg, args...)
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

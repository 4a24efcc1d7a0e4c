package kafka

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// Ready returns nil once every service served here has been given its
// partitions by its consumer group (or none, because other instances hold
// them all) and the reply reader has read a record (the instance's own
// heartbeat, written at start), while Kafka answers; otherwise, and from
// the moment Drain begins, an error saying what is missing. A broker that
// stops answering (down, or hung: its requests time out) makes the node
// unready within watchEvery+Settings.MetadataProbe (3 s by default).
func (t *Transport) Ready() error {
	if t.draining.Load() {
		return errors.New("draining")
	}
	if t.watch.outage.isDown() {
		return fmt.Errorf("Kafka at %s does not answer", strings.Join(t.cfg.Brokers, ","))
	}
	t.serversMu.Lock()
	var waiting []string
	for _, s := range t.servers {
		if !s.joined.Load() {
			waiting = append(waiting, s.svc.Name)
		}
	}
	t.serversMu.Unlock()
	if len(waiting) > 0 {
		sort.Strings(waiting)
		return fmt.Errorf("not yet assigned partitions of the request topics of: %s", strings.Join(waiting, ", "))
	}
	if !t.calls.read.Load() {
		return fmt.Errorf("reply topic %s not read yet", t.calls.topic)
	}
	if t.watch.resetAt.Load() != 0 {
		return fmt.Errorf("reply topic %s is being recovered", t.calls.topic)
	}
	t.watch.everReady.Store(true)
	return nil
}

// wedgedAfter is how long the watch may go without finishing a round
// before Healthy says the transport is wedged: a round waits for Kafka at
// most Settings.MetadataProbe and Settings.AdminTimeout, so only a stuck
// process (a deadlock, a starved scheduler) takes this long.
const wedgedAfter = time.Minute

// Healthy is liveness: it returns nil unless the transport is wedged (its
// watch has not finished a round for wedgedAfter). It never asks Kafka: a
// Kafka outage makes a node unready (Ready), and restarting it would not
// help.
func (t *Transport) Healthy() error {
	if last := t.watch.lastRound.Load(); last != 0 {
		if since := time.Since(time.Unix(0, last)); since > wedgedAfter {
			return fmt.Errorf("the transport's watch has not run for %v: the process is wedged", since.Round(time.Second))
		}
	}
	return nil
}

// noteReadiness logs a change of Ready once each way, after the node was
// first ready (its start logs "ready" itself).
func (w *watch) noteReadiness() {
	err := w.t.Ready()
	if w.t.draining.Load() {
		return // a drain says so itself
	}
	was := w.unready
	switch {
	case err != nil && was == "" && w.everReady.Load():
		w.unready = err.Error()
		w.t.log.Info("not ready: /readyz answers 503 until this clears", "why", err)
	case err == nil && was != "":
		w.unready = ""
		w.t.log.Info("ready again: /readyz answers 200", "was", was)
	}
}

// Lag returns the consumer lag of each partition served here, as of its
// last fetch: how many requests the partition held beyond it.
func (t *Transport) Lag() []transport.Lag {
	t.serversMu.Lock()
	servers := append([]*server(nil), t.servers...)
	t.serversMu.Unlock()
	var out []transport.Lag
	for _, s := range servers {
		s.lagMu.Lock()
		for p, n := range s.lag {
			out = append(out, transport.Lag{Service: s.svc.Name, Partition: p, Requests: n})
		}
		s.lagMu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

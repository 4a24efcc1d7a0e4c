package kafka

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// Ready returns nil once every service served here has been given its
// partitions by its consumer group (or none, because other instances hold
// them all) and the reply reader has read a record (the instance's own
// heartbeat, written at start); otherwise, and from the moment Drain
// begins, an error saying what is missing.
func (t *Transport) Ready() error {
	if t.draining.Load() {
		return errors.New("draining")
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
	return nil
}

// Healthy returns nil unless no broker answers the transport's probes.
func (t *Transport) Healthy() error {
	if t.watch.outage.isDown() {
		return fmt.Errorf("Kafka at %s does not answer", strings.Join(t.cfg.Brokers, ","))
	}
	return nil
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

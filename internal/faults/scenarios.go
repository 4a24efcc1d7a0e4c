package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/molgen/molgen/internal/broker"
	"github.com/molgen/molgen/internal/testsvc"
)

// scenarios, in the order they run. Each starts its own instances of its
// own app (its own topics and consumer groups) and stops them at the end.
var scenarios = []*scenario{
	{n: 1, key: "kill-one", title: "kill -9 of one of two instances", run: killOne},
	{n: 2, key: "kill-only", title: "kill -9 of the only instance, restart", run: killOnly},
	{n: 3, key: "sigterm", title: "SIGTERM of one of two instances", noFailures: true, noReruns: true, run: sigtermOne},
	{n: 4, key: "scale-out", title: "scale-out: a third instance joins", noFailures: true, noReruns: true, run: scaleOut},
	{n: 5, key: "broker-restart", ownKafka: true, title: "broker restart, data kept", run: brokerRestart},
	{n: 6, key: "broker-wipe", ownKafka: true, title: "broker restart, data wiped", run: brokerWipe},
	{n: 7, key: "broker-stall", ownKafka: true, title: "broker stalled 10 s (SIGSTOP)", run: brokerStall},
	{n: 8, key: "embedded-restart", title: "embedded broker restart, same address", embedded: true, run: embeddedRestart},
	{n: 9, key: "poison", title: "garbage, oversized, orphaned requests", noFailures: true, run: poison},
	{n: 10, key: "cold-start", title: "cold start: 500 concurrent first calls", noFailures: true, run: coldStart},
	{n: 11, key: "hostile", title: "hostile records: deep schemas, amplifying payloads, bombs", noFailures: true, run: hostile},
}

// kafkaAddr is the suite's Kafka (or the broker it was given), as a
// broker list.
func (e *env) kafkaAddr() []string {
	if e.s.brokers != nil {
		return e.s.brokers
	}
	return []string{e.s.kafka.Addr()}
}

// underLoad starts the named server instances on the scenario's Kafka,
// runs the load for cfg.pre, injects fault as the fault window (it ends
// when fault returns, unless fault set e.faultEnd itself), then lets the
// load run for post.
func (e *env) underLoad(instances []string, post time.Duration, fault func() error) error {
	if err := e.up(e.kafkaAddr(), instances...); err != nil {
		return err
	}
	e.startLoad()
	sleep(e.cfg.pre)
	e.faultStart = time.Now()
	if err := fault(); err != nil {
		return err
	}
	if e.faultEnd.IsZero() {
		e.faultEnd = time.Now()
	}
	sleep(post)
	return nil
}

// 1. Two instances serve; one is killed with SIGKILL while calls flow.
// Its requests in flight are run again by the other (at-least-once), so
// calls may see re-runs but should not fail for long.
func killOne(e *env) error {
	return e.underLoad([]string{"a", "b"}, e.cfg.post, func() error {
		a := e.servers[0]
		a.Signal(syscall.SIGKILL)
		a.Wait(10 * time.Second)
		return nil
	})
}

// 2. The only instance is killed with SIGKILL, stays dead for a while and
// is started again under the same instance name. Calls fail meanwhile
// (deadline, or ErrNoInstance) and succeed again after the restart.
func killOnly(e *env) error {
	return e.underLoad([]string{"a"}, e.cfg.post, func() error {
		a := e.servers[0]
		a.Signal(syscall.SIGKILL)
		a.Wait(10 * time.Second)
		sleep(e.cfg.down)
		restarted := time.Now()
		if _, err := e.startServer("a"); err != nil {
			return err
		}
		e.faultEnd = time.Now()
		e.note("a was down %v; restarted, it took %v to start", e.cfg.down, e.faultEnd.Sub(restarted).Round(10*time.Millisecond))
		return nil
	})
}

// 3. Two instances serve; one gets SIGTERM while calls flow. It drains:
// every call succeeds, none runs twice, and it exits 0 within the bound.
func sigtermOne(e *env) error {
	return e.underLoad([]string{"a", "b"}, e.cfg.post, func() error {
		e.faultEnd = e.term(e.servers[1], true)
		return nil
	})
}

// 4. Two instances serve; a third joins while calls flow. The cooperative
// rebalance moves partitions without failing or re-running a call.
func scaleOut(e *env) error {
	return e.underLoad([]string{"a", "b"}, e.cfg.post, func() error {
		_, err := e.startServer("x")
		return err
	})
}

// 5. The broker is stopped cleanly and started again on its data
// (kafka.sh restart) while calls flow.
func brokerRestart(e *env) error {
	return e.underLoad([]string{"a", "b"}, e.cfg.postBroker, e.s.kafka.Restart)
}

// 6. The broker is stopped and started on a wiped data directory (a new
// cluster: no topics, no offsets, no groups) while calls flow.
func brokerWipe(e *env) error {
	if err := e.up(e.kafkaAddr(), "a", "b"); err != nil {
		return err
	}
	e.startLoad()
	sleep(e.cfg.pre)
	e.readBack() // the requests of the first epoch, before they are lost
	e.faultStart = time.Now()
	if err := e.s.kafka.Stop(); err != nil {
		return err
	}
	e.cut()
	if err := e.s.kafka.Start(); err != nil {
		return err
	}
	e.faultEnd = time.Now()
	sleep(e.cfg.postBroker)
	return nil
}

// 7. The broker's JVM is stopped with SIGSTOP for cfg.stall and then
// continued: connections stay open, nothing answers.
func brokerStall(e *env) error {
	return e.underLoad([]string{"a", "b"}, e.cfg.postBroker, func() error {
		if err := e.s.kafka.Pause(); err != nil {
			return err
		}
		sleep(e.cfg.stall)
		return e.s.kafka.Resume()
	})
}

// 8. The embedded broker (internal/broker, what 'molgen broker' runs)
// restarts on the same address: it keeps nothing, like a wiped broker.
func embeddedRestart(e *env) error {
	b, err := broker.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	var mu sync.Mutex
	cur := b
	e.after = append(e.after, func() {
		mu.Lock()
		defer mu.Unlock()
		if cur != nil {
			cur.Close()
		}
	})
	addr := b.Addr()
	if err := e.up([]string{addr}, "a", "b"); err != nil {
		return err
	}
	e.startLoad()
	sleep(e.cfg.pre)
	e.readBack()
	e.faultStart = time.Now()
	mu.Lock()
	cur.Close()
	cur = nil
	mu.Unlock()
	e.cut()
	var nb *broker.Broker
	for i := 0; i < 100; i++ {
		if nb, err = broker.Start(addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("restarting the embedded broker on %s: %w", addr, err)
	}
	mu.Lock()
	cur = nb
	mu.Unlock()
	e.faultEnd = time.Now()
	sleep(e.cfg.postBroker)
	return nil
}

// 10. Two instances serve; a client node that has just started makes
// cfg.coldCalls calls at once, its first ones (cfg.coldRounds times, a
// fresh client each time). Every call must succeed within its deadline.
func coldStart(e *env) error {
	if err := e.up(e.kafkaAddr(), "a", "b"); err != nil {
		return err
	}
	// The warm-up client goes: only fresh ones call from here on.
	if err := e.client.Close(); err != nil {
		e.note("closing the warm-up client: %v", err)
	}
	e.client = nil
	e.loadStart = time.Now()
	for round := range e.cfg.coldRounds {
		c, err := e.newClient(fmt.Sprintf("cold%d", round))
		if err != nil {
			return err
		}
		calc := testsvc.NewCalcClient(c)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range e.cfg.coldCalls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				e.rec.do(calc, "Concat", e.cfg.callTimeout, false)
			}()
		}
		began := time.Now()
		close(start)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
			e.note("round %d: %d first calls of a fresh client done in %v", round+1, e.cfg.coldCalls, time.Since(began).Round(time.Millisecond))
		case <-time.After(e.cfg.callTimeout + 30*time.Second):
			e.problem("round %d: calls still running %v after they started", round+1, e.cfg.callTimeout+30*time.Second)
		}
		closed := make(chan error, 1)
		go func() { closed <- c.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				e.note("closing client cold%d: %v", round, err)
			}
		case <-time.After(30 * time.Second):
			e.problem("closing client cold%d took more than 30s", round)
		}
	}
	return nil
}

// runsPerInstance counts, per instance (per log), the calc requests it
// ran: the load's, the warm-up's and any injected ones.
func runsPerInstance(e *env) string {
	var parts []string
	for _, p := range e.servers {
		n := countLines(p.logPath, `msg="serving a request"`, "service=calc") - countLines(p.logPath, `msg="skipping a request`, "service=calc")
		parts = append(parts, fmt.Sprintf("%s=%d", strings.TrimSuffix(filepath.Base(p.logPath), ".log"), n))
	}
	return strings.Join(parts, " ")
}

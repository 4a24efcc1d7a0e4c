package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// The cluster scenarios (go run ./internal/faults -cluster): faults of one
// broker of kafka.sh's 3-broker cluster, each under the load of molgen's
// calls and, side by side over the same fault, of the franz-go comparator's
// (comparator.go). Both loads have the same shape (cfg.workers workers
// each, Concat and Where, the same deadline); their topics have the same
// partitions on the same brokers, with the same leaders, and every
// consumer group has the same coordinator (kafka.sh's cluster has one
// __consumer_offsets partition). Each scenario starts with the three
// brokers up and every replica in sync, and leaves them so, leaders moved
// back to their preferred replicas.

// clusterScenario is one fault of the cluster.
type clusterScenario struct {
	n      int // names the scenario's app and prefixes its calls' arguments (21-25: apart from the single-broker scenarios' numbers)
	letter string
	key    string // matched by -scenario, as the letter
	title  string
	// strict: molgen must meet absolute targets (no failed call, no
	// re-run, no second without a served call, calls of at most 2 s);
	// otherwise it must do no worse than the comparator.
	strict bool
	fault  func(c *cenv) error
}

var clusterScenarios = []*clusterScenario{
	{n: 21, letter: "a", key: "kill-leader", title: "kill -9 a request partition's leader, start it again", fault: killRequestLeader},
	{n: 22, letter: "b", key: "rolling-restart", title: "rolling SIGTERM restart of the three brokers", strict: true, fault: rollingRestart},
	{n: 23, letter: "c", key: "stall-leader", title: "SIGSTOP a request partition's leader, then SIGCONT", fault: stallLeader},
	{n: 24, letter: "d", key: "kill-reply-leader", title: "kill -9 the caller's reply topic leader, start it again", fault: killReplyLeader},
	{n: 25, letter: "e", key: "kill-coordinator", title: "kill -9 the group coordinator, start it again", fault: killCoordinator},
}

// longestCallStrict bounds every call of the strict scenario.
const longestCallStrict = 2 * time.Second

// cenv is one cluster scenario's run: molgen's side (env) and the
// comparator's.
type cenv struct {
	*env
	cs          *clusterScenario
	adm         *clusterAdmin
	cmp         *franzRPC
	molgenReply string // molgen's caller's reply topic
	cmpRecords  []record
	cmpReadErr  error
	cmpStart    time.Time // the comparator's load
	cmpEnd      time.Time
}

func (c *cenv) molgenRequests() string { return "molgen." + c.app + ".req.calc" }
func (c *cenv) molgenGroup() string    { return "molgen." + c.app + ".calc" }

// runClusterScenario runs one cluster scenario and returns its lines; a
// panic or a setup error is reported in them, the scenario's processes
// are stopped and the cluster made whole again.
func (s *suite) runClusterScenario(cs *clusterScenario) (row *clusterRow) {
	sc := &scenario{n: cs.n, key: cs.key, title: cs.title, noFailures: cs.strict, noReruns: cs.strict}
	cfg := s.cfg
	cfg.session, cfg.workers = cfg.clusterSession, cfg.clusterWorkers
	e := &env{s: s, sc: sc, cfg: cfg, dir: filepath.Join(s.work, cs.letter+"-"+cs.key), names: map[string]int{}}
	e.rec = newRecorder(fmt.Sprintf("f%02d", cs.n))
	c := &cenv{env: e, cs: cs}
	began := time.Now()
	func() {
		defer func() {
			if p := recover(); p != nil {
				e.err = fmt.Errorf("panic: %v", p)
			}
		}()
		if err := os.MkdirAll(e.dir, 0o755); err != nil {
			e.err = err
			return
		}
		e.err = c.run()
	}()
	c.finish()
	row = c.result()
	row.elapsed = time.Since(began)
	return row
}

// run sets both sides up, runs their loads and injects the fault.
func (c *cenv) run() error {
	adm, err := newClusterAdmin(c.s.kafka.Brokers())
	if err != nil {
		return err
	}
	c.adm = adm
	if _, err := adm.waitInSync(2 * time.Minute); err != nil {
		return err
	}
	if err := c.up(c.s.kafka.Brokers(), "a", "b"); err != nil {
		return err
	}
	if err := c.upComparator(); err != nil {
		return fmt.Errorf("the comparator: %w", err)
	}
	c.loadStart = time.Now()
	c.load = startPacedLoad(c.rec, c.calc, c.cfg.workers, c.cfg.callTimeout, c.cfg.clusterEvery)
	c.cmpStart = time.Now()
	c.cmp.load = startPacedLoad(c.cmp.rec, c.cmp.calc, c.cfg.workers, c.cfg.callTimeout, c.cfg.clusterEvery)
	sleep(c.cfg.pre)
	c.faultStart = time.Now()
	err = c.cs.fault(c)
	if c.faultEnd.IsZero() {
		c.faultEnd = time.Now()
	}
	if err != nil {
		return err
	}
	sleep(c.cfg.post)
	return nil
}

// upComparator creates the comparator's topics on the brokers of
// molgen's (request topic: molgen's; reply topic: molgen's caller's),
// starts its servers and caller, and waits until both servers answered.
func (c *cenv) upComparator() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	replies, err := c.adm.topicsWithPrefix(ctx, "molgen."+c.app+".reply.client.")
	if err != nil {
		return err
	}
	if len(replies) != 1 {
		return fmt.Errorf("molgen's caller should have one reply topic, found %v", replies)
	}
	c.molgenReply = replies[0]
	f, err := newFranzRPC(c.app, c.s.kafka.Brokers(), c.cfg.session, filepath.Join(c.dir, "franz.log"), fmt.Sprintf("g%02d", c.cs.n))
	if err != nil {
		return err
	}
	c.cmp = f
	if _, err := c.adm.mirrorTopic(ctx, f.reqTopic, c.molgenRequests(), nil); err != nil {
		return err
	}
	if _, err := c.adm.mirrorTopic(ctx, f.replyTopic, c.molgenReply, nil); err != nil {
		return err
	}
	if err := f.start(); err != nil {
		return err
	}
	// Ready when each server has partitions and a call went through:
	// franz-go's default partitioner (molgen's too) writes to one
	// partition for 64 KiB of values, so calls may reach one server only
	// for a long while.
	if err := f.waitAssigned(60 * time.Second); err != nil {
		return err
	}
	return warmUp(f.rec, f.calc, 60*time.Second)
}

// finish stops both loads at once, reads both request topics back, stops
// both sides and makes the cluster whole again.
func (c *cenv) finish() {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.stopLoad() }()
	if c.cmp != nil && c.cmp.load != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan struct{})
			go func() { c.cmp.load.finish(); close(done) }()
			select {
			case <-done:
			case <-time.After(c.cfg.callTimeout + 30*time.Second):
				c.problem("the comparator's calls still run %v after its load stopped", c.cfg.callTimeout+30*time.Second)
			}
			c.cmpEnd = time.Now()
		}()
	}
	wg.Wait()
	c.teardown()
	if c.cmp != nil {
		if c.cmp.load != nil {
			msgs, err := readTopic(c.brokers, c.cmp.reqTopic)
			c.cmpReadErr = err
			for _, m := range msgs {
				c.cmpRecords = append(c.cmpRecords, identifyFranz(m, c.cmp.rec.prefix, int(c.cmp.rec.nextID.Load())))
			}
		}
		c.cmp.close()
	}
	if err := c.restore(); err != nil {
		c.problem("the cluster could not be made whole again: %v", err)
	}
	if c.adm != nil {
		c.adm.close()
	}
}

// restore lets every broker run again (resumed, started), waits until
// every replica is in sync, and moves leaders back to their preferred
// replicas.
func (c *cenv) restore() error {
	k := c.s.kafka
	for n := int32(1); n <= clusterSize; n++ {
		if !k.Running(n) {
			if err := k.Broker("start", n); err != nil {
				return err
			}
			c.note("after the scenario: broker %d started again", n)
		} else {
			k.Broker("resume", n) // a no-op unless it was paused
		}
	}
	if c.adm == nil {
		return nil
	}
	if _, err := c.adm.waitInSync(3 * time.Minute); err != nil {
		return err
	}
	return c.adm.electPreferred()
}

// result turns both sides' calls into the scenario's lines and checks
// molgen's targets.
func (c *cenv) result() *clusterRow {
	row := &clusterRow{letter: c.cs.letter, title: c.cs.title, strict: c.cs.strict, err: c.err}
	if c.err != nil {
		row.problems = append(row.problems, "could not run: "+c.err.Error())
	}
	if !c.faultStart.IsZero() {
		row.notes = append(row.notes, fmt.Sprintf("fault from %s to %s", c.since(c.faultStart), c.since(c.faultEnd)))
	}
	row.notes = append(row.notes, c.notes...)
	row.problems = append(row.problems, c.problems...)
	if c.rec != nil && !c.loadStart.IsZero() {
		var logs []logRun
		for _, p := range c.servers {
			l, err := parseServerLog(p.logPath, nil)
			if err != nil {
				row.notes = append(row.notes, fmt.Sprintf("reading %s: %v", p.logPath, err))
			}
			logs = append(logs, l...)
		}
		w := window{c.loadStart, c.loadEnd, c.faultStart, c.faultEnd}
		acc := account(c.records, logs)
		row.molgen = summarize(implMolgen, c.rec.snapshot(), acc, c.records, c.readErr, w, c.cfg.lateBound)
		writeFailed(filepath.Join(c.dir, "calls-molgen.txt"), c.rec.snapshot(), acc, c.loadStart)
		if len(c.servers) > 0 {
			row.molgen.notes = append(row.molgen.notes, "calc requests run per instance: "+runsPerInstance(c.env))
		}
	}
	if c.cmp != nil && !c.cmpStart.IsZero() {
		w := window{c.cmpStart, c.cmpEnd, c.faultStart, c.faultEnd}
		acc := account(c.cmpRecords, c.cmp.runsSoFar())
		row.franz = summarize(implFranz, c.cmp.rec.snapshot(), acc, c.cmpRecords, c.cmpReadErr, w, c.cfg.lateBound)
		writeFailed(filepath.Join(c.dir, "calls-franz.txt"), c.cmp.rec.snapshot(), acc, c.cmpStart)
		if row.franz.wrong > 0 || row.franz.dupIDs > 0 {
			row.notes = append(row.notes, fmt.Sprintf("the comparator had %d wrong results and %d request ids written twice: look at it before trusting the comparison", row.franz.wrong, row.franz.dupIDs))
		}
	}
	if c.err == nil {
		problems, relative := checkTargets(c.cs.strict, row.molgen, row.franz, c.cfg.lateBound, longestCallStrict)
		row.problems = append(row.problems, problems...)
		if invariantsOnly {
			for _, r := range relative {
				row.notes = append(row.notes, "missed, not enforced with -invariants: "+r)
			}
			if row.molgen != nil && !row.molgen.recovered {
				row.problems = append(row.problems, "never recovered")
			}
		} else {
			row.problems = append(row.problems, relative...)
		}
	}
	return row
}

// victims: which broker each fault hits, and what it has.

// roles describes what broker n is to both sides now: the request
// partitions and reply topic it leads, whether it coordinates the groups.
func (c *cenv) roles(n int32) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var parts []string
	for _, t := range []struct{ label, topic string }{
		{"molgen's request topic", c.molgenRequests()}, {"molgen's reply topic", c.molgenReply},
		{"the comparator's request topic", c.cmp.reqTopic}, {"the comparator's reply topic", c.cmp.replyTopic},
	} {
		ps, err := c.adm.partitions(ctx, t.topic)
		if err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", t.label, err))
			continue
		}
		if s := led(n, t.label, ps); s != "" {
			parts = append(parts, "leads "+s)
		}
	}
	for _, g := range []struct{ label, group string }{{"molgen's", c.molgenGroup()}, {"the comparator's", c.cmp.group}} {
		if co, err := c.adm.coordinator(ctx, g.group); err == nil && co == n {
			parts = append(parts, "coordinates "+g.label+" group")
		}
	}
	if len(parts) == 0 {
		return "leads none of the scenario's partitions"
	}
	return strings.Join(parts, "; ")
}

// requestVictim picks the leader of a request partition, one that
// neither coordinates the groups nor leads the reply topics when there is
// one (so that the fault is the partition's), else one that does not
// coordinate, else partition 0's.
func (c *cenv) requestVictim() (int32, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	coord, err := c.adm.coordinator(ctx, c.molgenGroup())
	if err != nil {
		return -1, err
	}
	reply, err := c.adm.leader(ctx, c.molgenReply, 0)
	if err != nil {
		return -1, err
	}
	ps, err := c.adm.partitions(ctx, c.molgenRequests())
	if err != nil {
		return -1, err
	}
	sorted := ps.Sorted()
	if len(sorted) == 0 {
		return -1, fmt.Errorf("%s has no partitions", c.molgenRequests())
	}
	for _, pd := range sorted {
		if pd.Leader >= 0 && pd.Leader != coord && pd.Leader != reply {
			return pd.Leader, nil
		}
	}
	for _, pd := range sorted {
		if pd.Leader >= 0 && pd.Leader != coord {
			return pd.Leader, nil
		}
	}
	return sorted[0].Leader, nil
}

// killAndStart kills broker n (SIGKILL), leaves it down cfg.brokerDown,
// starts it again on its data and waits until its replicas are in sync.
// The fault is over when the broker is registered again.
func (c *cenv) killAndStart(n int32) error {
	c.note("broker %d %s", n, c.roles(n))
	if err := c.s.kafka.Broker("kill", n); err != nil {
		return err
	}
	c.note("kill -9 broker %d at %s", n, c.since(time.Now()))
	sleep(c.cfg.brokerDown)
	began := time.Now()
	if err := c.s.kafka.Broker("start", n); err != nil {
		return err
	}
	c.faultEnd = time.Now()
	c.note("broker %d started again at %s, registered %v later", n, c.since(began), c.faultEnd.Sub(began).Round(100*time.Millisecond))
	return c.noteInSync()
}

// noteInSync waits until every replica is in sync and says when.
func (c *cenv) noteInSync() error {
	d, err := c.adm.waitInSync(2 * time.Minute)
	if err != nil {
		return err
	}
	c.note("every replica in sync again at %s (waited %v)", c.since(time.Now()), d.Round(100*time.Millisecond))
	return nil
}

// (a) kill -9 the leader of a request partition, start it again.
func killRequestLeader(c *cenv) error {
	n, err := c.requestVictim()
	if err != nil {
		return err
	}
	return c.killAndStart(n)
}

// (b) restart the brokers one by one with SIGTERM (a controlled
// shutdown: leaders move first), each started again on its data, waiting
// between brokers until every replica is in sync.
func rollingRestart(c *cenv) error {
	for n := int32(1); n <= clusterSize; n++ {
		c.note("broker %d %s", n, c.roles(n))
		began := time.Now()
		if err := c.s.kafka.Broker("restart", n); err != nil {
			return err
		}
		c.note("restart -broker %d from %s: back %v later", n, c.since(began), time.Since(began).Round(100*time.Millisecond))
		if err := c.noteInSync(); err != nil {
			return err
		}
	}
	return nil
}

// (c) SIGSTOP the leader of a request partition for cfg.clusterStall,
// then SIGCONT: a hung broker (connections open, nothing answered), which
// the controller fences after broker.session.timeout.ms (9 s).
func stallLeader(c *cenv) error {
	n, err := c.requestVictim()
	if err != nil {
		return err
	}
	c.note("broker %d %s", n, c.roles(n))
	if err := c.s.kafka.Broker("pause", n); err != nil {
		return err
	}
	c.note("SIGSTOP broker %d at %s for %v", n, c.since(time.Now()), c.cfg.clusterStall)
	sleep(c.cfg.clusterStall)
	if err := c.s.kafka.Broker("resume", n); err != nil {
		return err
	}
	c.faultEnd = time.Now()
	return c.noteInSync()
}

// (d) kill -9 the leader of molgen's caller's reply topic (the
// comparator's caller's is on the same brokers), start it again.
func killReplyLeader(c *cenv) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := c.adm.leader(ctx, c.molgenReply, 0)
	if err != nil {
		return err
	}
	return c.killAndStart(n)
}

// (e) kill -9 the coordinator of the served service's group (every
// group's: the comparator's too), start it again.
func killCoordinator(c *cenv) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := c.adm.coordinator(ctx, c.molgenGroup())
	if err != nil {
		return err
	}
	if o, err := c.adm.coordinator(ctx, c.cmp.group); err == nil && o != n {
		c.note("the comparator's group is coordinated by broker %d, not %d: the sides do not lose the same coordinator", o, n)
	}
	return c.killAndStart(n)
}

// writeFailed writes every failed call of one side to path, and every
// call that took a second or more, in the order they started: when (from
// the load's start), how long, its error, and where its request went and
// how often it ran. For reading after a run.
func writeFailed(path string, calls []*call, acc *accounting, start time.Time) {
	sort.Slice(calls, func(i, j int) bool { return calls[i].start.Before(calls[j].start) })
	var b strings.Builder
	for _, c := range calls {
		if c.warmup || c.extra || c.kind == "" && c.end.Sub(c.start) < time.Second {
			continue
		}
		fmt.Fprintf(&b, "+%.3fs\t%v\t#%d %s\t%s\t%s\t%s\n", c.start.Sub(start).Seconds(), c.end.Sub(c.start).Round(time.Millisecond),
			c.id, c.method, c.kind, acc.describe(c.id), clip(fmt.Sprint(c.err), 300))
	}
	os.WriteFile(path, []byte(b.String()), 0o644)
}

package testsvc

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/short"
	"github.com/molgen/molgen/runtime"
)

// whereRecord returns the one Where request in app's calc request topic.
func whereRecord(t *testing.T, app string) *kgo.Record {
	t.Helper()
	var found *kgo.Record
	for _, rec := range kafkatest.Records(t, "molgen."+app+".req.calc") {
		if m, _ := kafkatest.Header(rec, "molgen-method"); m == "Where" {
			if found != nil {
				t.Fatal("two Where requests in the request topic, want one")
			}
			found = rec
		}
	}
	if found == nil {
		t.Fatal("no Where request in the request topic")
	}
	return found
}

// writeCopy writes a copy of rec (value edited by edit, when not nil) to
// partition of its topic, as anyone with write rights could.
func writeCopy(t *testing.T, rec *kgo.Record, partition int32, edit func([]byte) []byte) {
	t.Helper()
	value := rec.Value
	if edit != nil {
		value = edit(append([]byte(nil), value...))
	}
	cp := &kgo.Record{Topic: rec.Topic, Partition: partition, Value: value, Headers: rec.Headers}
	cl := kafkatest.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, cp).FirstErr(); err != nil {
		t.Fatalf("writing a copy of the request: %v", err)
	}
}

// waitFor waits up to 20s for ok.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not after 20s", what)
		}
	}
}

// TestRequestWrittenTwiceRunsOnce: a copy of a request that an instance
// already ran (written again by anyone, to the same partition) is not run
// again: the instance answers it with the first copy's reply (the caller,
// whose call is over, drops it as late) and counts it. A request that
// reuses the call id with another payload is another call, and runs.
func TestRequestWrittenTwiceRunsOnce(t *testing.T) {
	app := kafkatest.App("twice")
	impl := &CalcImpl{Instance: "a"}
	server := remoteNode(t, app, serverClient, "server", registerServer(impl))
	client := remoteNode(t, app, serverClient, "client", registerClient)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if w, err := NewCalcClient(client).Where(ctx, 0); err != nil || w != "a" {
		t.Fatalf("Where = %q, %v", w, err)
	}
	rec := whereRecord(t, app)
	late := client.Stats().LateReplies
	writeCopy(t, rec, rec.Partition, nil)
	waitFor(t, "the copy counted as a duplicate", func() bool { return server.Stats().Duplicates == 1 })
	waitFor(t, "the first reply sent again", func() bool { return client.Stats().LateReplies > late })
	if n := impl.Wheres.Load(); n != 1 {
		t.Errorf("the request ran %d times after a copy was written, want once", n)
	}

	// The same id with another payload (a duration of 1ns, not 0) is
	// not a copy.
	writeCopy(t, rec, rec.Partition, func(v []byte) []byte { v[len(v)-1] ^= 2; return v })
	waitFor(t, "a request reusing the id for other arguments run", func() bool { return impl.Wheres.Load() == 2 })
	if d := server.Stats().Duplicates; d != 1 {
		t.Errorf("%d duplicates counted, want 1 (a request with other arguments is not one)", d)
	}
}

// TestCallIDIsTheSameForEveryCopy: the implementation's runtime.CallID is
// the call's id, the same on another instance that runs a copy of the
// request (as after a redelivery: the other instance never saw the call),
// and it is the request's molgen-id header.
func TestCallIDIsTheSameForEveryCopy(t *testing.T) {
	short.Skip(t, "waits for two instances to share a consumer group")
	app := kafkatest.App("callid")
	a, b := &CalcImpl{Instance: "a"}, &CalcImpl{Instance: "b"}
	na := remoteNode(t, app, serverClient, "server", registerServer(a))
	nb := remoteNode(t, app, serverClient, "server", registerServer(b))
	client := remoteNode(t, app, serverClient, "client", registerClient)
	waitFor(t, "both instances ready", func() bool { return na.Ready() == nil && nb.Ready() == nil })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Each instance holds one of the two partitions once the group has
	// settled: a call to each.
	waitFor(t, "both instances served a call", func() bool {
		if _, err := NewCalcClient(client).Where(ctx, 0); err != nil {
			t.Fatal(err)
		}
		return len(a.CallIDs()) > 0 && len(b.CallIDs()) > 0
	})
	before := map[string]int{"a": len(a.CallIDs()), "b": len(b.CallIDs())}
	w, err := NewCalcClient(client).Where(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	first, other := a, b
	if w == "b" {
		first, other = b, a
	}
	// This call's request: the client's latest, its highest counter.
	var rec *kgo.Record
	var last uint64
	for _, r := range kafkatest.Records(t, "molgen."+app+".req.calc") {
		m, _ := kafkatest.Header(r, "molgen-method")
		rid, _ := kafkatest.Header(r, "molgen-id")
		_, counter, _ := strings.Cut(rid, ".")
		if n, err := strconv.ParseUint(counter, 10, 64); m == "Where" && err == nil && n >= last {
			rec, last = r, n
		}
	}
	id, _ := kafkatest.Header(rec, "molgen-id")
	ids := first.CallIDs()
	if got := ids[len(ids)-1]; got != id || id == "" {
		t.Fatalf("CallID in the implementation = %q, the request's molgen-id %q", got, id)
	}
	writeCopy(t, rec, 1-rec.Partition, nil)
	waitFor(t, "the copy run by the other instance", func() bool { return len(other.CallIDs()) > before[other.Instance] })
	oids := other.CallIDs()
	if got := oids[len(oids)-1]; got != id {
		t.Errorf("CallID of the copy on the other instance = %q, want %q", got, id)
	}
}

// TestResentCopiesFollowTheFirst: with two instances, a //molgen:retry
// call's resent copies go to the partition of the first copy, and so to
// the instance that runs it, which does not run them again: four slow
// calls, each resent at least once, run four times in all.
func TestResentCopiesFollowTheFirst(t *testing.T) {
	short.Skip(t, "waits for two instances to share a consumer group")
	app := kafkatest.App("resent")
	a, b := &CalcImpl{Instance: "a"}, &CalcImpl{Instance: "b"}
	na := remoteNode(t, app, serverClient, "server", registerServer(a))
	nb := remoteNode(t, app, serverClient, "server", registerServer(b))
	client := remoteNode(t, app, serverClient, "client", registerClient)
	waitFor(t, "both instances ready", func() bool { return na.Ready() == nil && nb.Ready() == nil })
	c := NewCalcClient(client)
	for i := range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		got, err := c.Slow(ctx, 700*time.Millisecond, "x")
		cancel()
		if err != nil || got != "x" {
			t.Fatalf("Slow %d = %q, %v", i, got, err)
		}
	}
	waitFor(t, "the resent copies counted", func() bool { return na.Stats().Duplicates+nb.Stats().Duplicates >= 4 })
	if runs := a.Slows.Load() + b.Slows.Load(); runs != 4 {
		t.Errorf("4 calls, each resent, ran %d times (a %d, b %d), want 4", runs, a.Slows.Load(), b.Slows.Load())
	}
}

// TestCallIDOfLocalCalls: in a monolith every call is local; CallID gives
// each call a unique id of its own.
func TestCallIDOfLocalCalls(t *testing.T) {
	n, err := runtime.NewNode(runtime.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	impl := &CalcImpl{}
	if err := RegisterCalc(n, impl); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c := NewCalcClient(n)
	for range 2 {
		if _, err := c.Where(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
	}
	ids := impl.CallIDs()
	if len(ids) != 2 || ids[0] == "" || ids[0] == ids[1] || !strings.HasPrefix(ids[0], "local-") {
		t.Errorf("CallIDs of two local calls = %q, want two different local ids", ids)
	}
}

// TestOnewayCopyRunsOnce: a oneway request carries its call id in
// molgen-call-id (no molgen-id: it asks for no reply), and a copy of it
// written again is not run again.
func TestOnewayCopyRunsOnce(t *testing.T) {
	app := kafkatest.App("onewaycopy")
	impl := &CalcImpl{}
	n := remoteNode(t, app, allRemote, "all", hostAll(impl))
	if err := NewCalcClient(n).Count(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the oneway call run", func() bool { return impl.Counter.Load() == 1 })
	recs := kafkatest.Records(t, "molgen."+app+".req.calc")
	if len(recs) != 1 {
		t.Fatalf("%d requests, want 1", len(recs))
	}
	if id, ok := kafkatest.Header(recs[0], "molgen-call-id"); !ok || id == "" {
		t.Fatal("a oneway request without molgen-call-id")
	}
	writeCopy(t, recs[0], recs[0].Partition, nil)
	waitFor(t, "the copy counted", func() bool { return n.Stats().Duplicates == 1 })
	if c := impl.Counter.Load(); c != 1 {
		t.Errorf("a oneway call written twice ran %d times, want once", c)
	}
}

package main

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/short"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFaultSuiteShort runs three scenarios of the suite, shortened, on the
// test broker (MOLGEN_TEST_BROKERS, else the embedded one): a SIGTERM of
// one of two instances under load (no failure, no re-run), malformed,
// oversized and orphaned requests written straight to the request topic
// (each that names a reply topic answered with an error), and a cold
// start (500 first calls of a fresh client succeed within their deadline). It
// keeps the suite's machinery working; the whole suite, with the broker
// faults, is run by hand: go run ./internal/faults.
func TestFaultSuiteShort(t *testing.T) {
	short.Skip(t, "runs node binaries under load while it injects faults")
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cfg := shortConfig()
	cfg.workers, cfg.pre, cfg.post = 4, time.Second, 3*time.Second
	b := make([]byte, 3)
	rand.Read(b)
	s := &suite{cfg: cfg, root: root, work: t.TempDir(), runID: "t" + hex.EncodeToString(b), out: testWriter{t}, brokers: kafkatest.Brokers(t)}
	t.Cleanup(killAll)
	for _, sc := range scenarios {
		if sc.key != "sigterm" && sc.key != "cold-start" && sc.key != "poison" {
			continue
		}
		r := s.runScenario(sc)
		var out strings.Builder
		printTable(&out, []*row{r})
		printNotes(&out, []*row{r})
		if r.verdict() != "ok" {
			t.Errorf("scenario %d:\n%s", sc.n, out.String())
		} else {
			t.Logf("scenario %d:\n%s", sc.n, out.String())
		}
		if r.calls < 100 {
			t.Errorf("scenario %d made only %d calls", sc.n, r.calls)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func TestAttr(t *testing.T) {
	line := `time=2026-12-02T02:38:23.389Z level=DEBUG msg="serving a request" node=server instance=a service=calc method=Concat partition=2 offset=17`
	for key, want := range map[string]string{"time": "2026-12-02T02:38:23.389Z", "msg": "serving a request", "service": "calc", "method": "Concat", "partition": "2", "offset": "17", "instance": "a", "node": "server", "nope": ""} {
		if got := attr(line, key); got != want {
			t.Errorf("attr(%s) = %q, want %q", key, got, want)
		}
	}
	// A key that is the end of another key is not it.
	if got := attr(`xservice=relay service=calc`, "service"); got != "calc" {
		t.Errorf("attr(service) = %q", got)
	}
}

// TestAccounting: the runs of each request are its serving lines minus its
// skipping lines, matched to calls through the records read back, epoch
// by epoch.
func TestAccounting(t *testing.T) {
	concat := func(epoch, p int, off int64, a string) record {
		m := &kgo.Record{Partition: int32(p), Offset: off, Value: encStrings(a, "b", "c"), Headers: hdrs("molgen-method", "Concat")}
		return identify(m, "f01", epoch, 100)
	}
	where := func(epoch, p int, off int64, id int) record {
		m := &kgo.Record{Partition: int32(p), Offset: off, Value: binary.AppendVarint(nil, int64(whereBase)+int64(id)), Headers: hdrs("molgen-method", "Where")}
		return identify(m, "f01", epoch, 100)
	}
	recs := []record{
		concat(0, 0, 0, "f01.1.a"), // call 1: runs once
		concat(0, 0, 1, "f01.2.a"), // call 2: runs twice (redelivered)
		concat(0, 1, 0, "f01.3.a"), // call 3: expired, skipped
		concat(0, 1, 1, "f01.4.a"), // call 4: written twice, both run
		concat(0, 2, 0, "f01.4.a"),
		where(0, 3, 0, 5),             // call 5: runs once
		concat(0, 3, 1, "orphan.1.a"), // an injected request
		concat(1, 0, 0, "f01.6.a"),    // call 6, after the broker lost its data: offsets again from 0
		concat(0, 5, 0, "f01.7.a"),    // call 7: gone past (o1 of its partition ran, o0 never)
		concat(0, 5, 1, "f01.8.a"),
	}
	if recs[0].call != 1 || recs[5].call != 5 || recs[6].tag != "orphan" || recs[7].call != 6 {
		t.Fatalf("identify: %+v", recs)
	}
	dir := t.TempDir()
	cut := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	line := func(ts, msg, method string, p, o int) string {
		return "time=" + ts + ` level=DEBUG msg="` + msg + `" node=server instance=a service=calc method=` + method + " partition=" + strconv.Itoa(p) + " offset=" + strconv.Itoa(o) + "\n"
	}
	const before, after = "2026-12-02T02:59:59.000Z", "2026-12-02T03:00:01.000Z"
	logA := line(before, "serving a request", "Concat", 0, 0) +
		line(before, "serving a request", "Concat", 0, 1) +
		line(before, "serving a request", "Concat", 1, 0) +
		line(before, "skipping a request whose deadline has passed", "Concat", 1, 0) +
		line(before, "serving a request", "Concat", 1, 1) +
		line(before, "serving a request", "Where", 3, 0) +
		line(before, "serving a request", "Concat", 3, 1) +
		line(before, "serving a request", "Concat", 3, 2) + // not read back
		line(before, "serving a request", "Concat", 5, 1) +
		`time=` + before + ` level=DEBUG msg="serving a request" service=relay method=Sqrt partition=0 offset=0` + "\n"
	logB := line(before, "serving a request", "Concat", 0, 1) +
		line(before, "serving a request", "Concat", 2, 0) +
		line(after, "serving a request", "Concat", 0, 0)
	var logs []logRun
	for name, text := range map[string]string{"a.log": logA, "b.log": logB} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := parseServerLog(path, []time.Time{cut})
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l...)
	}
	a := account(recs, logs)
	for id, want := range map[int]int{1: 1, 2: 2, 3: 0, 4: 2, 5: 1, 6: 1, 7: 0, 8: 1} {
		if a.runs[id] != want {
			t.Errorf("call %d ran %d times, want %d", id, a.runs[id], want)
		}
	}
	if a.requests[4] != 2 || a.requests[1] != 1 {
		t.Errorf("requests: %v", a.requests)
	}
	if a.jumped != 1 || !strings.HasPrefix(a.jumpedAt[0], "p5/o0 ") {
		t.Errorf("jumped over: %d %v, want p5/o0", a.jumped, a.jumpedAt)
	}
	if a.tagRuns["orphan"] != 1 || a.unattrRuns != 1 || a.unreadRuns != 1 {
		t.Errorf("orphan runs %d, unattributed %d (%d unread); want 1, 1 (1)", a.tagRuns["orphan"], a.unattrRuns, a.unreadRuns)
	}
}

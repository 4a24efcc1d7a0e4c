package main

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	molgen "github.com/molgen/molgen/runtime"
)

// Unit tests of what the cluster scenarios add, without Kafka: the
// stretches without a served call, the recovery, request ids written
// twice, molgen's targets, the table, the comparator's offsets and the
// selection of scenarios. The scenarios themselves run with
// go run ./internal/faults -cluster.

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func TestGapsOver(t *testing.T) {
	for _, c := range []struct {
		name     string
		from, to float64
		ends     []float64
		min      time.Duration
		want     []span
	}{
		{"no success at all: the whole load", 0, 10, nil, time.Second, []span{{at(0), at(10)}}},
		{"steady", 0, 3, []float64{0.5, 1.2, 1.9, 2.6}, time.Second, nil},
		{"unsorted, one gap in the middle", 0, 10, []float64{9.5, 0.2, 5.4, 0.6}, time.Second, []span{{at(0.6), at(5.4)}, {at(5.4), at(9.5)}}},
		{"gap at the start and at the end", 0, 10, []float64{2, 2.5}, time.Second, []span{{at(0), at(2)}, {at(2.5), at(10)}}},
		{"exactly min is a gap", 0, 2, []float64{0.5, 1.5, 2}, time.Second, []span{{at(0.5), at(1.5)}}},
		{"ends outside the load do not count", 1, 4, []float64{0.5, 1.2, 3.9, 5}, time.Second, []span{{at(1.2), at(3.9)}}},
		{"min 0: every stretch", 0, 1, []float64{0.4}, 0, []span{{at(0), at(0.4)}, {at(0.4), at(1)}}},
		{"no load", 0, 0, []float64{1}, time.Second, nil},
	} {
		var ends []time.Time
		for _, e := range c.ends {
			ends = append(ends, at(e))
		}
		if got := gapsOver(at(c.from), at(c.to), ends, c.min); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: gapsOver = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestLongestGap(t *testing.T) {
	d, from := longestGap(at(0), at(20), []time.Time{at(1), at(2), at(9.5), at(10), at(19.9)})
	if d != 9900*time.Millisecond || !from.Equal(at(10)) {
		t.Errorf("longestGap = %v from %v, want 9.9s from +10s", d, from.Sub(t0))
	}
	if d, _ := longestGap(at(0), at(1), nil); d != time.Second {
		t.Errorf("no successful call: longest gap %v, want the whole load (1s)", d)
	}
}

func TestRecoveryOf(t *testing.T) {
	gaps := func(s ...float64) []span {
		var out []span
		for i := 0; i+1 < len(s); i += 2 {
			out = append(out, span{at(s[i]), at(s[i+1])})
		}
		return out
	}
	for _, c := range []struct {
		name       string
		fault      float64
		failStarts []float64
		gaps       []span
		want       time.Duration
		recovered  bool
	}{
		{"nothing happened", 3, nil, nil, 0, false},
		{"a gap before the fault is not the fault's", 3, nil, gaps(0, 1.5), 0, false},
		{"last failed call started 4.5 s in", 3, []float64{3.1, 7.5, 5}, nil, 4500 * time.Millisecond, true},
		{"a gap ending later than the last failure", 3, []float64{4}, gaps(3.2, 11), 8 * time.Second, true},
		{"a failure later than the gaps", 3, []float64{12}, gaps(3.2, 11), 9 * time.Second, true},
		{"a call that started before the fault and failed", 3, []float64{2.5}, nil, 0, true},
		{"no fault, no recovery", 0, []float64{2}, nil, 0, false},
	} {
		var fs []time.Time
		for _, f := range c.failStarts {
			fs = append(fs, at(f))
		}
		fault := at(c.fault)
		if c.fault == 0 {
			fault = time.Time{}
		}
		got, ok := recoveryOf(fault, fs, c.gaps)
		if got != c.want || ok != c.recovered {
			t.Errorf("%s: recoveryOf = %v, %v; want %v, %v", c.name, got, ok, c.want, c.recovered)
		}
	}
}

// TestDuplicateIDs counts ids written in more than one record: the read
// back of a topic where a retried write landed twice.
func TestDuplicateIDs(t *testing.T) {
	recs := []record{{rid: "s.1"}, {rid: "s.2"}, {rid: "s.2"}, {rid: "s.3"}, {rid: "s.3"}, {rid: "s.3"}, {rid: ""}, {rid: ""}, {rid: "t.1"}}
	if n := duplicateIDs(recs); n != 2 {
		t.Errorf("duplicateIDs = %d, want 2 (s.2 twice, s.3 three times; records without an id do not count)", n)
	}
	if n := duplicateIDs(nil); n != 0 {
		t.Errorf("duplicateIDs(nil) = %d", n)
	}
}

// TestSummarize counts one side's calls: failures by kind, wrong results,
// calls run more than once (from the runs matched to the read-back), ids
// written twice, the longest call, the longest stretch without a success.
func TestSummarize(t *testing.T) {
	mk := func(id int, start, end float64, err error, wrong string) *call {
		c := &call{id: id, method: "Concat", start: at(start), end: at(end), timeout: 5 * time.Second, err: err, wrong: wrong}
		if err != nil {
			c.kind = kindOf(err)
		}
		return c
	}
	calls := []*call{
		mk(1, 0, 0.1, nil, ""),
		mk(2, 0.1, 0.2, nil, ""),
		mk(3, 3, 8, context.DeadlineExceeded, ""),
		mk(4, 3.5, 5, molgen.ErrNoInstance, ""),
		mk(5, 6, 7.5, nil, ""),
		mk(6, 7.5, 7.6, nil, "Concat = x, want y"),
		{id: 7, method: "Where", start: at(0), end: at(9), warmup: true, timeout: time.Second}, // not counted
		mk(8, 8, 8.4, nil, ""),
	}
	acc := &accounting{runs: map[int]int{1: 1, 2: 2, 3: 1, 5: 3, 8: 1}, requests: map[int]int{1: 1, 2: 1, 5: 2}}
	recs := []record{{rid: "a"}, {rid: "b"}, {rid: "b"}}
	w := window{loadStart: at(0), loadEnd: at(8.5), faultStart: at(3), faultEnd: at(4)}
	r := summarize(implMolgen, calls, acc, recs, nil, w, time.Second)
	if r.calls != 7 || r.ok != 4 || r.wrong != 1 || r.failures() != 2 || r.failed[kindDeadline] != 1 || r.failed[kindNoInstance] != 1 {
		t.Errorf("counts: calls %d ok %d wrong %d failed %v", r.calls, r.ok, r.wrong, r.failed)
	}
	if r.runMore != 2 || r.reruns != 3 || r.failedRan != 1 || r.multiWrites != 1 || r.dupIDs != 1 {
		t.Errorf("runs: more than once %d, extra %d, failed but ran %d, multi-writes %d, dup ids %d", r.runMore, r.reruns, r.failedRan, r.multiWrites, r.dupIDs)
	}
	if r.longest != 5*time.Second || r.late != 0 {
		t.Errorf("longest %v late %d", r.longest, r.late)
	}
	// Successes ended at 0.1, 0.2, 7.5, 8.4 (the load ended at 8.5): the
	// longest stretch without one is 0.2 to 7.5.
	if r.gap != 7300*time.Millisecond || !r.gapAt.Equal(at(0.2)) {
		t.Errorf("gap %v from %v", r.gap, r.gapAt.Sub(t0))
	}
	// Recovered when the last failed call started (3.5 s) or the last
	// stretch of a second without a success ended (7.5 s), after the fault
	// began (3 s).
	if !r.recovered || r.recovery != 4500*time.Millisecond {
		t.Errorf("recovery %v (%v)", r.recovery, r.recovered)
	}
	if want := []int{2, 0, 0, 0, 0, 0, 0, 1, 1}; !reflect.DeepEqual(r.perSecond, want) {
		t.Errorf("per second %v, want %v", r.perSecond, want)
	}
	// A call that never returned counts as hung and failed.
	hung := &call{id: 9, method: "Where", start: at(1), timeout: time.Second}
	if r := summarize(implFranz, []*call{hung}, &accounting{runs: map[int]int{}, requests: map[int]int{}}, nil, nil, w, time.Second); r.hung != 1 || r.failed[kindOther] != 1 {
		t.Errorf("a call that never returned: hung %d failed %v", r.hung, r.failed)
	}
}

func TestCheckTargets(t *testing.T) {
	clean := func() *implRow {
		return &implRow{calls: 100, ok: 100, failed: map[string]int{}, longest: 300 * time.Millisecond, gap: 200 * time.Millisecond}
	}
	type mod func(m, f *implRow)
	for _, c := range []struct {
		name   string
		strict bool
		mod    mod
		want   []string // substrings of the problems, in order; none: no problem
	}{
		{"strict, clean", true, func(m, f *implRow) {}, nil},
		{"strict: a failed call", true, func(m, f *implRow) { m.failed[kindDeadline] = 1 }, []string{"1 calls failed (1 deadline); none may"}},
		{"strict: a re-run", true, func(m, f *implRow) { m.reruns, m.runMore = 1, 1 }, []string{"1 re-runs"}},
		{"strict: a second without a served call", true, func(m, f *implRow) { m.gap = time.Second }, []string{"without a served call"}},
		{"strict: just under a second", true, func(m, f *implRow) { m.gap = 999 * time.Millisecond }, nil},
		{"strict: a call over 2 s", true, func(m, f *implRow) { m.longest = 2001 * time.Millisecond }, []string{"longest call 2.001s; at most 2s"}},
		{"strict: exactly 2 s", true, func(m, f *implRow) { m.longest = 2 * time.Second }, nil},
		{"any: a wrong result", false, func(m, f *implRow) { m.wrong = 2 }, []string{"2 wrong results"}},
		{"any: an id written twice", false, func(m, f *implRow) { m.dupIDs = 1 }, []string{"1 request ids written more than once"}},
		{"any: a late call", false, func(m, f *implRow) { m.late = 3 }, []string{"3 calls returned more than 1s after their deadline"}},
		{"any: a hung call", true, func(m, f *implRow) { m.hung = 1 }, []string{"1 calls never returned"}},
		{"relative: as many failures as the comparator", false, func(m, f *implRow) { m.failed[kindDeadline], f.failed[kindDeadline] = 8, 8 }, nil},
		{"relative: more failures than the comparator", false, func(m, f *implRow) { m.failed[kindNoInstance], f.failed[kindDeadline] = 9, 8 }, []string{"9 failed calls, more than the comparator's 8"}},
		{"relative: recovered 1 s later is allowed", false, func(m, f *implRow) {
			m.recovery, m.recovered, f.recovery, f.recovered = 9*time.Second, true, 8*time.Second, true
		}, nil},
		{"relative: recovered more than 1 s later", false, func(m, f *implRow) {
			m.recovery, m.recovered, f.recovery, f.recovered = 9100*time.Millisecond, true, 8*time.Second, true
		}, []string{"recovered 9.1 s after the fault began, the comparator 8.0 s"}},
		{"relative: the comparator had nothing to recover from", false, func(m, f *implRow) {
			m.recovery, m.recovered = 1500*time.Millisecond, true
		}, []string{"recovered 1.5 s after the fault began, the comparator —"}},
		{"relative: molgen had nothing to recover from", false, func(m, f *implRow) {
			f.recovery, f.recovered = 5*time.Second, true
		}, nil},
	} {
		m, f := clean(), clean()
		c.mod(m, f)
		got := allTargets(c.strict, m, f, time.Second, 2*time.Second)
		if len(got) != len(c.want) {
			t.Errorf("%s: problems %q, want %d", c.name, got, len(c.want))
			continue
		}
		for i, w := range c.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: problem %q, want it to say %q", c.name, got[i], w)
			}
		}
	}
	if got := allTargets(false, clean(), nil, time.Second, 2*time.Second); len(got) != 1 || !strings.Contains(got[0], "comparator did not run") {
		t.Errorf("no comparator: %q", got)
	}
	if got := allTargets(true, nil, clean(), time.Second, 2*time.Second); len(got) != 1 {
		t.Errorf("no molgen line: %q", got)
	}

	// -invariants: the comparisons come apart from what every run must
	// hold; a wrong result stays a problem.
	m, f := clean(), clean()
	m.failed[kindDeadline], f.failed[kindDeadline] = 10, 8
	m.wrong = 1
	problems, relative := checkTargets(false, m, f, time.Second, 2*time.Second)
	if len(problems) != 1 || !strings.Contains(problems[0], "1 wrong results") {
		t.Errorf("-invariants problems %q, want the wrong result alone", problems)
	}
	if len(relative) != 1 || !strings.Contains(relative[0], "10 failed calls, more than the comparator's 8") {
		t.Errorf("-invariants comparisons %q, want the failed calls", relative)
	}
	if _, relative := checkTargets(true, m, f, time.Second, 2*time.Second); relative != nil {
		t.Errorf("the strict scenario's targets are never set apart: %q", relative)
	}
}

// TestPrintClusterTable: a line per scenario and implementation, every
// line with the header's number of columns, the comparator's line with
// neither title nor verdict, and a side that did not run said so.
func TestPrintClusterTable(t *testing.T) {
	m := &implRow{impl: implMolgen, calls: 8226, ok: 8226, failed: map[string]int{}, longest: 1660 * time.Millisecond, gap: 1342 * time.Millisecond, recovered: true, recovery: 40600 * time.Millisecond}
	f := &implRow{impl: implFranz, calls: 7467, ok: 7459, failed: map[string]int{kindDeadline: 8}, runMore: 1, dupIDs: 2, longest: 5 * time.Second, gap: 995 * time.Millisecond}
	rows := []*clusterRow{
		{letter: "b", title: "rolling SIGTERM restart", strict: true, molgen: m, franz: f, problems: []string{"1.342s without a served call"}},
		{letter: "a", title: "kill -9 a leader", err: errors.New("setup"), problems: []string{"could not run: setup"}},
	}
	var b strings.Builder
	printClusterTable(&b, rows)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 2 of header and 4 of rows:\n%s", len(lines), b.String())
	}
	cols := strings.Count(lines[0], "|")
	for i, l := range lines {
		if n := strings.Count(l, "|"); n != cols {
			t.Errorf("line %d has %d separators, the header %d: %s", i, n, cols, l)
		}
	}
	for i, want := range []string{
		"| b | rolling SIGTERM restart | molgen | 8226 | 8226 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 1.66 s | 1.34 s | 40.6 s | **FAIL** |",
		"|  |  | franz-go | 7467 | 7459 | 8 | 0 | 0 | 0 | 0 | 0 | 1 | 2 | 5.00 s | 995 ms | — | (comparator) |",
		"| a | kill -9 a leader | molgen | did not run | | | | | | | | | | | | | **ERROR** |",
		"|  |  | franz-go | did not run | | | | | | | | | | | | | (comparator) |",
	} {
		if lines[2+i] != want {
			t.Errorf("line %d:\n got %s\nwant %s", 2+i, lines[2+i], want)
		}
	}
	f.firstErr = map[string]string{kindDeadline: "franz-go: Concat: context deadline exceeded"}
	var notes strings.Builder
	printClusterNotes(&notes, rows)
	for _, want := range []string{"(b) rolling SIGTERM restart — FAIL", "   - FAIL: 1.342s without a served call", "   - franz-go: first deadline: franz-go: Concat", "(a) kill -9 a leader — ERROR"} {
		if !strings.Contains(notes.String(), want) {
			t.Errorf("notes lack %q:\n%s", want, notes.String())
		}
	}
}

func TestSelectClusterScenarios(t *testing.T) {
	letters := func(cs []*clusterScenario) string {
		var b strings.Builder
		for _, c := range cs {
			b.WriteString(c.letter)
		}
		return b.String()
	}
	for pattern, want := range map[string]string{
		"":                "abcde",
		"a":               "a", // a letter, not every name with an "a" in it
		"b":               "b",
		"a|c":             "ac",
		"[de]":            "de",
		"kill":            "ade",
		"rolling-restart": "b",
		"coordinator":     "e",
		"nothing":         "",
		"(":               "",
	} {
		if got := letters(selectClusterScenarios(pattern)); got != want {
			t.Errorf("selectClusterScenarios(%q) = %q, want %q", pattern, got, want)
		}
	}
}

// TestLoadMethodsHaveNoRetry: the methods the load calls resend nothing
// (a //molgen:retry resend shares its request id on purpose, which the
// cluster scenarios would count as a duplicated write); the check finds a
// method that has retry.
func TestLoadMethodsHaveNoRetry(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkNoRetry(root); err != nil {
		t.Fatal(err)
	}
	if err := checkNoRetry(root, "Concat", "Total"); err == nil || !strings.Contains(err.Error(), "calc.Total has //molgen:retry 2") {
		t.Errorf("checkNoRetry(Total) = %v, want it to name Total's retry", err)
	}
	if err := checkNoRetry(root, "Nope"); err == nil {
		t.Errorf("checkNoRetry(Nope) found a method that does not exist")
	}
}

// allTargets is every target checkTargets finds missed, the comparisons
// included.
func allTargets(strict bool, m, f *implRow, lateBound, longestCall time.Duration) []string {
	out, relative := checkTargets(strict, m, f, lateBound, longestCall)
	return append(out, relative...)
}

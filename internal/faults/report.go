package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// row is one scenario's line of the table, and what is said below it.
type row struct {
	n                int
	title            string
	calls, ok, wrong int
	failed           map[string]int
	reruns           int // runs beyond the first, over all calls
	failedRan        int // failed calls whose request ran anyway
	longest          time.Duration
	late             int // calls that returned after deadline + lateBound
	outside          int // failed calls outside the fault window
	elapsed          time.Duration
	err              error
	notes, problems  []string
}

func (r *row) failures() int {
	n := 0
	for _, v := range r.failed {
		n += v
	}
	return n
}

// failText lists the failures by kind.
func (r *row) failText() string {
	var parts []string
	for _, k := range kinds {
		if v := r.failed[k]; v > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", v, k))
		}
	}
	return strings.Join(parts, ", ")
}

// verdict is "ok", "FAIL" (an assertion failed) or "ERROR" (could not run).
func (r *row) verdict() string {
	switch {
	case r.err != nil:
		return "ERROR"
	case len(r.problems) > 0:
		return "FAIL"
	}
	return "ok"
}

// result turns the scenario's calls, the servers' logs and the records
// read back into its row, and checks the assertions every scenario shares.
func (e *env) result() *row {
	r := &row{n: e.sc.n, title: e.sc.title, failed: map[string]int{}, err: e.err, notes: e.notes, problems: e.problems}
	if e.err != nil {
		r.problems = append(r.problems, "could not run: "+e.err.Error())
	}
	var logs []logRun
	for _, p := range e.servers {
		l, err := parseServerLog(p.logPath, e.cuts)
		if err != nil {
			r.notes = append(r.notes, fmt.Sprintf("reading %s: %v", p.logPath, err))
		}
		logs = append(logs, l...)
	}
	acc := account(e.records, logs)

	inWindow := func(c *call) bool {
		if e.faultStart.IsZero() || e.sc.noFailures {
			return false
		}
		end := e.faultEnd
		if end.IsZero() {
			end = e.faultStart
		}
		return !c.end.Before(e.faultStart) && !c.start.After(end.Add(e.cfg.recovery))
	}
	first := map[string]string{}
	var lastFail time.Time
	var unseen, multiWrites, hung, lateWarm int
	var samples []string // failed calls outside the window
	var perSecond []int  // successful calls ended in each second of the load
	if !e.loadStart.IsZero() && e.loadEnd.After(e.loadStart) {
		perSecond = make([]int, int(e.loadEnd.Sub(e.loadStart)/time.Second)+1)
	}
	for _, c := range e.rec.snapshot() {
		if c.extra {
			continue
		}
		end := c.end
		if end.IsZero() { // still running: it ignored its deadline
			hung++
			end = time.Now()
			if c.err == nil && c.kind == "" {
				c.kind = kindOther
			}
		}
		dur := end.Sub(c.start)
		if c.warmup {
			if dur > c.timeout+e.cfg.lateBound {
				lateWarm++
			}
			continue
		}
		r.calls++
		runs := acc.runs[c.id]
		if runs > 1 {
			r.reruns += runs - 1
		}
		if acc.requests[c.id] > 1 {
			multiWrites++
		}
		if dur > r.longest {
			r.longest = dur
		}
		if dur > c.timeout+e.cfg.lateBound {
			r.late++
		}
		switch {
		case c.kind != "":
			r.failed[c.kind]++
			if runs > 0 {
				r.failedRan++
			}
			if _, ok := first[c.kind]; !ok && c.err != nil {
				first[c.kind] = c.err.Error()
			}
			if end.After(lastFail) {
				lastFail = end
			}
			if !inWindow(c) {
				r.outside++
				if len(samples) < 3 {
					samples = append(samples, fmt.Sprintf("%s #%d %s→%s %s: %s", c.method, c.id, e.since(c.start), e.since(end), c.kind, acc.describe(c.id)))
				}
			}
		case c.wrong != "":
			r.wrong++
			if _, ok := first["wrong"]; !ok {
				first["wrong"] = c.wrong
			}
		default:
			r.ok++
			if runs == 0 && e.readErr == nil {
				unseen++
			}
			if !e.loadStart.IsZero() && !end.Before(e.loadStart) {
				sec := int(end.Sub(e.loadStart) / time.Second)
				for len(perSecond) <= sec && sec < 3600 {
					perSecond = append(perSecond, 0)
				}
				if sec < len(perSecond) {
					perSecond[sec]++
				}
			}
		}
	}

	// What happened, beyond the numbers.
	if len(e.servers) > 0 {
		r.notes = append(r.notes, "calc requests run per instance: "+runsPerInstance(e))
	}
	if !e.faultStart.IsZero() {
		r.notes = append([]string{fmt.Sprintf("fault from %s to %s", e.since(e.faultStart), e.since(e.faultEnd))}, r.notes...)
		if !lastFail.IsZero() {
			end := e.faultEnd
			if end.IsZero() {
				end = e.faultStart
			}
			r.notes = append(r.notes, fmt.Sprintf("last failed call ended at %s, %+.1fs after the fault was over", e.since(lastFail), lastFail.Sub(end).Seconds()))
		}
	}
	for _, k := range append(append([]string(nil), kinds...), "wrong") {
		if m, ok := first[k]; ok {
			r.notes = append(r.notes, fmt.Sprintf("first %s: %s", k, clip(m, 200)))
		}
	}
	if len(perSecond) > 1 && e.sc.n != 10 {
		var b strings.Builder
		for i, n := range perSecond {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprint(&b, n)
		}
		r.notes = append(r.notes, "successful calls per second of load: "+b.String())
	}
	for _, s := range samples {
		r.notes = append(r.notes, "failed outside the window: "+s)
	}
	if r.failedRan > 0 {
		r.notes = append(r.notes, fmt.Sprintf("%d failed calls ran on a server all the same (their caller gave up first)", r.failedRan))
	}
	if multiWrites > 0 {
		r.notes = append(r.notes, fmt.Sprintf("%d calls wrote their request more than once", multiWrites))
	}
	if unseen > 0 {
		r.notes = append(r.notes, fmt.Sprintf("%d successful calls have no run in the logs (requests not read back: written while the broker lost them)", unseen))
	}
	if acc.jumped > 0 {
		r.notes = append(r.notes, fmt.Sprintf("%d requests in the topic were never taken up by any instance although later ones of their partition were (the consumer went past them), e.g. %s", acc.jumped, strings.Join(acc.jumpedAt, ", ")))
	}
	if acc.unattrRuns > 0 {
		r.notes = append(r.notes, fmt.Sprintf("%d runs of requests that name no call (%d not in the read-back)", acc.unattrRuns, acc.unreadRuns))
	}
	for _, tag := range sortedKeys(acc.tagRequests) {
		r.notes = append(r.notes, fmt.Sprintf("injected %q requests: %d in the topic, taken up %d times", tag, acc.tagRequests[tag], acc.tagRuns[tag]))
	}
	for _, c := range e.extras {
		what := "ok"
		if c.err != nil {
			what = c.kind + ": " + clip(c.err.Error(), 160)
		}
		r.notes = append(r.notes, fmt.Sprintf("%s → %s, after %v", c.label, what, c.end.Sub(c.start).Round(time.Millisecond)))
	}

	// Assertions of every scenario.
	if r.wrong > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%d wrong results", r.wrong))
	}
	if r.late > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%d calls returned more than %v after their deadline (longest %v)", r.late, e.cfg.lateBound, r.longest.Round(time.Millisecond)))
	}
	if hung > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%d calls never returned", hung))
	}
	if lateWarm > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%d warm-up calls returned more than %v after their deadline", lateWarm, e.cfg.lateBound))
	}
	if e.sc.noFailures && r.failures() > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%d calls failed (%s); none may", r.failures(), r.failText()))
	} else if r.outside > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%d calls failed outside the fault window (fault start to %v after its end)", r.outside, e.cfg.recovery))
	}
	if e.sc.noReruns && r.reruns > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%d re-runs; none may", r.reruns))
	}
	if r.calls == 0 && e.err == nil {
		r.problems = append(r.problems, "no calls were made")
	}
	return r
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func sortedKeys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// printTable prints the table in Markdown.
func printTable(w io.Writer, rows []*row) {
	fmt.Fprintln(w, "| # | scenario | calls | ok | deadline | no instance | closed | too large | other | wrong | re-runs | failed but ran | longest | late | failed outside window | verdict |")
	fmt.Fprintln(w, "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, r := range rows {
		fmt.Fprintf(w, "| %d | %s | %d | %d |", r.n, r.title, r.calls, r.ok)
		for _, k := range kinds {
			fmt.Fprintf(w, " %d |", r.failed[k])
		}
		fmt.Fprintf(w, " %d | %d | %d | %s | %d | %d | **%s** |\n", r.wrong, r.reruns, r.failedRan, fmtDur(r.longest), r.late, r.outside, r.verdict())
	}
}

func fmtDur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// printNotes prints, per scenario, the failed assertions and what happened.
func printNotes(w io.Writer, rows []*row) {
	fmt.Fprintln(w)
	for _, r := range rows {
		fmt.Fprintf(w, "%d. %s — %s (%v)\n", r.n, r.title, r.verdict(), r.elapsed.Round(time.Second))
		for _, p := range r.problems {
			fmt.Fprintf(w, "   - FAIL: %s\n", p)
		}
		for _, n := range r.notes {
			fmt.Fprintf(w, "   - %s\n", n)
		}
	}
}

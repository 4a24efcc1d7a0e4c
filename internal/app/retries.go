package app

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/molgen/molgen/internal/diag"
	"github.com/molgen/molgen/internal/model"
)

// MaxRuns is how many times the retries along a call path may make the
// last service's work run, before RetryFindings flags the path.
const MaxRuns = 4

// Finding is a warning at a position.
type Finding struct {
	Pos diag.Pos
	Msg string
}

func (f Finding) String() string { return f.Pos.String() + ": warning: " + f.Msg }

// RetryFindings checks the retries and deadlines of the static call graph.
// The graph is by service (a service's constructor takes the services it
// calls, not which of its methods calls which), so each rule assumes that
// any method of a service may call any method of a service it depends on:
//
//   - a deadline too short: a callee's //molgen:timeout times its attempts
//     is more than the timeout of a caller's method (inside a served call
//     the callee gets what is left of the caller's deadline, shared by its
//     attempts, so it is resent or cut short before it can answer);
//   - retries that multiply: along a path from a main, the attempts of
//     each hop multiply to more than MaxRuns (when a copy is not taken
//     for a duplicate, after its instance died, every hop runs again);
//   - a retried method over effects: a method with //molgen:retry in a
//     service that calls methods without it (not declared idempotent): a
//     copy that runs again runs them again.
//
// The findings are sorted by position.
func (a *App) RetryFindings() []Finding {
	var out []Finding
	deps := map[string][]string{}
	for _, e := range a.Edges() {
		deps[e.From] = append(deps[e.From], e.To)
	}
	for _, e := range a.Edges() {
		if e.FromMain {
			continue
		}
		caller, callee := a.Services[e.From], a.Services[e.To]
		out = append(out, deadlineFindings(caller, callee)...)
		out = append(out, effectFindings(caller, callee)...)
	}
	for _, m := range a.MainNames() {
		seen := map[string]bool{}
		a.multiplied(&out, deps, seen, []string{m}, 1, nil)
	}
	slices.SortStableFunc(out, func(x, y Finding) int {
		if c := strings.Compare(x.Pos.File, y.Pos.File); c != 0 {
			return c
		}
		if x.Pos.Line != y.Pos.Line {
			return x.Pos.Line - y.Pos.Line
		}
		return strings.Compare(x.Msg, y.Msg)
	})
	return slices.CompactFunc(out, func(x, y Finding) bool { return x == y })
}

func deadlineFindings(caller, callee *model.Service) []Finding {
	var out []Finding
	for _, m := range caller.Methods {
		if m.Timeout <= 0 {
			continue
		}
		for _, n := range callee.Methods {
			if n.Timeout <= 0 || n.Oneway {
				continue
			}
			attempts := 1 + n.Retry
			need := n.Timeout * time.Duration(attempts)
			if need <= m.Timeout {
				continue
			}
			what := fmt.Sprintf("its timeout %v", n.Timeout)
			share := m.Timeout
			if attempts > 1 {
				what = fmt.Sprintf("its timeout %v × %d attempts = %v", n.Timeout, attempts, need)
				share = (m.Timeout / time.Duration(attempts)).Round(time.Millisecond)
			}
			out = append(out, Finding{n.Pos, fmt.Sprintf(
				"%s.%s: %s is more than the timeout of %s.%s (%v, %s), whose service calls it: from there each attempt gets at most %v; raise %s.%s's timeout or lower %s.%s's",
				callee.Name, n.Name, what, caller.Name, m.Name, m.Timeout, m.Pos.Short(), share, caller.Name, m.Name, callee.Name, n.Name)})
		}
	}
	return out
}

func effectFindings(caller, callee *model.Service) []Finding {
	var plain []string
	for _, n := range callee.Methods {
		if n.Retry == 0 {
			plain = append(plain, n.Name)
		}
	}
	if len(plain) == 0 {
		return nil
	}
	var out []Finding
	for _, m := range caller.Methods {
		if m.Retry == 0 {
			continue
		}
		out = append(out, Finding{m.Pos, fmt.Sprintf(
			"%s.%s is retried (//molgen:retry %d) and its service calls %s, whose %s %s not (not declared idempotent): a copy of %s.%s that runs again (its instance died mid-call) runs %s again; make %s idempotent with runtime.CallID and mark %s //molgen:retry, or drop the retry",
			caller.Name, m.Name, m.Retry, callee.Name, joinNames(plain), isAre(len(plain)), caller.Name, m.Name, them(len(plain)), them(len(plain)), them(len(plain)))})
	}
	return out
}

// multiplied walks the paths from a main, multiplying the most attempts
// of each service on the path, and flags a path where they pass MaxRuns
// (once, at the method of the last hop with the most attempts).
func (a *App) multiplied(out *[]Finding, deps map[string][]string, onPath map[string]bool, path []string, runs int, hops []string) {
	from := path[len(path)-1]
	for _, to := range deps[from] {
		if onPath[to] {
			continue // a cycle: its runs were counted once round
		}
		s := a.Services[to]
		most := mostAttempts(s)
		n := runs * (1 + most.Retry)
		hop := hops
		if most.Retry > 0 {
			hop = append(slices.Clip(hops), fmt.Sprintf("%s.%s %d attempts", s.Name, most.Name, 1+most.Retry))
		}
		p := append(slices.Clip(path), to)
		if n > MaxRuns && runs <= MaxRuns {
			*out = append(*out, Finding{most.Pos, fmt.Sprintf(
				"retries multiply along %s: %s = up to %d runs of %s's work per call when copies are not recognised (an instance died mid-call); retry at one level only, or lower the counts",
				strings.Join(p, " -> "), strings.Join(hop, " × "), n, s.Name)})
		}
		onPath[to] = true
		a.multiplied(out, deps, onPath, p, n, hop)
		delete(onPath, to)
	}
}

// mostAttempts returns the method of s with the most retries (the first
// of them; a method with none when no method retries).
func mostAttempts(s *model.Service) *model.Method {
	best := &model.Method{Pos: s.Pos}
	for _, m := range s.Methods {
		if m.Retry > best.Retry {
			best = m
		}
	}
	return best
}

func joinNames(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func them(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

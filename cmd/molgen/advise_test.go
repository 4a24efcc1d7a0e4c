package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/molgen/molgen/internal/short"
	"github.com/molgen/molgen/runtime/profile"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/advise/*.golden from molgen's output")

// golden compares got with testdata/advise/name (rewritten with -update:
// go test ./cmd/molgen -run 'Advise|GraphWithRates' -update).
func golden(t *testing.T, root, name, got string) {
	t.Helper()
	file := filepath.Join(root, "cmd", "molgen", "testdata", "advise", name)
	if *updateGolden {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update after checking it):\n%s", name, got)
	}
}

// blogProfile is a hand-made profile of the blog under microservices: 10 s
// in which gateway listed posts 100 times and posts asked users 1000 times.
func blogProfile(t *testing.T) (root, file string) {
	t.Helper()
	root, _ = filepath.Abs(filepath.Join("..", ".."))
	return root, filepath.Join(root, "cmd", "molgen", "testdata", "advise", "blog.json")
}

func TestAdviseProposesAndPredicts(t *testing.T) {
	short.Skip(t, "loads the blog four times")
	root, prof := blogProfile(t)
	inBlog(t)
	out := filepath.Join(t.TempDir(), "proposal.yaml")
	status, stdout, stderr := molgen("advise", "-profile", prof, "-o", out, "./...")
	if status != 0 {
		t.Fatalf("advise: %d\n%s%s", status, stdout, stderr)
	}
	golden(t, root, "advise.golden", strings.ReplaceAll(stdout, out, "PROPOSAL"))
	// The proposal is a valid placement: check accepts it and posts ->
	// users no longer crosses nodes.
	status, stdout, stderr = molgen("check", "-placement", out, "./...")
	if status != 0 || !strings.Contains(stdout, "posts -> users") || !strings.Contains(stdout, "local, on node users") {
		t.Errorf("check of the proposal: %d\n%s%s", status, stdout, stderr)
	}

	// A candidate is predicted, not proposed; its constraints are checked.
	status, stdout, stderr = molgen("advise", "-profile", prof, "-placement", "placements/mixed.yaml", "./...")
	if status != 0 {
		t.Fatalf("advise -placement: %d\n%s%s", status, stdout, stderr)
	}
	golden(t, root, "candidate.golden", stdout)
	cand := filepath.Join(t.TempDir(), "monolith.yaml")
	os.WriteFile(cand, []byte("app: blog\nnodes:\n  all: [\"*\"]\nadvise:\n  apart: [[gateway, posts]]\n"), 0o644)
	_, stdout, _ = molgen("advise", "-profile", prof, "-placement", cand, "./...")
	if !strings.Contains(stdout, "breaks its advise constraints:\n  gateway and posts are kept apart but share node all\n") {
		t.Errorf("a candidate that breaks its constraints:\n%s", stdout)
	}
}

func TestAdviseErrors(t *testing.T) {
	short.Skip(t, "loads the blog")
	_, prof := blogProfile(t)
	inBlog(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{\n  \"molgen_profile\": 1,\n  \"calls\": [}\n"), 0o644)
	old := filepath.Join(dir, "old.json")
	os.WriteFile(old, []byte(`{"molgen_profile": 7}`), 0o644)
	impossible := filepath.Join(dir, "impossible.yaml")
	os.WriteFile(impossible, []byte("app: blog\nnodes:\n  all: [\"*\"]\nadvise:\n  max_nodes: 1\n  apart: [[gateway, post]]\n  pin: {users: a, posts: b}\n"), 0o644)
	tight := filepath.Join(dir, "tight.yaml")
	os.WriteFile(tight, []byte("app: blog\nnodes:\n  all: [\"*\"]\nadvise:\n  max_nodes: 1\n  pin: {users: a, posts: b}\n"), 0o644)
	for _, c := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"advise", "./..."}, 2, "-profile FILE is required"},
		{[]string{"advise", "-profile", bad, "./..."}, 1, bad + ":3:14: not a molgen traffic profile"},
		{[]string{"advise", "-profile", old, "./..."}, 1, old + ": molgen_profile version 7, want 1"},
		{[]string{"advise", "-profile", prof, "-from", impossible, "./..."}, 1, impossible + `:6:21: advise.apart: unknown service or main "post" (did you mean "posts"?)`},
		{[]string{"advise", "-profile", prof, "-from", tight, "./..."}, 1, tight + ": no placement satisfies the advise constraints (posts pinned to b; users pinned to a; at most 1 nodes)"},
		{[]string{"advise", "-profile", prof, "-o", "x", "-placement", "y", "./..."}, 2, "use one"},
		{[]string{"profile", "merge"}, 2, "name the profile files"},
	} {
		status, stdout, stderr := molgen(c.args...)
		if status != c.status || !strings.Contains(stderr, c.want) {
			t.Errorf("molgen %v: status %d, want %d with %q:\n%s%s", c.args, status, c.status, c.want, stdout, stderr)
		}
	}
}

func TestProfileMerge(t *testing.T) {
	_, prof := blogProfile(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "merged.json")
	if status, _, stderr := molgen("profile", "merge", "-o", out, prof, prof); status != 0 {
		t.Fatalf("merge: %d %s", status, stderr)
	}
	p, err := profile.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// The same windows twice: 12 s covered, every count doubled.
	if p.Seconds != 12 || len(p.Windows) != 4 || p.Calls[2].Calls != 2000 || p.Calls[2].Remote != 2000 || p.Handlers[2].Seconds != 0.02 {
		t.Errorf("merged: seconds %g, %d windows, calls %+v, handlers %+v", p.Seconds, len(p.Windows), p.Calls, p.Handlers)
	}
	other := filepath.Join(dir, "other.json")
	q, _ := profile.ReadFile(prof)
	q.Placement = "app: blog\nnodes:\n  all: [\"*\"]\n"
	q.WriteFile(other)
	if status, _, stderr := molgen("profile", "merge", prof, other); status != 1 || !strings.Contains(stderr, "profile 2 was recorded under placement placements/microservices.yaml, profile 1 under a different one") {
		t.Errorf("merging two placements: %d %s", status, stderr)
	}
}

func TestGraphWithRates(t *testing.T) {
	short.Skip(t, "loads the blog three times")
	root, prof := blogProfile(t)
	inBlog(t)
	for _, f := range []string{"mermaid", "dot"} {
		status, stdout, stderr := molgen("graph", "-placement", "placements/microservices.yaml", "-format", f, "-profile", prof, "./...")
		if status != 0 {
			t.Fatalf("graph: %d %s", status, stderr)
		}
		golden(t, root, "graph."+f+".golden", stdout)
	}
	status, stdout, stderr := molgen("graph", "-placement", "placements/mixed.yaml", "-profile", prof, "./...")
	if status != 0 {
		t.Fatalf("graph: %d %s", status, stderr)
	}
	golden(t, root, "graph-mixed.mermaid.golden", stdout)
}

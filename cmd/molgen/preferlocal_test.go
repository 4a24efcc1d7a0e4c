package main

import (
	"strings"
	"testing"

	"github.com/molgen/molgen/internal/short"
)

// section returns the lines of out from the line equal to start up to the
// first empty line after it.
func section(out, start string) string {
	_, rest, ok := strings.Cut(out, "\n"+start+"\n")
	if !ok {
		return ""
	}
	block, _, _ := strings.Cut(rest, "\n\n")
	return block
}

// hasLine reports whether out has a line equal to line.
func hasLine(out, line string) bool {
	for _, l := range strings.Split(out, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// TestCheckPreferLocalOffSendsColocatedCallsOverKafka guards 'molgen check'
// with prefer_local: false (the blog's all-remote.yaml, the mixed layout
// with posts and users on node content): the co-located call posts ->
// users must be listed as going through Kafka, not as local, and counted.
func TestCheckPreferLocalOffSendsColocatedCallsOverKafka(t *testing.T) {
	short.Skip(t, "loads the blog example once per placement")
	inBlog(t)
	status, out, stderr := molgen("check", "-placement", "placements/all-remote.yaml", "./...")
	if status != 0 {
		t.Fatalf("check: %d\n%s", status, stderr)
	}
	if want := "placements/all-remote.yaml: ok: app blog, 2 services, 2 mains, 2 nodes, prefer_local off: every call goes through Kafka"; !strings.HasPrefix(out, want+"\n") {
		t.Errorf("check does not start with %q:\n%s", want, out)
	}
	wantCalls := strings.Join([]string{
		"! posts -> users               through Kafka (prefer_local off): content -> content over Kafka",
		"  demo -> posts                crosses nodes: edge -> content over Kafka",
		"  demo -> users                crosses nodes: edge -> content over Kafka",
		"  gateway -> posts             crosses nodes: edge -> content over Kafka",
		"  gateway -> users             crosses nodes: edge -> content over Kafka",
	}, "\n")
	if got := section(out, "calls:"); got != wantCalls {
		t.Errorf("calls with prefer_local off:\n%s\nwant\n%s\n\nwhole output:\n%s", got, wantCalls, out)
	}
	if !hasLine(out, "5 of 5 calls go through Kafka.") {
		t.Errorf("check does not count all 5 calls as going through Kafka:\n%s", out)
	}
	if strings.Contains(out, "local, on node") {
		t.Errorf("check lists a call as local although prefer_local is off:\n%s", out)
	}
}

// TestGraphPreferLocalOffDrawsColocatedCallsAsKafka guards 'molgen graph'
// with prefer_local: false: the edge between the co-located posts and
// users is drawn as a Kafka call (dashed, labelled kafka) in both formats,
// where the same layout with prefer_local on draws a direct call.
func TestGraphPreferLocalOffDrawsColocatedCallsAsKafka(t *testing.T) {
	short.Skip(t, "loads the blog example once per placement")
	inBlog(t)
	for _, c := range []struct {
		format, placement string
		want, notWant     string
		kafkaEdge         string // how every edge over Kafka starts
		kafkaEdges        int
	}{
		{"mermaid", "all-remote", "  content__posts -. kafka .-> content__users", "  content__posts --> content__users", " -. kafka .-> ", 5},
		{"dot", "all-remote", `  content__posts -> content__users [style=dashed, label="kafka"];`, "  content__posts -> content__users;", ` [style=dashed, label="kafka"];`, 5},
		// The same nodes with prefer_local on: the call is direct
		// (TestGraphFormats covers mermaid).
		{"dot", "mixed", "  content__posts -> content__users;", `  content__posts -> content__users [style=dashed, label="kafka"];`, ` [style=dashed, label="kafka"];`, 4},
	} {
		status, out, stderr := molgen("graph", "-format", c.format, "-placement", "placements/"+c.placement+".yaml", "./...")
		if status != 0 {
			t.Fatalf("graph -format %s %s: %d\n%s", c.format, c.placement, status, stderr)
		}
		if !hasLine(out, c.want) || hasLine(out, c.notWant) {
			t.Errorf("graph -format %s of %s.yaml: want the line %q and not %q:\n%s", c.format, c.placement, c.want, c.notWant, out)
		}
		if n := strings.Count(out, c.kafkaEdge); n != c.kafkaEdges {
			t.Errorf("graph -format %s of %s.yaml: %d edges over Kafka, want %d:\n%s", c.format, c.placement, n, c.kafkaEdges, out)
		}
	}
}

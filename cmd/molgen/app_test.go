package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/molgen/molgen/internal/short"
	"github.com/molgen/molgen/internal/testmod"
	"github.com/molgen/molgen/runtime/placement"
)

// inBlog makes the blog example the working directory.
func inBlog(t *testing.T) {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join("..", "..", "examples", "blog"))
	t.Chdir(dir)
}

func TestCheckListsCallsThatCrossNodes(t *testing.T) {
	short.Skip(t, "loads the blog example once per placement")
	inBlog(t)
	status, out, stderr := molgen("check", "-placement", "placements/mixed.yaml", "./...")
	if status != 0 {
		t.Fatalf("check: %d\n%s", status, stderr)
	}
	for _, want := range []string{
		"placements/mixed.yaml: ok: app blog, 2 services, 2 mains, 2 nodes, prefer_local on",
		"content      services posts, users",
		"edge         mains demo, gateway",
		"posts -> users               local, on node content",
		"gateway -> posts             crosses nodes: edge -> content over Kafka",
		"4 of 5 calls go through Kafka.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = molgen("check", "-placement", "placements/microservices.yaml", "./...")
	if !strings.Contains(out, "! posts -> users") || !strings.Contains(out, "5 of 5 calls go through Kafka.") {
		t.Errorf("microservices: service-to-service hop not flagged:\n%s", out)
	}
}

func TestCheckReportsEveryPlacementError(t *testing.T) {
	inBlog(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("app: blog\nnodes:\n  web: [gateway, demo, user]\n  empty: []\n  web: [posts]\n"), 0o644)
	status, _, stderr := molgen("check", "-placement", bad, "./...")
	if status != 1 {
		t.Fatalf("status %d, want 1", status)
	}
	for _, want := range []string{
		bad + `:3:24: node "web": unknown service or main "user" (did you mean "users"?)`,
		bad + `:4:3: node "empty" is empty`,
		bad + `:5:3: duplicate node "web" (first defined at line 3)`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if status, _, _ := molgen("check", "./..."); status != 2 {
		t.Errorf("check without -placement: status %d, want 2", status)
	}
}

func TestGraphFormats(t *testing.T) {
	short.Skip(t, "loads the blog example once per format")
	inBlog(t)
	_, out, stderr := molgen("graph", "-placement", "placements/mixed.yaml", "./...")
	for _, want := range []string{"flowchart LR", `subgraph content__["node content"]`, `edge__gateway(["gateway"])`,
		"content__posts --> content__users", "edge__demo -. kafka .-> content__posts"} {
		if !strings.Contains(out, want) {
			t.Errorf("mermaid lacks %q:\n%s%s", want, out, stderr)
		}
	}
	_, out, _ = molgen("graph", "-format", "dot", "./...")
	if !strings.Contains(out, "digraph molgen") || !strings.Contains(out, "monolith__posts -> monolith__users;") || strings.Contains(out, "cluster") {
		t.Errorf("dot of the monolith:\n%s", out)
	}
	if status, _, _ := molgen("graph", "-format", "png", "./..."); status != 2 {
		t.Errorf("-format png: status %d, want 2", status)
	}
}

func TestInitWritesAValidSkeletonAndDeployFiles(t *testing.T) {
	short.Skip(t, "loads the blog example and checks the files it writes")
	inBlog(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "placement.yaml")
	status, _, stderr := molgen("init", "-o", file, "-deploy", filepath.Join(dir, "deploy"), "./...")
	if status != 0 {
		t.Fatalf("init: %d %s", status, stderr)
	}
	pl, err := placement.LoadFor(file, []string{"posts", "users"}, []string{"demo", "gateway"})
	if err != nil {
		t.Fatalf("the skeleton does not validate: %v", err)
	}
	if len(pl.Nodes) != 1 || len(pl.Nodes[0].Names) != 4 {
		t.Errorf("skeleton nodes: %+v", pl.Nodes)
	}
	unit, _ := os.ReadFile(filepath.Join(dir, "deploy", "systemd", "all@.service"))
	compose, _ := os.ReadFile(filepath.Join(dir, "deploy", "compose.yaml"))
	if !strings.Contains(string(unit), "ExecStart=/opt/molgen/bin/all -instance %H-all-%i") || !strings.Contains(string(compose), "command: [\"/app/all\"]") {
		t.Errorf("deploy files:\n%s\n%s", unit, compose)
	}
	if status, _, stderr := molgen("init", "-o", file, "./..."); status != 1 || !strings.Contains(stderr, "exists; pass -f") {
		t.Errorf("init over an existing file: %d %s", status, stderr)
	}
	// Deploy files for an existing multi-node placement.
	status, _, stderr = molgen("init", "-placement", "placements/microservices.yaml", "-deploy", filepath.Join(dir, "ms"), "./...")
	if status != 0 {
		t.Fatalf("init -placement: %d %s", status, stderr)
	}
	for _, node := range []string{"users", "posts", "gateway", "demo"} {
		if _, err := os.Stat(filepath.Join(dir, "ms", "systemd", node+"@.service")); err != nil {
			t.Errorf("no unit for node %s", node)
		}
	}
}

// TestCheckCitesTheLineOfAYAMLSyntaxError: a key indented one space too far
// is reported where it is (6:4), not where its mapping starts (4:1).
func TestCheckCitesTheLineOfAYAMLSyntaxError(t *testing.T) {
	inBlog(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("app: blog\nkafka:\n  brokers: [127.0.0.1:9092]\nnodes:\n  content: [users, posts]\n   edge: [\"*\"]\n"), 0o644)
	status, _, stderr := molgen("check", "-placement", bad, "./...")
	want := bad + ":6:4: invalid YAML: value is not allowed in this context (check the indentation)\n"
	if status != 1 || stderr != want {
		t.Fatalf("status %d, stderr %q; want 1 and %q", status, stderr, want)
	}
}

// TestCheckReportsBreakingWireChanges runs 'molgen check' on the
// err_breaking case: it reports every breaking change of the wire schema
// exactly as 'molgen generate' does (testdata/err_breaking/want/errors.txt),
// and fails.
func TestCheckReportsBreakingWireChanges(t *testing.T) {
	root := testmod.Root(t)
	mod := testmod.New(t, "err_breaking", filepath.Join(root, "testdata", "err_breaking", "in"))
	t.Chdir(mod)
	os.WriteFile("placement.yaml", []byte("app: shop\nnodes:\n  all: [\"*\"]\n"), 0o644)
	status, _, stderr := molgen("check", "-placement", "placement.yaml", "./...")
	if status != 1 {
		t.Fatalf("check: status %d, want 1\n%s", status, stderr)
	}
	want, err := os.ReadFile(filepath.Join(root, "testdata", "err_breaking", "want", "errors.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
		if !strings.Contains(stderr, line) {
			t.Errorf("check's errors lack\n%s\ngot:\n%s", line, stderr)
		}
	}
}

// TestCheckWarnsAboutRetriesAndDeadlines: molgen check reports, at their
// positions, a callee whose timeout × attempts exceeds its caller's
// timeout, a retried method whose service calls methods that are not,
// and retries that multiply along a path; it still succeeds.
func TestCheckWarnsAboutRetriesAndDeadlines(t *testing.T) {
	dir, _ := filepath.Abs(filepath.Join("testdata", "check_retries"))
	mod := testmod.New(t, "check_retries", filepath.Join(dir, "in"))
	t.Chdir(mod)
	os.WriteFile("placement.yaml", []byte("app: shop\nnodes:\n  a: [front, buy]\n  b: [pricing, rates]\n"), 0o644)
	status, out, stderr := molgen("check", "-placement", "placement.yaml", "./...")
	if status != 0 {
		t.Fatalf("check: status %d\n%s", status, stderr)
	}
	want, err := os.ReadFile(filepath.Join(dir, "want", "warnings.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
		if !strings.Contains(out, line) {
			t.Errorf("check's output lacks\n%s\ngot:\n%s", line, out)
		}
	}
	if n := strings.Count(out, ": warning: "); n != strings.Count(string(want), ": warning: ") {
		t.Errorf("%d warnings, want %d:\n%s", n, strings.Count(string(want), ": warning: "), out)
	}
}

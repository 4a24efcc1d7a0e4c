package placementfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/molgen/molgen/runtime/placement"
)

// TestYAMLSyntaxErrorsPointAtTheProblem checks that a YAML syntax error
// cites the line and column of the offending token, not the line where the
// enclosing mapping starts (package placement alone says 4:1 for the first
// case).
func TestYAMLSyntaxErrorsPointAtTheProblem(t *testing.T) {
	for src, want := range map[string]string{
		"app: hello\nkafka:\n  brokers: [127.0.0.1:19092]\nnodes:\n  api: [greeter]\n   front: [hello]\n": `p.yaml:6:4: invalid YAML: value is not allowed in this context (check the indentation)`,
		"app: hello\nnodes:\n  api: [greeter]\n front: [hello]\n":                                         `p.yaml:4:2: invalid YAML: value is not allowed in this context (check the indentation)`,
		"app: hello\nkafka:\n    brokers: [a:1]\n  partitions: 3\nnodes:\n  n: [x]\n":                     `p.yaml:4:3: invalid YAML: value is not allowed in this context (check the indentation)`,
		"app: hello\nnodes:\n  api: [greeter\n  front: [hello]\n":                                         `p.yaml:4:3: invalid YAML: ',' or ']' must be specified`,
		"app: hello\n\tnodes:\n":                 `p.yaml:2:1: invalid YAML: found character '\t' that cannot start any token`,
		"app: hello\nnodes:\n  api: \"greeter\n": `p.yaml:3:8: invalid YAML: could not find end character of double-quoted text`,
		"app: [\n":                               `p.yaml:1:6: invalid YAML: sequence end token ']' not found`,
	} {
		if _, err := Check("p.yaml", []byte(src), []string{"greeter"}, []string{"hello"}); err == nil || err.Error() != want {
			t.Errorf("Check(%q):\n got %v\nwant %s", src, err, want)
		}
	}
}

// TestPackagePlacementAloneCitesTheEnclosingLine records why this package
// exists: if placement's own parser ever cites the offending token, Check
// can go.
func TestPackagePlacementAloneCitesTheEnclosingLine(t *testing.T) {
	src := "app: hello\nkafka:\n  brokers: [127.0.0.1:19092]\nnodes:\n  api: [greeter]\n   front: [hello]\n"
	_, err := placement.Parse("p.yaml", []byte(src))
	if err == nil || !strings.HasPrefix(err.Error(), "p.yaml:4:1: invalid YAML: ") {
		t.Fatalf("placement.Parse: %v; want the enclosing line 4:1 (if this changed, placementfile may be dropped)", err)
	}
}

// TestOtherProblemsAreKept checks that problems other than a syntax error
// are placement's, all at once, with their positions.
func TestOtherProblemsAreKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(path, []byte("app: hello\ncolour: blue\nnodes:\n  api: [greter]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, []string{"greeter"}, []string{"hello"})
	want := path + `: main "hello" is not placed on any node (add it to a node, or add "*" to one node)` + "\n" +
		path + `: service "greeter" is not placed on any node (add it to a node, or add "*" to one node)` + "\n" +
		path + `:2:1: unknown key "colour" (want app, prefer_local, kafka, nodes, security or advise)` + "\n" +
		path + `:4:9: node "api": unknown service or main "greter" (did you mean "greeter"?)`
	if err == nil || err.Error() != want {
		t.Fatalf("Load:\n got %v\nwant %s", err, want)
	}
}

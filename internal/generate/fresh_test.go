package generate_test

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/molgen/molgen/internal/generate"
	"github.com/molgen/molgen/internal/load"
	"github.com/molgen/molgen/internal/short"
	"github.com/molgen/molgen/internal/testmod"
)

// molgenDirective is the go:generate line of packages that use molgen.
const molgenDirective = "//go:generate go run github.com/molgen/molgen/cmd/molgen generate"

// TestCheckedInGeneratedFilesAreCurrent guards against a stale
// molgen_gen.go in this repository's own packages (internal/testsvc and
// the blog example), which only CI's 'go generate ./... && git diff'
// noticed before: it runs the generator in memory for every molgen
// go:generate directive in those trees, with the directive's arguments and
// from its package's directory as 'go generate ./...' would, and fails
// naming every checked-in file that differs from what the current
// generator writes, is missing, or should be removed. It writes nothing.
func TestCheckedInGeneratedFilesAreCurrent(t *testing.T) {
	short.Skip(t, "regenerates every package that has a go:generate line")
	root := testmod.Root(t)
	// Generated files these trees must have: a walk or a load that finds
	// nothing fails instead of passing.
	want := []string{
		"internal/testsvc/molgen_gen.go",
		"examples/blog/demo/molgen_gen.go", "examples/blog/gateway/molgen_gen.go",
		"examples/blog/posts/molgen_gen.go", "examples/blog/users/molgen_gen.go",
	}
	seen := map[string]bool{}
	for _, d := range generateDirectives(t, root, "internal/testsvc", "examples/blog") {
		results, _, err := generate.Generate(d.cfg)
		if err != nil {
			t.Errorf("%s: go generate would fail: %v", d.pos, err)
			continue
		}
		for _, r := range results {
			rel, _ := filepath.Rel(root, r.Path)
			rel = filepath.ToSlash(rel)
			seen[rel] = !r.Remove
			switch {
			case !r.Stale():
			case !r.Remove && !exists(r.Path):
				t.Errorf("%s is missing (directive %s): run go generate ./... and commit the result", rel, d.pos)
			case r.Remove:
				t.Errorf("%s is left over from a package without molgen declarations (directive %s): run go generate ./... and commit the result", rel, d.pos)
			default:
				t.Errorf("%s is stale, not what the current generator writes (directive %s): run go generate ./... and commit the result\n%s", rel, d.pos, staleDiff(r))
			}
		}
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("no go:generate directive produced %s", w)
		}
	}
}

// directive is one molgen go:generate line, as the generator config it runs.
type directive struct {
	pos string // file:line, relative to the checkout
	cfg load.Config
}

// generateDirectives finds the molgen go:generate lines of the non-test Go
// files under dirs (relative to root), skipping what the go command skips
// (testdata, and directories starting with "." or "_").
func generateDirectives(t *testing.T, root string, dirs ...string) []directive {
	t.Helper()
	var out []directive
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() {
				if name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				return nil
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			for line := 1; sc.Scan(); line++ {
				text := sc.Text()
				if text != molgenDirective && !strings.HasPrefix(text, molgenDirective+" ") {
					continue
				}
				rel, _ := filepath.Rel(root, path)
				pos := filepath.ToSlash(rel) + ":" + strconv.Itoa(line)
				cfg := load.Config{Dir: filepath.Dir(path)}
				args := strings.Fields(strings.TrimPrefix(text, molgenDirective))
				for i := 0; i < len(args); i++ {
					switch a := args[i]; {
					case a == "-tags" && i+1 < len(args):
						i++
						cfg.Tags = args[i]
					case strings.HasPrefix(a, "-tags="):
						cfg.Tags = strings.TrimPrefix(a, "-tags=")
					case strings.HasPrefix(a, "-"):
						t.Fatalf("%s: flag %s: teach this test what it means", pos, a)
					default:
						cfg.Patterns = append(cfg.Patterns, a)
					}
				}
				out = append(out, directive{pos: pos, cfg: cfg})
			}
			return sc.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// staleDiff shows how the file on disk differs from r's content.
func staleDiff(r generate.Result) string {
	old, err := os.ReadFile(r.Path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return lineDiff(string(old), string(r.Content))
}

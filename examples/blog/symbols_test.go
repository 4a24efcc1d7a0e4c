package blog_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/molgen/molgen/internal/short"
)

// TestNodeBinariesLinkOnlyWhatTheyHost inspects the symbols of the
// microservices binaries: a node's binary holds the implementations of the
// services it hosts and only the clients of the ones it calls.
func TestNodeBinariesLinkOnlyWhatTheyHost(t *testing.T) {
	short.Skip(t, "builds every node binary and reads its symbols")
	dir := t.TempDir()
	bins := buildBlog(t, "placements/microservices.yaml", dir)
	const (
		usersImpl   = "examples/blog/users.(*directory).Create"
		postsImpl   = "examples/blog/posts.(*store).Publish"
		postsClient = "examples/blog/posts.(*molgenClient_Posts).Publish"
		usersClient = "examples/blog/users.(*molgenClient_Users).Get"
	)
	want := map[string]struct{ has, lacks []string }{
		"users":   {has: []string{usersImpl}, lacks: []string{postsImpl, postsClient}},
		"posts":   {has: []string{postsImpl, usersClient}, lacks: []string{usersImpl}},
		"gateway": {has: []string{postsClient, usersClient}, lacks: []string{usersImpl, postsImpl}},
		"demo":    {has: []string{postsClient, usersClient}, lacks: []string{usersImpl, postsImpl}},
	}
	for _, b := range bins {
		out, err := exec.Command("go", "tool", "nm", b.Path).Output()
		if err != nil {
			t.Fatal(err)
		}
		syms := string(out)
		for _, s := range want[b.Node].has {
			if !strings.Contains(syms, s) {
				t.Errorf("binary %s lacks %s", b.Node, s)
			}
		}
		for _, s := range want[b.Node].lacks {
			if strings.Contains(syms, s) {
				t.Errorf("binary %s contains %s, which it neither hosts nor calls", b.Node, s)
			}
		}
	}
}

// Package blog_test runs the blog example end to end.
package blog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/molgen/molgen/examples/blog/gateway"
	"github.com/molgen/molgen/examples/blog/posts"
	"github.com/molgen/molgen/examples/blog/users"
	"github.com/molgen/molgen/internal/generate"
	"github.com/molgen/molgen/internal/load"
	"github.com/molgen/molgen/internal/short"
	"github.com/molgen/molgen/runtime"
)

// TestGeneratedFilesAreCurrent fails when a committed molgen_gen.go or
// molgen_schema.txt differs from what molgen generates now: run
// 'go generate ./...'.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	results, _, err := generate.Generate(load.Config{Patterns: []string{"./..."}})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 6 {
		t.Errorf("generated %d files, want 6 (molgen_gen.go of users, posts, gateway, demo; molgen_schema.txt of users, posts)", len(results))
	}
	for _, r := range results {
		if r.Stale() {
			t.Errorf("%s is out of date: run 'go generate ./...'", r.Path)
		}
	}
}

// TestMonolithDemo builds the example as a monolith with 'molgen build' and
// checks the demo's output against testdata/demo.golden.
func TestMonolithDemo(t *testing.T) {
	short.Skip(t, "builds and runs the monolith binary")
	out := t.TempDir()
	bins := buildBlog(t, "", out)
	if len(bins) != 1 || bins[0].Node != "monolith" || bins[0].Path != filepath.Join(out, "monolith") {
		t.Fatalf("built %+v, want one monolith", bins)
	}
	cmd := exec.Command(bins[0].Path, "-mains", "demo")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("monolith -mains demo: %v\n%s", err, stderr.String())
	}
	want, _ := os.ReadFile("testdata/demo.golden")
	if stdout.String() != string(want) {
		t.Fatalf("demo output differs from testdata/demo.golden:\n--- got\n%s--- want\n%s", stdout.String(), want)
	}
	if strings.Contains(stderr.String(), "kafka") {
		t.Errorf("the monolith mentioned Kafka:\n%s", stderr.String())
	}
}

// TestGatewayAPI serves the HTTP API from an in-process monolith node.
func TestGatewayAPI(t *testing.T) {
	ctx := context.Background()
	n, err := runtime.NewNode(runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := users.RegisterUsers(n, users.New()); err != nil {
		t.Fatal(err)
	}
	p, err := posts.New(ctx, users.NewUsersClient(n))
	if err != nil {
		t.Fatal(err)
	}
	if err := posts.RegisterPosts(n, p); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	srv := httptest.NewServer(gateway.Handler(posts.NewPostsClient(n), users.NewUsersClient(n)))
	defer srv.Close()

	call := func(method, path, body string, wantStatus int) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s %s: status %d, want %d: %v", method, path, resp.StatusCode, wantStatus, out)
		}
		m, _ := out.(map[string]any)
		return m
	}
	u := call("POST", "/users", `{"name":"Grace"}`, 201)
	if u["ID"] != "u1" || u["Name"] != "Grace" {
		t.Fatalf("created %v", u)
	}
	call("POST", "/users", `{"name":""}`, 400)
	call("GET", "/users/u9", "", 404)
	post := call("POST", "/posts", `{"author":"u1","title":"Hello","tags":["a"]}`, 201)
	if post["Title"] != "Hello" {
		t.Fatalf("published %v", post)
	}
	if got := call("POST", "/posts", `{"author":"u404","title":"x"}`, 404); !strings.Contains(got["error"].(string), "users: not found") {
		t.Fatalf("unknown author: %v", got)
	}
	view := call("GET", "/posts/1", "", 200)
	if view["AuthorName"] != "Grace" {
		t.Fatalf("view %v", view)
	}
	call("GET", "/posts/7", "", 404)
}

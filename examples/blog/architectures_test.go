package blog_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/build"
	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/load"
	"github.com/molgen/molgen/internal/proctest"
	"github.com/molgen/molgen/internal/short"
	"github.com/molgen/molgen/runtime"
)

// TestArchitectures builds the blog under each committed placement, runs
// every node as its own process against Kafka, and checks that the demo's
// output is the same as the monolith's (testdata/demo.golden), that the
// gateway answers across processes, and that SIGTERM ends every node with
// status 0 after draining.
func TestArchitectures(t *testing.T) {
	short.Skip(t, "builds each placement's node binaries and runs them as processes")
	want, err := os.ReadFile("testdata/demo.golden")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"monolith", "microservices", "mixed", "all-remote"} {
		t.Run(name, func(t *testing.T) {
			runPlacement(t, name, string(want))
		})
	}
}

// crossings says, per placement, which nodes send requests through Kafka to
// each service: service -> caller nodes. What is not listed stays local.
// posts -> users is local under mixed and crosses Kafka under all-remote
// (prefer_local off), though both put the two services on one node.
var crossings = map[string]map[string][]string{
	"monolith":      {"users": nil, "posts": nil},
	"microservices": {"users": {"demo", "gateway", "posts"}, "posts": {"demo", "gateway"}},
	"mixed":         {"users": {"edge"}, "posts": {"edge"}},
	"all-remote":    {"users": {"content", "edge"}, "posts": {"edge"}},
}

// checkCrossings reads every request in the app's request topics and
// compares the nodes that sent them (the molgen-caller header) with
// crossings[name].
func checkCrossings(t *testing.T, name, app string) {
	t.Helper()
	for service, want := range crossings[name] {
		callers := map[string]int{}
		for _, m := range kafkatest.Records(t, "molgen."+app+".req."+service) {
			caller, _ := kafkatest.Header(m, "molgen-caller")
			node, _, _ := strings.Cut(caller, "/")
			callers[node]++
		}
		var got []string
		for node := range callers {
			got = append(got, node)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("placement %s: requests to %s came through Kafka from nodes %v (%v); want from %v", name, service, got, callers, want)
		}
	}
}

// buildBlog builds the blog's node binaries for placement (empty: the
// monolith) into out, as molgen build does.
func buildBlog(t *testing.T, placement, out string) []build.Binary {
	t.Helper()
	bins, err := build.Build(build.Config{Load: load.Config{Patterns: []string{"./..."}}, Placement: placement, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	return bins
}

func runPlacement(t *testing.T, name, want string) {
	// A fresh app name per run: its own topics and consumer groups.
	src, err := os.ReadFile(filepath.Join("placements", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	app := kafkatest.App("blog-" + name)
	dir := t.TempDir()
	placement := filepath.Join(dir, name+".yaml")
	os.WriteFile(placement, []byte(strings.Replace(string(src), "app: blog", "app: "+app, 1)), 0o644)
	bins := buildBlog(t, placement, dir)
	pl, err := runtime.LoadPlacement(placement)
	if err != nil {
		t.Fatal(err)
	}
	brokers := strings.Join(kafkatest.Brokers(t), ",")
	flags := []string{"-brokers", brokers, "-session-timeout", "2s"}

	var servers []*proctest.Proc
	var gateway *proctest.Proc
	var runner string
	for _, b := range bins {
		if pl.Hosts(b.Node, "demo") {
			runner = b.Path
			if pl.Hosts(b.Node, "gateway") {
				// The runner's node also has the gateway: run another copy
				// of it for the gateway alone.
				gateway = proctest.Start(t, b.Node+" (gateway)", b.Path, []string{"BLOG_ADDR=127.0.0.1:0"}, append(flags, "-mains", "gateway", "-instance", "gw")...)
				servers = append(servers, gateway)
			}
			continue
		}
		p := proctest.Start(t, b.Node, b.Path, []string{"BLOG_ADDR=127.0.0.1:0"}, flags...)
		servers = append(servers, p)
		if pl.Hosts(b.Node, "gateway") {
			gateway = p
		}
	}
	for _, p := range servers {
		p.WaitLog(t, "node started", 60*time.Second)
	}
	demo := exec.Command(runner, append(flags, "-mains", "demo")...)
	var stderr strings.Builder
	demo.Stderr = &stderr
	out, err := demo.Output()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr.String())
	}
	if string(out) != want {
		t.Fatalf("placement %s: the demo printed\n%s\nbut the monolith prints\n%s", name, out, want)
	}
	usesKafka := strings.Contains(stderr.String(), "connected to Kafka")
	if wantKafka := len(pl.Nodes) > 1 || !pl.PreferLocal; usesKafka != wantKafka {
		t.Errorf("placement %s: demo node connected to Kafka: %t, want %t", name, usesKafka, wantKafka)
	}

	// The gateway, in its own process, sees what the demo did when the
	// services live elsewhere (in the monolith it has its own copies).
	if gateway != nil && len(pl.Nodes) > 1 {
		addr := regexp.MustCompile(`msg="gateway listening" addr=(\S+)`)
		gateway.WaitLog(t, "gateway listening", 30*time.Second)
		m := addr.FindStringSubmatch(gateway.Stderr())
		resp, err := http.Get("http://" + m[1] + "/posts")
		if err != nil {
			t.Fatal(err)
		}
		var list []struct{ Title, AuthorName string }
		json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		got := fmt.Sprint(list)
		if resp.StatusCode != 200 || !strings.Contains(got, "Ada Lovelace") || len(list) != 2 {
			t.Errorf("GET /posts through the gateway process: %d %s", resp.StatusCode, got)
		}
		resp, err = http.Get("http://" + m[1] + "/users/u404")
		if err != nil || resp.StatusCode != 404 {
			t.Errorf("GET /users/u404 across processes: %v %v (errors.Is must see users.ErrNotFound)", resp.StatusCode, err)
		}
	}

	checkCrossings(t, name, app)

	for _, p := range servers {
		p.Signal(syscall.SIGTERM)
	}
	for _, p := range servers {
		if code := p.Wait(t, 60*time.Second); code != 0 {
			t.Errorf("%s exited with %d after SIGTERM:\n%s", p.Name, code, p.Stderr())
		}
		if !strings.Contains(p.Stderr(), "node stopped") {
			t.Errorf("%s did not log a clean stop", p.Name)
		}
	}
}

package advise

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/molgen/molgen/runtime/profile"
)

// edge is a test edge: calls per second (over a 1 s profile), all remote,
// each with 1 ms overhead and no bytes, so its cost is calls × 1 ms.
type edge struct {
	from, to string
	calls    int64
}

// testModel builds a model of services (and mains) with edges whose cost
// per second is calls × 1 ms, and handler CPU per service in cores.
func testModel(t *testing.T, services, mains []string, edges []edge, cpu map[string]float64) *Model {
	t.Helper()
	p := &profile.Profile{Version: profile.Version, Seconds: 1}
	for _, e := range edges {
		p.Calls = append(p.Calls, profile.Call{Caller: e.from, Service: e.to, Method: "M", Calls: e.calls, Remote: e.calls, RemoteSeconds: float64(e.calls) * 1e-3})
	}
	for s, c := range cpu {
		// Handler time includes the service's own calls; the model
		// subtracts them to find its CPU.
		for _, e := range edges {
			if e.from == s {
				c += float64(e.calls) * 1e-3
			}
		}
		p.Handlers = append(p.Handlers, profile.Handler{Service: s, Method: "H", Calls: 1, Seconds: c})
	}
	m, err := NewModel(services, mains, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// alone places every name on a node of its own name.
func alone(names []string) (Placed, []string) {
	p := Placed{Nodes: map[string][]string{}, PreferLocal: true}
	for _, n := range names {
		p.Nodes[n] = []string{n}
	}
	return p, names
}

// layout renders a placement as "node: a b; node: c", nodes sorted.
func layout(p Placed) string {
	on := map[string][]string{}
	for name, nodes := range p.Nodes {
		for _, n := range nodes {
			on[n] = append(on[n], name)
		}
	}
	var parts []string
	for _, n := range sortedKeys(on) {
		names := on[n]
		sortStrings(names)
		parts = append(parts, n+": "+strings.Join(names, " "))
	}
	return strings.Join(parts, "; ")
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

func TestWithoutConstraintsEverythingGoesTogether(t *testing.T) {
	names := []string{"a", "b", "c"}
	m := testModel(t, names, nil, []edge{{"a", "b", 10}, {"b", "c", 1}}, nil)
	cur, order := alone(names)
	p, err := m.Optimize(cur, order, Constraints{})
	if err != nil {
		t.Fatal(err)
	}
	if got := layout(p.Placed); got != "a: a b c" {
		t.Errorf("proposal %s, want everything on one node", got)
	}
	if p.Cost != 0 || !p.Exact {
		t.Errorf("cost %g exact %t, want 0 and exact", p.Cost, p.Exact)
	}
}

// TestConstraintsMakeTheBestPlacementNonObvious: posts and users talk the
// most, but the CPU budget cannot take both; gateway is pinned to edge and
// kept apart from posts. The best placement puts posts with search (the
// second busiest pair that fits), and users — too big for posts' node — with
// the gateway, which calls it a little: no pair is placed by its weight
// alone.
func TestConstraintsMakeTheBestPlacementNonObvious(t *testing.T) {
	services := []string{"posts", "search", "users"}
	mains := []string{"gateway"}
	m := testModel(t, services, mains, []edge{
		{"posts", "users", 100}, {"posts", "search", 80}, {"search", "users", 70},
		{"gateway", "posts", 5}, {"gateway", "users", 3},
	}, map[string]float64{"posts": 0.6, "users": 0.5, "search": 0.3})
	cur, order := alone(append(services, mains...))
	c := Constraints{
		Pin:       map[string]string{"gateway": "edge"},
		Apart:     [][]string{{"gateway", "posts"}},
		CPUBudget: map[string]float64{"*": 1.0},
	}
	p, err := m.Optimize(cur, order, c)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := layout(p.Placed), "edge: gateway users; posts: posts search"; got != want {
		t.Errorf("proposal %q, want %q", got, want)
	}
	// cut: posts-users 100 + search-users 70 + gateway-posts 5 = 175 calls/s × 1 ms.
	if math.Abs(p.Cost-0.175) > 1e-9 {
		t.Errorf("cost %g, want 0.175", p.Cost)
	}
	if v := m.Violations(p.Placed, c); v != nil {
		t.Errorf("the proposal breaks its constraints: %v", v)
	}
	// The obvious placement (posts with users) breaks the budget.
	obvious := Placed{PreferLocal: true, Nodes: map[string][]string{"posts": {"n"}, "users": {"n"}, "search": {"s"}, "gateway": {"edge"}}}
	if v := m.Violations(obvious, c); len(v) != 1 || !strings.Contains(v[0], "node n uses 1.1 cores") {
		t.Errorf("violations of posts+users: %v", v)
	}
}

func TestImpossibleConstraintsAreAnError(t *testing.T) {
	names := []string{"a", "b"}
	m := testModel(t, names, nil, []edge{{"a", "b", 1}}, nil)
	cur, order := alone(names)
	_, err := m.Optimize(cur, order, Constraints{MaxNodes: 1, Apart: [][]string{{"a", "b"}}})
	if err == nil || !strings.Contains(err.Error(), "no placement satisfies the advise constraints (a, b apart; at most 1 nodes)") {
		t.Errorf("err = %v", err)
	}
}

// TestTiesKeepTheCurrentPlacement: a service without traffic stays where
// it was instead of joining a node for nothing.
func TestTiesKeepTheCurrentPlacement(t *testing.T) {
	names := []string{"a", "b", "idle"}
	m := testModel(t, names, nil, []edge{{"a", "b", 1}}, nil)
	cur, order := alone(names)
	p, err := m.Optimize(cur, order, Constraints{})
	if err != nil {
		t.Fatal(err)
	}
	if got := layout(p.Placed); got != "a: a b; idle: idle" {
		t.Errorf("proposal %q: the idle service moved", got)
	}
}

// bruteForce is the cheapest feasible assignment by trying every map from
// names to labels 0..n-1: slow, obviously right.
func bruteForce(m *Model, c Constraints) float64 {
	n := len(m.Names)
	label := make([]int, n)
	best := math.Inf(1)
	var rec func(i int)
	rec = func(i int) {
		if i == n {
			p := Placed{PreferLocal: true, Nodes: map[string][]string{}}
			for j, name := range m.Names {
				node := fmt.Sprint("n", label[j])
				for pinned, to := range c.Pin { // pinned groups take the pinned name
					for k, other := range m.Names {
						if other == pinned && label[k] == label[j] {
							node = to
						}
					}
				}
				p.Nodes[name] = []string{node}
			}
			if m.Violations(p, c) == nil {
				best = min(best, m.Predict(p).Cost)
			}
			return
		}
		for l := range n {
			label[i] = l
			rec(i + 1)
		}
	}
	rec(0)
	return best
}

// TestExactSearchMatchesBruteForce checks the pruned search against every
// assignment, and the heuristic against both, on random apps and
// constraints.
func TestExactSearchMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "c", "d", "e"}
	heuristicWorse := 0
	for trial := range 200 {
		var edges []edge
		for i, a := range names {
			for _, b := range names[i+1:] {
				if r.IntN(3) == 0 {
					edges = append(edges, edge{a, b, int64(1 + r.IntN(100))})
				}
			}
		}
		cpu := map[string]float64{}
		for _, n := range names {
			cpu[n] = float64(r.IntN(5)) / 10
		}
		m := testModel(t, names, nil, edges, cpu)
		c := Constraints{MaxNodes: r.IntN(4)}
		if r.IntN(2) == 0 {
			c.Apart = [][]string{{names[r.IntN(3)], names[3+r.IntN(2)]}}
		}
		if r.IntN(2) == 0 {
			c.Pin = map[string]string{names[r.IntN(5)]: "x"}
		}
		if r.IntN(2) == 0 {
			c.CPUBudget = map[string]float64{"*": 0.6}
		}
		want := bruteForce(m, c)
		cur, order := alone(names)
		p, err := m.Optimize(cur, order, c)
		if math.IsInf(want, 1) {
			if err == nil {
				t.Errorf("trial %d: %v: brute force finds no feasible placement, Optimize proposes %s", trial, c, layout(p.Placed))
			}
			continue
		}
		if err != nil {
			t.Errorf("trial %d: %v: %v (brute force: cost %g)", trial, c, err, want)
			continue
		}
		if math.Abs(p.Cost-want) > 1e-9 {
			t.Errorf("trial %d: %+v: cost %g, brute force %g", trial, c, p.Cost, want)
		}
		if got := m.Predict(p.Placed).Cost; math.Abs(got-p.Cost) > 1e-9 {
			t.Errorf("trial %d: the proposal's predicted cost %g is not its search cost %g", trial, got, p.Cost)
		}
		if v := m.Violations(p.Placed, c); v != nil {
			t.Errorf("trial %d: proposal %s breaks %v", trial, layout(p.Placed), v)
		}
		h := heuristicCost(t, m, cur, order, c)
		if h < want-1e-9 {
			t.Errorf("trial %d: the heuristic (%g) beats the exact optimum (%g)", trial, h, want)
		}
		if h > want+1e-9 {
			heuristicWorse++
		}
	}
	t.Logf("the heuristic alone missed the optimum in %d of 200 trials", heuristicWorse)
}

// heuristicCost runs Optimize's heuristic alone (as beyond ExactLimit).
func heuristicCost(t *testing.T, m *Model, cur Placed, order []string, c Constraints) float64 {
	t.Helper()
	p, err := m.optimize(cur, order, c, 0)
	if err != nil {
		return math.Inf(1)
	}
	if p.Exact {
		t.Fatal("exact search ran with limit 0")
	}
	if v := m.Violations(p.Placed, c); v != nil {
		t.Errorf("heuristic proposal %s breaks %v", layout(p.Placed), v)
	}
	return p.Cost
}

// TestHeuristicBeyondTheExactLimit: 20 services in 4 chatty clusters,
// at most 4 nodes: the heuristic finds the clusters.
func TestHeuristicBeyondTheExactLimit(t *testing.T) {
	var names []string
	var edges []edge
	for c := range 4 {
		for i := range 5 {
			names = append(names, fmt.Sprintf("s%d%d", c, i))
			if i > 0 {
				edges = append(edges, edge{fmt.Sprintf("s%d%d", c, i-1), fmt.Sprintf("s%d%d", c, i), 100})
			}
		}
		if c > 0 {
			edges = append(edges, edge{fmt.Sprintf("s%d0", c-1), fmt.Sprintf("s%d0", c), 1})
		}
	}
	m := testModel(t, names, nil, edges, map[string]float64{"s00": 0.2, "s10": 0.2, "s20": 0.2, "s30": 0.2})
	cur, order := alone(names)
	p, err := m.Optimize(cur, order, Constraints{CPUBudget: map[string]float64{"*": 0.3}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Exact {
		t.Error("exact search over 20 names")
	}
	if math.Abs(p.Cost-0.003) > 1e-9 {
		t.Errorf("cost %g, want 0.003 (only the 3 links between clusters cut): %s", p.Cost, layout(p.Placed))
	}
}

func TestModelMeasuresOverheadAndCPU(t *testing.T) {
	p := &profile.Profile{Version: profile.Version, Seconds: 2,
		Windows: []profile.Window{{Node: "x", CPUSeconds: 0.5}},
		Calls: []profile.Call{
			{Caller: "front", Service: "posts", Method: "List", Calls: 10, Remote: 10, RemoteSeconds: 0.5, RequestBytes: 100, ReplyBytes: 900},
			{Caller: "posts", Service: "users", Method: "Get", Calls: 100, Remote: 50, RemoteSeconds: 0.1, LocalSeconds: 0.01, RequestBytes: 1000, ReplyBytes: 1000},
			{Caller: "", Service: "users", Method: "Get", Calls: 7},
		},
		Handlers: []profile.Handler{
			{Service: "posts", Method: "List", Calls: 10, Seconds: 0.3},
			{Service: "users", Method: "Get", Calls: 150, Seconds: 0.015},
		},
	}
	m, err := NewModel([]string{"posts", "users"}, []string{"front"}, p, 1e-6)
	if err != nil {
		t.Fatal(err)
	}
	want := []Edge{
		// 50 ms latency - 30 ms handler.
		{From: "front", To: "posts", Calls: 10, Rate: 5, Overhead: 0.02, Bytes: 100, Measured: true},
		// 2 ms latency - 0.1 ms handler; 40 bytes per remote call.
		{From: "posts", To: "users", Calls: 100, Rate: 50, Overhead: 0.0019, Bytes: 40, Measured: true},
	}
	for i := range m.Edges {
		m.Edges[i].Overhead = math.Round(m.Edges[i].Overhead*1e9) / 1e9
	}
	if !reflect.DeepEqual(m.Edges, want) {
		t.Errorf("edges\n%+v\nwant\n%+v", m.Edges, want)
	}
	// posts: 0.3 s handler - 0.11 s in its calls = 0.19 s over 2 s.
	if math.Abs(m.CPU["posts"]-0.095) > 1e-9 || math.Abs(m.CPU["users"]-0.0075) > 1e-9 {
		t.Errorf("CPU %v", m.CPU)
	}
	// 0.5 s CPU - 0.205 s in handlers over 60 remote calls.
	if math.Abs(m.RemoteCPU-0.295/60) > 1e-9 {
		t.Errorf("remote CPU %g", m.RemoteCPU)
	}
	if len(m.Notes) != 1 || !strings.Contains(m.Notes[0], "7 calls were made by no known service or main") {
		t.Errorf("notes %q", m.Notes)
	}
	// Per request of front: 1 call to posts (20 ms) and 10 to users.
	pred := m.Predict(Placed{PreferLocal: true, Nodes: map[string][]string{"front": {"a"}, "posts": {"b"}, "users": {"c"}}})
	mp := pred.Mains[0]
	if mp.Name != "front" || math.Abs(mp.RemotePerRequest-11) > 1e-9 || math.Abs(mp.LatencyPerRequest-(0.02+10*0.0019)) > 1e-9 {
		t.Errorf("main prediction %+v", mp)
	}
	if math.Abs(pred.RemoteCalls-55) > 1e-9 || math.Abs(pred.RemoteBytes-(5*100+50*40)) > 1e-9 {
		t.Errorf("prediction %+v", pred)
	}
}

func TestRewriteKeepsEverythingButTheNodes(t *testing.T) {
	src := `# blog, one node per service
app: blog
prefer_local: false
nodes:
  users: [users]   # the directory
  posts: [posts]
  gateway: ["*"]

# keep the entry point alone
advise:
  apart: [[gateway, posts]]
`
	p := &Proposal{Order: []string{"users", "gateway"}, Placed: Placed{Nodes: map[string][]string{
		"users": {"users"}, "posts": {"users"}, "gateway": {"gateway"}, "demo": {"gateway"}}}}
	got, err := Rewrite([]byte(src), p)
	if err != nil {
		t.Fatal(err)
	}
	want := `# blog, one node per service
app: blog
prefer_local: true # was false: the proposal's calls on one node are direct
nodes:
  users: [posts, users]
  gateway: [demo, gateway]

# keep the entry point alone
advise:
  apart: [[gateway, posts]]
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	diff := Diff("a\nb\nc\n", "a\nx\nc\nd\n")
	if diff != "  a\n- b\n+ x\n  c\n+ d\n" {
		t.Errorf("diff:\n%s", diff)
	}
}

// TestExactSearchOfTwelveIsQuick: the largest exact search, with sparse
// traffic (many ties) and a node limit, stays well under a second.
func TestExactSearchOfTwelveIsQuick(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var names []string
	for i := range ExactLimit {
		names = append(names, fmt.Sprintf("s%02d", i))
	}
	var edges []edge
	for i, a := range names {
		for _, b := range names[i+1:] {
			if r.IntN(4) == 0 {
				edges = append(edges, edge{a, b, int64(1 + r.IntN(100))})
			}
		}
	}
	m := testModel(t, names, nil, edges, nil)
	cur, order := alone(names)
	start := time.Now()
	p, err := m.Optimize(cur, order, Constraints{MaxNodes: 4, Apart: [][]string{{"s00", "s01", "s02", "s03"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Exact {
		t.Errorf("not exact after %d steps", p.Steps)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("exact search of %d names took %v (%d steps)", ExactLimit, d, p.Steps)
	}
	t.Logf("%d names: %d steps in %v, cost %g", ExactLimit, p.Steps, time.Since(start), p.Cost)
}

// TestHeuristicScales: 60 services, a chain of pairs, at most 10 nodes, in
// well under a few seconds.
func TestHeuristicScales(t *testing.T) {
	var names []string
	var edges []edge
	for i := range 60 {
		names = append(names, fmt.Sprintf("s%02d", i))
		if i > 0 {
			edges = append(edges, edge{names[i-1], names[i], int64(1 + (i*37)%50)})
		}
	}
	m := testModel(t, names, nil, edges, nil)
	cur, order := alone(names)
	start := time.Now()
	p, err := m.Optimize(cur, order, Constraints{MaxNodes: 10, Apart: [][]string{{"s00", "s59"}}})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("60 services took %v", d)
	}
	if v := m.Violations(p.Placed, Constraints{MaxNodes: 10, Apart: [][]string{{"s00", "s59"}}}); v != nil {
		t.Errorf("violations: %v", v)
	}
	t.Logf("60 services: %v, cost %g, %d nodes", time.Since(start), p.Cost, len(p.Placed.nodeNames()))
}

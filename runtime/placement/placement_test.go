package placement

import (
	"strings"
	"testing"
)

func TestParsePlacement(t *testing.T) {
	p, err := Parse("p.yaml", []byte(`
app: bank
prefer_local: false
kafka:
  brokers: [127.0.0.1:9092, "kafka-2:9093"]
  partitions: 12
nodes:
  front: [teller]
  core: [accounts, ledger]
  audit: ["*"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if p.App != "bank" || p.PreferLocal || p.Kafka.Partitions != 12 || len(p.Kafka.Brokers) != 2 || len(p.Nodes) != 3 {
		t.Fatalf("parsed %+v", p)
	}
	for _, c := range []struct {
		node, name string
		want       bool
	}{
		{"core", "accounts", true}, {"front", "accounts", false}, {"audit", "accounts", false},
		{"audit", "reports", true}, {"core", "reports", false}, {"nope", "teller", false},
	} {
		if got := p.Hosts(c.node, c.name); got != c.want {
			t.Errorf("Hosts(%s, %s) = %t, want %t", c.node, c.name, got, c.want)
		}
	}
	if err := p.Validate([]string{"accounts", "ledger", "reports"}, []string{"teller"}); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestPlacementDefaults(t *testing.T) {
	p, err := Parse("p.yaml", []byte("app: a\nnodes:\n  n: [x]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.PreferLocal || p.Kafka.Partitions != 8 || p.Kafka.ReplicationFactor != 0 {
		t.Fatalf("defaults: %+v", p)
	}
}

// TestPlacementReplicationFactorDefaultsToTheClusters: without
// kafka.replication_factor the placement asks for none (0), so that the
// transport creates its topics with the cluster's default.replication.factor
// (CreateTopics with -1), as DESIGN.md §8 says; 1 made every topic a single
// replica on a 3-broker cluster, whose loss stops its partitions.
func TestPlacementReplicationFactorDefaultsToTheClusters(t *testing.T) {
	for src, want := range map[string]int{
		"app: a\nnodes:\n  n: [x]\n":                                  0,
		"app: a\nkafka:\n  partitions: 4\nnodes:\n  n: [x]\n":         0,
		"app: a\nkafka:\n  replication_factor: 3\nnodes:\n  n: [x]\n": 3,
		"app: a\nkafka:\n  replication_factor: 1\nnodes:\n  n: [x]\n": 1,
	} {
		p, err := Parse("p.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if p.Kafka.ReplicationFactor != want {
			t.Errorf("%q: replication factor %d, want %d", src, p.Kafka.ReplicationFactor, want)
		}
	}
}

// TestPlacementErrorsAreAllReportedWithPositions checks every rule at once.
func TestPlacementErrorsAreAllReportedWithPositions(t *testing.T) {
	src := `app: "bad app!"
prefer_local: maybe
colour: blue
kafka:
  brokers: [localhost]
  partitions: 0
  retention: 1h
nodes:
  front: [teller, teller]
  Core: [accounts]
  empty: []
  front: [ledger]
  a: ["*"]
  b: ["*", "Bad Name", acounts]
`
	_, err := Check("p.yaml", []byte(src), []string{"accounts", "ledger", "orphan"}, []string{"teller"})
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`p.yaml:1:6: app must be a name`,
		`p.yaml:2:15: prefer_local must be true or false, not "maybe"`,
		`p.yaml:3:1: unknown key "colour"`,
		`p.yaml:5:13: kafka.brokers: "localhost" is not host:port`,
		`p.yaml:6:15: kafka.partitions must be a positive integer, not "0"`,
		`p.yaml:7:3: unknown key kafka.retention`,
		`p.yaml:9:19: node "front" lists "teller" twice`,
		`p.yaml:10:3: invalid node name "Core"`,
		`p.yaml:11:3: node "empty" is empty`,
		`p.yaml:12:3: duplicate node "front" (first defined at line 9)`,
		`p.yaml:14:7: "*" appears on nodes "a" and "b"`,
		`p.yaml:14:12: invalid name "Bad Name"`,
		`p.yaml:14:24: node "b": unknown service or main "acounts" (did you mean "accounts"?)`,
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != len(want) {
		t.Errorf("%d problems reported, want %d:\n%s", n, len(want), got)
	}
}

func TestPlacementMustPlaceEverything(t *testing.T) {
	_, err := Check("p.yaml", []byte("app: a\nnodes:\n  n: [users]\n"), []string{"users", "posts"}, []string{"gateway"})
	if err == nil || !strings.Contains(err.Error(), `service "posts" is not placed on any node`) || !strings.Contains(err.Error(), `main "gateway" is not placed`) {
		t.Fatalf("err = %v", err)
	}
	for _, src := range []string{"", "nodes: {}\napp: a", "app: a", "[1, 2]", "app: a\nnodes: [x]", "app: [\n"} {
		if _, err := Parse("p.yaml", []byte(src)); err == nil || !strings.HasPrefix(err.Error(), "p.yaml:") {
			t.Errorf("Parse(%q) = %v; want an error citing the file", src, err)
		}
	}
}

func TestPlacementWaitForInstances(t *testing.T) {
	p, err := Parse("p.yaml", []byte("app: a\nkafka:\n  wait_for_instances: true\nnodes:\n  n: [x]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Kafka.WaitForInstances {
		t.Fatalf("kafka.wait_for_instances: true parsed as %+v", p.Kafka)
	}
	p, err = Parse("p.yaml", []byte("app: a\nnodes:\n  n: [x]\n"))
	if err != nil || p.Kafka.WaitForInstances {
		t.Fatalf("default kafka.wait_for_instances: %+v, %v; want false", p, err)
	}
	for src, want := range map[string]string{
		"app: a\nkafka:\n  wait_for_instances: often\nnodes:\n  n: [x]\n": `p.yaml:3:23: kafka.wait_for_instances must be true or false, not "often"`,
		"app: a\nkafka:\n  wait_for_instances: [1]\nnodes:\n  n: [x]\n":   `p.yaml:3:23: kafka.wait_for_instances must be true or false`,
		"app: a\nkafka:\n  wait_for_instance: true\nnodes:\n  n: [x]\n":   `p.yaml:3:3: unknown key kafka.wait_for_instance (want brokers, partitions, replication_factor, group_protocol, wait_for_instances, tls or sasl)`,
	} {
		if _, err := Parse("p.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v; want %q", src, err, want)
		}
	}
}

func TestAdviseSection(t *testing.T) {
	p, err := Check("p.yaml", []byte(`app: blog
nodes:
  all: ["*"]
advise:
  pin: {gateway: edge}
  apart: [[gateway, users], [gateway, posts]]
  max_nodes: 3
  cpu_budget: {edge: 0.5, "*": 2}
`), []string{"posts", "users"}, []string{"gateway"})
	if err != nil {
		t.Fatal(err)
	}
	a := p.Advise
	if a.Pin["gateway"] != "edge" || len(a.Apart) != 2 || a.Apart[1][1] != "posts" || a.MaxNodes != 3 || a.CPUBudget["edge"] != 0.5 || a.CPUBudget["*"] != 2 {
		t.Errorf("advise %+v", a)
	}

	_, err = Check("p.yaml", []byte(`app: blog
nodes:
  all: ["*"]
advise:
  pin: {gateway: edge, users: edge, gatewy: x, posts: [a]}
  apart: [[gateway, users], [posts], [posts, Posts, posts]]
  max_nodes: 0
  cpu_budget: {edge: -1, x: lots}
  together: [[a, b]]
`), []string{"posts", "users"}, []string{"gateway"})
	want := []string{
		`p.yaml:5:37: advise.pin: unknown service or main "gatewy" (did you mean "gateway"?)`,
		`p.yaml:5:55: advise.pin: want a name here, not a list or mapping`,
		`p.yaml:6:21: advise.apart: "gateway" and "users" are both pinned to node "edge"`,
		`p.yaml:6:29: advise.apart: each group is a list of at least two services or mains`,
		`p.yaml:6:46: advise.apart: "Posts" is not a name: names match [a-z][a-z0-9_-]*`,
		`p.yaml:6:53: advise.apart: "posts" is listed twice in one group`,
		`p.yaml:7:14: advise.max_nodes must be a positive integer, not "0"`,
		`p.yaml:8:22: advise.cpu_budget: "-1" must be a positive number of cores`,
		`p.yaml:8:29: advise.cpu_budget: "lots" must be a positive number of cores`,
		`p.yaml:9:3: unknown key advise.together (want pin, apart, max_nodes or cpu_budget)`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("errors:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

func TestGroupProtocol(t *testing.T) {
	for src, want := range map[string]string{"classic": "classic", "Consumer": "consumer", "KIP-848": "consumer"} {
		p, err := Parse("p.yaml", []byte("app: a\nkafka:\n  group_protocol: "+src+"\nnodes:\n  n: [x]\n"))
		if err != nil || p.Kafka.GroupProtocol != want {
			t.Errorf("group_protocol %s: %v, %q", src, err, p.Kafka.GroupProtocol)
		}
	}
	if _, err := Parse("p.yaml", []byte("app: a\nkafka:\n  group_protocol: eager\nnodes:\n  n: [x]\n")); err == nil || !strings.Contains(err.Error(), `p.yaml:3:19: kafka.group_protocol must be classic or consumer, not "eager"`) {
		t.Errorf("group_protocol eager: %v", err)
	}
}

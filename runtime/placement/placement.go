// Package placement reads, checks and answers questions about placement
// files: which services and mains run on which node of an app, and how the
// nodes reach Kafka. The generator side (molgen check, build, graph, init)
// and the runtime both use it; it links no Kafka client.
package placement

import (
	"fmt"
	"maps"
	"net"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/molgen/molgen/internal/suggest"
	"gopkg.in/yaml.v3"
)

// Placement is a parsed placement file: which services and mains run on
// which node, and how nodes reach Kafka.
//
//	app: bank
//	prefer_local: true
//	kafka:
//	  brokers: [127.0.0.1:9092]
//	  partitions: 8
//	  tls: {ca_file: /etc/kafka/ca.pem}
//	  sasl: {mechanism: SCRAM-SHA-512, username: bank, password_env: KAFKA_PASSWORD}
//	nodes:
//	  front: [teller]
//	  core: [accounts, ledger]
//	  audit: ["*"]
type Placement struct {
	// App names Kafka topics and consumer groups.
	App string
	// PreferLocal makes calls to a service hosted on the same node direct
	// calls (default true); off, every call goes through Kafka.
	PreferLocal bool
	Kafka       Kafka
	// Nodes in file order.
	Nodes []Node
	// Source is the file the placement came from, for messages.
	Source string
	// Advise holds the constraints that 'molgen advise' keeps when it
	// proposes a placement; nodes ignore it.
	Advise Advise
	// Security holds the keys that sign the app's messages.
	Security Security
}

// Advise is the advise section of a placement: constraints on the
// placements that 'molgen advise' may propose.
//
//	advise:
//	  pin: {gateway: edge}        # gateway stays on node edge
//	  apart: [[gateway, users]]   # never on one node
//	  max_nodes: 3
//	  cpu_budget: {edge: 0.5, "*": 2}   # cores of measured handler time; "*": any other node
type Advise struct {
	// Pin maps a service or main to the node it must stay on.
	Pin map[string]string
	// Apart lists groups of services and mains no two of which may share
	// a node.
	Apart [][]string
	// MaxNodes bounds the number of nodes (0: no bound).
	MaxNodes int
	// CPUBudget bounds the cores a node's services may use, by node name;
	// "*" is the budget of every node not named.
	CPUBudget map[string]float64
	// Positions of the names, for messages: pinned names, then each apart
	// group's names.
	PinPos   map[string]Position
	ApartPos [][]Position
}

// Kafka is the kafka section of a placement.
type Kafka struct {
	Brokers []string
	// Partitions of each request topic created by molgen (default 8).
	Partitions int
	// ReplicationFactor of topics created by molgen (0, the default: the
	// cluster's default.replication.factor).
	ReplicationFactor int
	// GroupProtocol is the consumer-group protocol of the nodes' servers:
	// "classic" (the default: cooperative-sticky rebalances) or "consumer"
	// (KIP-848, Kafka 4.0+).
	GroupProtocol string
	// WaitForInstances makes a call to a service that no running instance
	// serves wait for one until its deadline (default false: it fails with
	// ErrNoInstance within about a second), for deployments that start
	// callers before the services they call.
	WaitForInstances bool
	// TLS, when set, encrypts every connection to Kafka (kafka.tls).
	TLS *TLS
	// SASL, when set, authenticates every connection to Kafka (kafka.sasl).
	SASL *SASL
}

// Node is one entry of nodes.
type Node struct {
	Name string
	// Names lists the services and mains on the node; "*" stands for
	// everything not placed on another node.
	Names []string
	// Line and Col locate the node in the file; NameLines the names.
	Line, Col int
	NameLines []Position
}

// Position is a line and column in a placement file.
type Position struct{ Line, Col int }

// Error lists every problem found in a placement file, each as
// "file:line:col: message".
type Error struct {
	File     string
	Problems []Problem
}

// Problem is one problem in a placement file.
type Problem struct {
	Line, Col int
	Msg       string
}

// Error lists the problems, one "file:line:col: message" per line.
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if p.Line > 0 {
			fmt.Fprintf(&b, "%s:%d:%d: %s", e.File, p.Line, p.Col, p.Msg)
		} else {
			fmt.Fprintf(&b, "%s: %s", e.File, p.Msg)
		}
	}
	return b.String()
}

func (e *Error) add(line, col int, format string, args ...any) {
	e.Problems = append(e.Problems, Problem{line, col, fmt.Sprintf(format, args...)})
}

func (e *Error) err() error {
	if len(e.Problems) == 0 {
		return nil
	}
	sort.SliceStable(e.Problems, func(i, j int) bool {
		a, b := e.Problems[i], e.Problems[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return e
}

// Monolith is the name of the one node of an app without a placement.
const Monolith = "monolith"

// NamePattern is what service, main and node names match.
const NamePattern = `^[a-z][a-z0-9_-]*$`

var (
	placementNameRE = regexp.MustCompile(NamePattern)
	appNameRE       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// LoadPlacement reads and checks a placement file. Errors cite the file's
// lines: "placement.yaml:7:10: node \"core\" is empty".
func Load(path string) (*Placement, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("molgen: reading placement: %w", err)
	}
	return Parse(path, data)
}

// LoadPlacementFor reads a placement file and validates it against the
// app's service and main names, reporting every problem at once.
func LoadFor(path string, services, mains []string) (*Placement, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("molgen: reading placement: %w", err)
	}
	return Check(path, data, services, mains)
}

// ParsePlacement parses a placement file's content; file names it in errors.
func Parse(file string, data []byte) (*Placement, error) {
	p, perr := parse(file, data)
	if err := perr.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// CheckPlacement parses a placement and validates it against the app's
// service and main names, reporting every problem of both steps at once.
func Check(file string, data []byte, services, mains []string) (*Placement, error) {
	p, perr := parse(file, data)
	if p != nil {
		if verr, ok := p.Validate(services, mains).(*Error); ok {
			perr.Problems = append(perr.Problems, verr.Problems...)
		}
	}
	if err := perr.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// parsePlacement parses what it can, returning the placement (nil when the
// file is not a YAML mapping) and the problems found.
func parse(file string, data []byte) (*Placement, *Error) {
	perr := &Error{File: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 0
		msg := err.Error()
		if m := regexp.MustCompile(`line (\d+)`).FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
		msg = regexp.MustCompile(`^line \d+: `).ReplaceAllString(msg, "")
		perr.add(line, 1, "invalid YAML: %s", msg)
		return nil, perr
	}
	p := &Placement{Source: file, PreferLocal: true, Kafka: Kafka{Partitions: 8}}
	if len(doc.Content) == 0 {
		perr.add(0, 0, "empty placement file: it needs at least app and nodes")
		return nil, perr
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		perr.add(root.Line, root.Column, "a placement file is a mapping with keys app, prefer_local, kafka and nodes")
		return nil, perr
	}
	seen := map[string]bool{}
	var nodesNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			perr.add(k.Line, k.Column, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "app":
			if v.Kind != yaml.ScalarNode || !appNameRE.MatchString(v.Value) {
				perr.add(v.Line, v.Column, "app must be a name of letters, digits, '.', '_' or '-' (it names Kafka topics)")
				continue
			}
			p.App = v.Value
		case "prefer_local":
			b, err := strconv.ParseBool(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil {
				perr.add(v.Line, v.Column, "prefer_local must be true or false, not %q", v.Value)
				continue
			}
			p.PreferLocal = b
		case "kafka":
			parseKafka(v, p, perr)
		case "nodes":
			nodesNode = v
		case "advise":
			parseAdvise(v, p, perr)
		case "security":
			parseSecurity(v, p, perr)
		default:
			perr.add(k.Line, k.Column, "unknown key %q (want app, prefer_local, kafka, nodes, security or advise)", k.Value)
		}
	}
	if !seen["app"] {
		perr.add(root.Line, root.Column, "missing required key app (it names Kafka topics and consumer groups)")
	}
	if nodesNode == nil {
		perr.add(root.Line, root.Column, "missing required key nodes")
	} else {
		parseNodes(nodesNode, p, perr)
	}
	return p, perr
}

func parseKafka(v *yaml.Node, p *Placement, perr *Error) {
	if v.Kind != yaml.MappingNode {
		perr.add(v.Line, v.Column, "kafka must be a mapping with brokers and partitions")
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		switch k.Value {
		case "brokers":
			if val.Kind != yaml.SequenceNode {
				perr.add(val.Line, val.Column, "kafka.brokers must be a list of host:port")
				continue
			}
			for _, b := range val.Content {
				if _, _, err := net.SplitHostPort(b.Value); b.Kind != yaml.ScalarNode || err != nil {
					perr.add(b.Line, b.Column, "kafka.brokers: %q is not host:port", b.Value)
					continue
				}
				p.Kafka.Brokers = append(p.Kafka.Brokers, b.Value)
			}
		case "partitions", "replication_factor":
			n, err := strconv.Atoi(val.Value)
			if val.Kind != yaml.ScalarNode || err != nil || n < 1 || n > 10000 {
				perr.add(val.Line, val.Column, "kafka.%s must be a positive integer, not %q", k.Value, val.Value)
				continue
			}
			if k.Value == "partitions" {
				p.Kafka.Partitions = n
			} else {
				p.Kafka.ReplicationFactor = n
			}
		case "group_protocol":
			proto, ok := NormalizeGroupProtocol(val.Value)
			if val.Kind != yaml.ScalarNode || !ok {
				perr.add(val.Line, val.Column, "kafka.group_protocol must be classic or consumer, not %q", val.Value)
				continue
			}
			p.Kafka.GroupProtocol = proto
		case "wait_for_instances":
			b, err := strconv.ParseBool(val.Value)
			if val.Kind != yaml.ScalarNode || err != nil {
				perr.add(val.Line, val.Column, "kafka.wait_for_instances must be true or false, not %q", val.Value)
				continue
			}
			p.Kafka.WaitForInstances = b
		case "tls":
			parseTLS(val, p, perr)
		case "sasl":
			parseSASL(val, p, perr)
		default:
			perr.add(k.Line, k.Column, "unknown key kafka.%s (want brokers, partitions, replication_factor, group_protocol, wait_for_instances, tls or sasl)", k.Value)
		}
	}
}

func parseAdvise(v *yaml.Node, p *Placement, perr *Error) {
	if v.Kind != yaml.MappingNode {
		perr.add(v.Line, v.Column, "advise must be a mapping with pin, apart, max_nodes or cpu_budget")
		return
	}
	a := &p.Advise
	name := func(n *yaml.Node, what string) bool {
		if n.Kind != yaml.ScalarNode {
			perr.add(n.Line, n.Column, "advise.%s: want a name here, not a list or mapping", what)
			return false
		}
		if !placementNameRE.MatchString(n.Value) {
			perr.add(n.Line, n.Column, "advise.%s: %q is not a name: names match [a-z][a-z0-9_-]*", what, n.Value)
			return false
		}
		return true
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		switch k.Value {
		case "pin":
			if val.Kind != yaml.MappingNode {
				perr.add(val.Line, val.Column, "advise.pin must map services and mains to nodes: {gateway: edge}")
				continue
			}
			for j := 0; j+1 < len(val.Content); j += 2 {
				svc, node := val.Content[j], val.Content[j+1]
				if !name(svc, "pin") || !name(node, "pin") {
					continue
				}
				if a.Pin == nil {
					a.Pin, a.PinPos = map[string]string{}, map[string]Position{}
				}
				if _, dup := a.Pin[svc.Value]; dup {
					perr.add(svc.Line, svc.Column, "advise.pin: %q is pinned twice", svc.Value)
					continue
				}
				a.Pin[svc.Value] = node.Value
				a.PinPos[svc.Value] = Position{svc.Line, svc.Column}
			}
		case "apart":
			if val.Kind != yaml.SequenceNode {
				perr.add(val.Line, val.Column, "advise.apart must be a list of groups kept on different nodes: [[gateway, users]]")
				continue
			}
			for _, g := range val.Content {
				if g.Kind != yaml.SequenceNode || len(g.Content) < 2 {
					perr.add(g.Line, g.Column, "advise.apart: each group is a list of at least two services or mains")
					continue
				}
				var names []string
				var pos []Position
				seen := map[string]bool{}
				for _, it := range g.Content {
					if !name(it, "apart") {
						continue
					}
					if seen[it.Value] {
						perr.add(it.Line, it.Column, "advise.apart: %q is listed twice in one group", it.Value)
						continue
					}
					seen[it.Value] = true
					names = append(names, it.Value)
					pos = append(pos, Position{it.Line, it.Column})
				}
				a.Apart = append(a.Apart, names)
				a.ApartPos = append(a.ApartPos, pos)
			}
		case "max_nodes":
			n, err := strconv.Atoi(val.Value)
			if val.Kind != yaml.ScalarNode || err != nil || n < 1 {
				perr.add(val.Line, val.Column, "advise.max_nodes must be a positive integer, not %q", val.Value)
				continue
			}
			a.MaxNodes = n
		case "cpu_budget":
			if val.Kind != yaml.MappingNode {
				perr.add(val.Line, val.Column, "advise.cpu_budget must map node names (or \"*\" for any other node) to cores: {edge: 0.5}")
				continue
			}
			for j := 0; j+1 < len(val.Content); j += 2 {
				node, cores := val.Content[j], val.Content[j+1]
				if node.Value != "*" && !name(node, "cpu_budget") {
					continue
				}
				c, err := strconv.ParseFloat(cores.Value, 64)
				if cores.Kind != yaml.ScalarNode || err != nil || c <= 0 || c > 1e6 {
					perr.add(cores.Line, cores.Column, "advise.cpu_budget: %q must be a positive number of cores", cores.Value)
					continue
				}
				if a.CPUBudget == nil {
					a.CPUBudget = map[string]float64{}
				}
				a.CPUBudget[node.Value] = c
			}
		default:
			perr.add(k.Line, k.Column, "unknown key advise.%s (want pin, apart, max_nodes or cpu_budget)", k.Value)
		}
	}
}

func parseNodes(v *yaml.Node, p *Placement, perr *Error) {
	if v.Kind != yaml.MappingNode {
		perr.add(v.Line, v.Column, "nodes must be a mapping from node name to a list of services and mains")
		return
	}
	if len(v.Content) == 0 {
		perr.add(v.Line, v.Column, "nodes is empty: place every service and main on a node")
		return
	}
	seenNode := map[string]int{}
	starAt := ""
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		if prev, dup := seenNode[k.Value]; dup {
			perr.add(k.Line, k.Column, "duplicate node %q (first defined at line %d)", k.Value, prev)
			continue
		}
		seenNode[k.Value] = k.Line
		if !placementNameRE.MatchString(k.Value) {
			perr.add(k.Line, k.Column, "invalid node name %q: names match [a-z][a-z0-9_-]*", k.Value)
		}
		np := Node{Name: k.Value, Line: k.Line, Col: k.Column}
		items := []*yaml.Node{val}
		if val.Kind == yaml.SequenceNode {
			items = val.Content
		} else if val.Kind != yaml.ScalarNode || val.Tag == "!!null" {
			items = nil
		}
		if len(items) == 0 {
			perr.add(k.Line, k.Column, "node %q is empty: list at least one service or main, or remove the node", k.Value)
		}
		names := map[string]bool{}
		for _, it := range items {
			if it.Kind != yaml.ScalarNode {
				perr.add(it.Line, it.Column, "node %q: entries must be service or main names", k.Value)
				continue
			}
			name := it.Value
			switch {
			case names[name]:
				perr.add(it.Line, it.Column, "node %q lists %q twice", k.Value, name)
				continue
			case name == "*":
				if starAt != "" {
					perr.add(it.Line, it.Column, "\"*\" appears on nodes %q and %q: only one node can take everything not placed elsewhere", starAt, k.Value)
					continue
				}
				starAt = k.Value
			case !placementNameRE.MatchString(name):
				perr.add(it.Line, it.Column, "invalid name %q: service and main names match [a-z][a-z0-9_-]*", name)
				continue
			}
			names[name] = true
			np.Names = append(np.Names, name)
			np.NameLines = append(np.NameLines, Position{it.Line, it.Column})
		}
		p.Nodes = append(p.Nodes, np)
	}
}

// HasNode reports whether the placement defines node.
func (p *Placement) HasNode(node string) bool {
	for _, n := range p.Nodes {
		if n.Name == node {
			return true
		}
	}
	return false
}

// NodeList returns the node names, comma-separated.
func (p *Placement) NodeList() string {
	names := make([]string, len(p.Nodes))
	for i, n := range p.Nodes {
		names[i] = n.Name
	}
	return strings.Join(names, ", ")
}

// explicit reports whether some node lists name itself (not through "*").
func (p *Placement) explicit(name string) bool {
	for _, n := range p.Nodes {
		for _, s := range n.Names {
			if s == name {
				return true
			}
		}
	}
	return false
}

// Hosts reports whether node runs the service or main called name: it is
// listed there, or the node has "*" and no node lists it.
func (p *Placement) Hosts(node, name string) bool {
	for _, n := range p.Nodes {
		if n.Name != node {
			continue
		}
		star := false
		for _, s := range n.Names {
			if s == name {
				return true
			}
			star = star || s == "*"
		}
		return star && !p.explicit(name)
	}
	return false
}

// NodesOf returns the nodes that run name, for messages.
func (p *Placement) NodesOf(name string) string {
	var out []string
	for _, n := range p.Nodes {
		if p.Hosts(n.Name, name) {
			out = append(out, n.Name)
		}
	}
	if len(out) == 0 {
		return "no node"
	}
	return "node " + strings.Join(out, ", ")
}

// validateAdvise checks that the advise section names services and mains
// of the app and that pins do not contradict apart.
func (p *Placement) validateAdvise(perr *Error, known map[string]string) {
	unknown := func(name string, pos Position, what string) bool {
		if _, ok := known[name]; ok {
			return false
		}
		msg := fmt.Sprintf("advise.%s: unknown service or main %q", what, name)
		if s := suggest.Closest(name, slices.Collect(maps.Keys(known))); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		perr.add(pos.Line, pos.Col, "%s", msg)
		return true
	}
	for _, name := range slices.Sorted(maps.Keys(p.Advise.Pin)) {
		unknown(name, p.Advise.PinPos[name], "pin")
	}
	for i, g := range p.Advise.Apart {
		for j, name := range g {
			if unknown(name, p.Advise.ApartPos[i][j], "apart") {
				continue
			}
			for _, other := range g[:j] {
				if n, ok := p.Advise.Pin[name]; ok && p.Advise.Pin[other] == n {
					pos := p.Advise.ApartPos[i][j]
					perr.add(pos.Line, pos.Col, "advise.apart: %q and %q are both pinned to node %q", other, name, n)
				}
			}
		}
	}
}

// Validate checks the placement against the app's service and main names:
// every one placed at least once, no unknown names. Errors cite lines.
func (p *Placement) Validate(services, mains []string) error {
	perr := &Error{File: p.Source}
	known := map[string]string{}
	for _, s := range services {
		known[s] = "service"
	}
	for _, m := range mains {
		known[m] = "main"
	}
	star := false
	for _, n := range p.Nodes {
		for i, name := range n.Names {
			if name == "*" {
				star = true
				continue
			}
			if _, ok := known[name]; !ok {
				pos := n.NameLines[i]
				msg := fmt.Sprintf("node %q: unknown service or main %q", n.Name, name)
				if s := suggest.Closest(name, slices.Collect(maps.Keys(known))); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				perr.add(pos.Line, pos.Col, "%s", msg)
			}
		}
	}
	p.validateAdvise(perr, known)
	if s := p.Security.Signing; s != nil {
		for _, name := range s.ServiceNames() {
			if known[name] != "service" {
				pos := s.ServicePos[name]
				msg := fmt.Sprintf("security.signing.services: unknown service %q", name)
				if sug := suggest.Closest(name, services); sug != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", sug)
				}
				perr.add(pos.Line, pos.Col, "%s", msg)
			}
		}
	}
	if !star {
		var missing []string
		for name, kind := range known {
			if !p.explicit(name) {
				missing = append(missing, kind+" "+strconv.Quote(name))
			}
		}
		sort.Strings(missing)
		for _, m := range missing {
			perr.add(0, 0, "%s is not placed on any node (add it to a node, or add \"*\" to one node)", m)
		}
	}
	return perr.err()
}

// NormalizeGroupProtocol returns "classic" or "consumer" for any spelling
// of them, or false.
func NormalizeGroupProtocol(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "classic":
		return "classic", true
	case "consumer", "kip-848", "kip848":
		return "consumer", true
	}
	return s, false
}

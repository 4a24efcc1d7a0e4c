// Package acl derives, from an app's call graph and its placement, the
// Kafka ACLs that each node's principal needs, and nothing more: 'molgen
// acls' prints them and 'molgen init -deploy' writes them (a script for
// Kafka's kafka-acls.sh and Strimzi KafkaUser resources).
//
// Kafka names are those of docs/WIRE.md: request topic molgen.<app>.req.<S>,
// consumer group molgen.<app>.<S>, and one reply topic
// molgen.<app>.reply.<node>.<instance> per running instance, which the
// instance creates, writes a heartbeat to, reads, and deletes when it stops.
//
// A node "calls S over Kafka" when code on the node (a service it hosts or
// a main placed on it) depends on S, and S is not hosted on the node or
// prefer_local is off. With prefer_local on, a call to a service hosted on
// the same node is a direct call and needs no ACL. The rules, per node:
//
//	resource (pattern)                          operations                                   when
//	topic molgen.<app>.req.<S> (literal)        Write, Describe, DescribeConfigs, Create     the node calls S over Kafka
//	topic molgen.<app>.req.<S> (literal)        Read, Describe, DescribeConfigs, Create      the node hosts S
//	group molgen.<app>.<S> (literal)            Read, Describe                               the node hosts S
//	group molgen.<app>.<S> (literal)            Describe                                     the node calls S over Kafka (callers describe the group to fail fast with ErrNoInstance)
//	topic molgen.<app>.reply.<node>. (prefixed) Read, Write, Create, Delete, Describe,       always: its instances' own reply topics
//	                                            DescribeConfigs
//	topic molgen.<app>.reply. (prefixed)        Write, Describe, DescribeConfigs             the node hosts a service (servers answer any caller)
//	cluster                                     IdempotentWrite                              always (the producer is idempotent; older brokers require it)
//
// A node gets no ACL at all when it does not use Kafka: the app has one
// node and prefer_local is on. The operations of rules on one resource are
// merged. Writing to a request topic of a service the node does not call,
// reading one of a service it does not host, joining another service's
// group and writing into another node's reply topics without hosting a
// service are all refused by the broker.
//
// One grant goes beyond the bare produce/consume path because the
// transport uses it: DescribeConfigs on the app's reply prefix (a server
// reads a caller's reply topic's max.message.bytes before its first reply
// to it, and without the right asks again on every reply). The cluster's
// DescribeConfigs is not granted: without it a node uses its own message
// size bound instead of the brokers' message.max.bytes.
//
// Derive is deterministic: nodes in placement order, each node's rules
// sorted by resource (cluster, then topics, then groups; by name), each
// rule's operations in a fixed order.
package acl

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/molgen/molgen/internal/app"
)

// DefaultPrincipal is the principal format of a node when none is given:
// {app} and {node} stand for the placement's app and the node's name.
const DefaultPrincipal = "User:molgen-{app}-{node}"

// ResourceType is the kind of a Kafka resource an ACL names.
type ResourceType int

// The resource types molgen's ACLs name, in the order rules are sorted.
const (
	Cluster ResourceType = iota
	Topic
	Group
)

// String is the name kafka-acls.sh (as --topic, --group, --cluster) and
// Strimzi use.
func (t ResourceType) String() string {
	switch t {
	case Cluster:
		return "cluster"
	case Topic:
		return "topic"
	case Group:
		return "group"
	}
	return fmt.Sprintf("ResourceType(%d)", int(t))
}

// PatternType says how a resource name matches.
type PatternType int

// Pattern types: the name itself, or every name that starts with it.
const (
	Literal PatternType = iota
	Prefixed
)

// String is kafka-acls.sh's --resource-pattern-type value.
func (p PatternType) String() string {
	if p == Prefixed {
		return "prefixed"
	}
	return "literal"
}

// Strimzi is the KafkaUser patternType value.
func (p PatternType) Strimzi() string {
	if p == Prefixed {
		return "prefix"
	}
	return "literal"
}

// Operation is a Kafka ACL operation.
type Operation int

// The operations molgen's ACLs grant, in the order a rule lists them.
const (
	Read Operation = iota
	Write
	Create
	Delete
	Describe
	DescribeConfigs
	AlterConfigs
	IdempotentWrite
)

var operationNames = [...]string{"Read", "Write", "Create", "Delete", "Describe", "DescribeConfigs", "AlterConfigs", "IdempotentWrite"}

// String is the name kafka-acls.sh (--operation) and Strimzi use; Kafka's
// protocol spells it in upper case with underscores (DESCRIBE_CONFIGS).
func (o Operation) String() string {
	if o >= 0 && int(o) < len(operationNames) {
		return operationNames[o]
	}
	return fmt.Sprintf("Operation(%d)", int(o))
}

// Resource is what an ACL applies to. Name is empty for the cluster.
type Resource struct {
	Type    ResourceType
	Name    string
	Pattern PatternType
}

// String names the resource for people: "topic molgen.blog.req.users
// (literal)", "cluster".
func (r Resource) String() string {
	if r.Type == Cluster {
		return "cluster"
	}
	return fmt.Sprintf("%s %s (%s)", r.Type, r.Name, r.Pattern)
}

// Rule allows a node's principal some operations on one resource.
type Rule struct {
	Resource   Resource
	Operations []Operation
	// Reasons say why, in words ("hosts posts", "calls users").
	Reasons []string
}

// Node is one node of the placement with its principal and rules.
type Node struct {
	Name      string
	Principal string
	// Services and Mains run on the node; Calls are the services its code
	// calls over Kafka. All sorted.
	Services, Mains, Calls []string
	// Kafka is false for a node that never talks to Kafka (one node,
	// prefer_local on): it has no rules.
	Kafka bool
	Rules []Rule
}

// Plan is the ACLs of every node of a placed app.
type Plan struct {
	App string
	// Nodes in placement order.
	Nodes []Node
	// Warnings are what an operator must know to make the ACLs mean
	// something (a SASL user shared by every node, names that overlap).
	Warnings []string
}

// Options tune Derive.
type Options struct {
	// Principal is the format of a node's principal, "TYPE:NAME" with
	// {app} and {node} replaced (default DefaultPrincipal). It must tell
	// nodes apart, so it has to contain {node}.
	Principal string
}

// RequestTopic names a service's request topic.
func RequestTopic(app, service string) string { return "molgen." + app + ".req." + service }

// GroupID names a service's consumer group.
func GroupID(app, service string) string { return "molgen." + app + "." + service }

// ReplyPrefix is the prefix of every reply topic of an app.
func ReplyPrefix(app string) string { return "molgen." + app + ".reply." }

// NodeReplyPrefix is the prefix of the reply topics of a node's instances.
// Node names have no '.', so no node's prefix covers another's.
func NodeReplyPrefix(app, node string) string { return ReplyPrefix(app) + node + "." }

var principalRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*:.+$`)

// Derive computes the ACLs of each node of l (see the package doc for the
// rules). l must have a placement.
func Derive(l *app.Layout, opts Options) (*Plan, error) {
	pl := l.Placement
	if pl == nil {
		return nil, fmt.Errorf("molgen: ACLs need a placement: a monolith without one uses no Kafka")
	}
	format := opts.Principal
	if format == "" {
		format = DefaultPrincipal
	}
	if !strings.Contains(format, "{node}") {
		return nil, fmt.Errorf("molgen: principal format %q has no {node}: every node would share one principal, and least privilege needs one per node", format)
	}
	usesKafka := len(l.Nodes) > 1 || !l.PreferLocal
	calls := map[string]map[string]bool{} // node -> services called over Kafka
	for _, c := range l.Calls() {
		if c.Local {
			continue
		}
		if calls[c.Node] == nil {
			calls[c.Node] = map[string]bool{}
		}
		calls[c.Node][c.To] = true
	}
	p := &Plan{App: pl.App}
	seen := map[string]string{} // principal -> node
	for _, nl := range l.Nodes {
		n := Node{Name: nl.Name, Services: nl.Services, Mains: nl.Mains, Kafka: usesKafka}
		n.Principal = strings.NewReplacer("{app}", pl.App, "{node}", nl.Name).Replace(format)
		if !principalRE.MatchString(n.Principal) {
			return nil, fmt.Errorf("molgen: principal %q of node %s is not TYPE:NAME (e.g. User:molgen-%s-%s)", n.Principal, nl.Name, pl.App, nl.Name)
		}
		if other, ok := seen[n.Principal]; ok {
			return nil, fmt.Errorf("molgen: nodes %s and %s would share principal %s: least privilege needs one per node", other, nl.Name, n.Principal)
		}
		seen[n.Principal] = nl.Name
		for s := range calls[nl.Name] {
			n.Calls = append(n.Calls, s)
		}
		sort.Strings(n.Calls)
		if usesKafka {
			n.Rules = nodeRules(pl.App, n)
		}
		p.Nodes = append(p.Nodes, n)
	}
	if s := pl.Kafka.SASL; s != nil && s.Username != "" && usesKafka {
		p.Warnings = append(p.Warnings, fmt.Sprintf(
			"the placement's kafka.sasl.username %q is shared by every node: these ACLs name one principal per node, so give each node its own user (MOLGEN_KAFKA_SASL_USERNAME or -kafka-sasl-username) and create those users; ACLs on one shared user would be the union of every node's", s.Username))
	}
	if strings.Contains(pl.App, ".") && usesKafka {
		p.Warnings = append(p.Warnings, fmt.Sprintf(
			"the app name %q contains '.': the prefix %s* may also cover the topics of another app whose name starts with %q; prefer an app name without '.'", pl.App, ReplyPrefix(pl.App), pl.App+".reply."))
	}
	return p, nil
}

// nodeRules applies the rules of the package doc to one node.
func nodeRules(appName string, n Node) []Rule {
	rules := map[Resource]*Rule{}
	grant := func(r Resource, why string, ops ...Operation) {
		rule := rules[r]
		if rule == nil {
			rule = &Rule{Resource: r}
			rules[r] = rule
		}
		for _, o := range ops {
			if !slices.Contains(rule.Operations, o) {
				rule.Operations = append(rule.Operations, o)
			}
		}
		if !slices.Contains(rule.Reasons, why) {
			rule.Reasons = append(rule.Reasons, why)
		}
	}
	topic := func(name string) Resource { return Resource{Type: Topic, Name: name} }
	group := func(name string) Resource { return Resource{Type: Group, Name: name} }

	grant(Resource{Type: Cluster}, "an idempotent producer", IdempotentWrite)
	grant(Resource{Type: Topic, Name: NodeReplyPrefix(appName, n.Name), Pattern: Prefixed},
		"the reply topics of its instances", Read, Write, Create, Delete, Describe, DescribeConfigs)
	for _, s := range n.Services {
		why := "hosts " + s
		grant(topic(RequestTopic(appName, s)), why, Read, Describe, DescribeConfigs, Create)
		grant(group(GroupID(appName, s)), why, Read, Describe)
	}
	for _, s := range n.Calls {
		why := "calls " + s
		grant(topic(RequestTopic(appName, s)), why, Write, Describe, DescribeConfigs, Create)
		grant(group(GroupID(appName, s)), why, Describe)
	}
	if len(n.Services) > 0 {
		grant(Resource{Type: Topic, Name: ReplyPrefix(appName), Pattern: Prefixed},
			"answers callers on every node", Write, Describe, DescribeConfigs)
	}
	out := make([]Rule, 0, len(rules))
	for _, r := range rules {
		slices.Sort(r.Operations)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Resource, out[j].Resource
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Pattern < b.Pattern
	})
	return out
}

var kubeName = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)

// KafkaUserName returns the user name of a node's principal as a Strimzi
// KafkaUser is named: the principal must be User:NAME, NAME a Kubernetes
// resource name (lower case letters, digits, '-' and '.').
func (n *Node) KafkaUserName() (string, error) {
	name, ok := strings.CutPrefix(n.Principal, "User:")
	if !ok || !kubeName.MatchString(name) {
		return "", fmt.Errorf("molgen: node %s: principal %q cannot name a Strimzi KafkaUser (User:NAME, NAME in lower case letters, digits, '-' and '.'); pass -principal with such a format", n.Name, n.Principal)
	}
	return name, nil
}

// Describe writes the plan as a readable table: per node, each resource
// and its operations.
func (p *Plan) Describe() string {
	var b strings.Builder
	for _, n := range p.Nodes {
		fmt.Fprintf(&b, "%s %s\n", n.Name, n.Principal)
		for _, r := range n.Rules {
			ops := make([]string, len(r.Operations))
			for i, o := range r.Operations {
				ops[i] = o.String()
			}
			fmt.Fprintf(&b, "  %s: %s\n", r.Resource, strings.Join(ops, ","))
		}
	}
	return b.String()
}

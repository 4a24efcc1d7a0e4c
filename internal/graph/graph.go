// Package graph draws an app's services, mains, static calls and nodes as
// Mermaid or Graphviz dot, for pasting into documents.
package graph

import (
	"fmt"
	"io"
	"strings"

	"github.com/molgen/molgen/internal/app"
)

// id names a box: a service or main on a node.
func id(node, name string) string {
	return strings.NewReplacer("-", "_").Replace(node + "__" + name)
}

// syntax is one output format: how to write each part of a drawing.
type syntax struct {
	header, footer string
	cluster        func(id, node string) string // opens a node's group
	clusterEnd     string
	main, service  func(id, name string) string
	local, remote  func(from, to string) string
}

// Mermaid is a flowchart: one subgraph per node, services as boxes, mains
// as rounded boxes, direct calls as solid arrows and calls over Kafka as
// dashed arrows labelled "kafka".
var Mermaid = syntax{
	header:     "flowchart LR\n",
	cluster:    func(id, node string) string { return fmt.Sprintf("subgraph %s[\"node %s\"]", id, node) },
	clusterEnd: "end",
	main:       func(id, name string) string { return fmt.Sprintf("%s([\"%s\"])", id, name) },
	service:    func(id, name string) string { return fmt.Sprintf("%s[\"%s\"]", id, name) },
	local:      func(from, to string) string { return fmt.Sprintf("%s --> %s", from, to) },
	remote:     func(from, to string) string { return fmt.Sprintf("%s -. kafka .-> %s", from, to) },
}

// Dot is a Graphviz digraph with one cluster per node.
var Dot = syntax{
	header: "digraph molgen {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n",
	footer: "}\n",
	cluster: func(id, node string) string {
		return fmt.Sprintf("subgraph cluster_%s {\n    label=\"node %s\";", id, node)
	},
	clusterEnd: "}",
	main:       func(id, name string) string { return fmt.Sprintf("%s [label=\"%s\", shape=ellipse];", id, name) },
	service:    func(id, name string) string { return fmt.Sprintf("%s [label=\"%s\", shape=box];", id, name) },
	local:      func(from, to string) string { return fmt.Sprintf("%s -> %s;", from, to) },
	remote: func(from, to string) string {
		return fmt.Sprintf("%s -> %s [style=dashed, label=\"kafka\"];", from, to)
	},
}

// Write draws l in the given syntax. The monolith (no placement) has no
// node groups.
func Write(w io.Writer, s syntax, l *app.Layout) error {
	var b strings.Builder
	b.WriteString(s.header)
	grouped := l.Placement != nil
	for _, n := range l.Nodes {
		indent := "  "
		if grouped {
			fmt.Fprintf(&b, "  %s\n", s.cluster(id(n.Name, ""), n.Name))
			indent = "    "
		}
		for _, m := range n.Mains {
			fmt.Fprintf(&b, "%s%s\n", indent, s.main(id(n.Name, m), m))
		}
		for _, sv := range n.Services {
			fmt.Fprintf(&b, "%s%s\n", indent, s.service(id(n.Name, sv), sv))
		}
		if grouped {
			fmt.Fprintf(&b, "  %s\n", s.clusterEnd)
		}
	}
	for _, c := range l.Calls() {
		if c.Local {
			fmt.Fprintf(&b, "  %s\n", s.local(id(c.Node, c.From), id(c.Node, c.To)))
			continue
		}
		for _, to := range c.Targets {
			fmt.Fprintf(&b, "  %s\n", s.remote(id(c.Node, c.From), id(to, c.Edge.To)))
		}
	}
	b.WriteString(s.footer)
	_, err := io.WriteString(w, b.String())
	return err
}

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

// Mermaid writes a flowchart: one subgraph per node, services as boxes,
// mains as rounded boxes, direct calls as solid arrows and calls over Kafka
// as dashed arrows labelled "kafka".
func Mermaid(w io.Writer, l *app.Layout) error {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	multi := l.Placement != nil
	for _, n := range l.Nodes {
		indent := "  "
		if multi {
			fmt.Fprintf(&b, "  subgraph %s[\"node %s\"]\n", id(n.Name, ""), n.Name)
			indent = "    "
		}
		for _, m := range n.Mains {
			fmt.Fprintf(&b, "%s%s([\"%s\"])\n", indent, id(n.Name, m), m)
		}
		for _, s := range n.Services {
			fmt.Fprintf(&b, "%s%s[\"%s\"]\n", indent, id(n.Name, s), s)
		}
		if multi {
			b.WriteString("  end\n")
		}
	}
	for _, c := range l.Calls() {
		if c.Local {
			fmt.Fprintf(&b, "  %s --> %s\n", id(c.Node, c.From), id(c.Node, c.Edge.To))
			continue
		}
		for _, to := range c.Targets {
			fmt.Fprintf(&b, "  %s -. kafka .-> %s\n", id(c.Node, c.From), id(to, c.Edge.To))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Dot writes a Graphviz digraph with one cluster per node.
func Dot(w io.Writer, l *app.Layout) error {
	var b strings.Builder
	b.WriteString("digraph molgen {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n")
	multi := l.Placement != nil
	for _, n := range l.Nodes {
		indent := "  "
		if multi {
			fmt.Fprintf(&b, "  subgraph cluster_%s {\n    label=\"node %s\";\n", id(n.Name, ""), n.Name)
			indent = "    "
		}
		for _, m := range n.Mains {
			fmt.Fprintf(&b, "%s%s [label=\"%s\", shape=ellipse];\n", indent, id(n.Name, m), m)
		}
		for _, s := range n.Services {
			fmt.Fprintf(&b, "%s%s [label=\"%s\", shape=box];\n", indent, id(n.Name, s), s)
		}
		if multi {
			b.WriteString("  }\n")
		}
	}
	for _, c := range l.Calls() {
		if c.Local {
			fmt.Fprintf(&b, "  %s -> %s;\n", id(c.Node, c.From), id(c.Node, c.Edge.To))
			continue
		}
		for _, to := range c.Targets {
			fmt.Fprintf(&b, "  %s -> %s [style=dashed, label=\"kafka\"];\n", id(c.Node, c.From), id(to, c.Edge.To))
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

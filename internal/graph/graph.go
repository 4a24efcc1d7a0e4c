// Package graph draws an app's services, mains, static calls and nodes as
// Mermaid or Graphviz dot, for pasting into documents; given measured
// rates, it labels each call with its calls per second and draws it wider
// the busier it is, calls that cross nodes in red.
package graph

import (
	"fmt"
	"io"
	"math"
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
	// measured draws a call with a rate label and a width; crossing
	// calls go over Kafka. index counts the calls drawn so far (mermaid
	// styles links by index).
	measured func(from, to, label string, width float64, crossing bool, index int) string
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
	measured: func(from, to, label string, width float64, crossing bool, index int) string {
		style := fmt.Sprintf("stroke-width:%.1fpx", width)
		if crossing {
			return fmt.Sprintf("%s -. \"%s, kafka\" .-> %s\n  linkStyle %d %s,stroke:#d33", from, label, to, index, style)
		}
		return fmt.Sprintf("%s -- \"%s\" --> %s\n  linkStyle %d %s", from, label, to, index, style)
	},
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
	measured: func(from, to, label string, width float64, crossing bool, _ int) string {
		if crossing {
			return fmt.Sprintf("%s -> %s [style=dashed, color=red, label=\"%s, kafka\", penwidth=%.1f];", from, to, label, width)
		}
		return fmt.Sprintf("%s -> %s [label=\"%s\", penwidth=%.1f];", from, to, label, width)
	},
}

// Rates are measured calls per second by caller and service.
type Rates map[app.Edge]float64

// Write draws l in the given syntax. The monolith (no placement) has no
// node groups.
func Write(w io.Writer, s syntax, l *app.Layout) error { return WriteMeasured(w, s, l, nil) }

// WriteMeasured draws l with each call labelled by its measured rate (nil
// rates: as Write). A caller that runs on several nodes has its rate
// shared evenly among them; widths run from 1 (idle) to 6 (the busiest).
func WriteMeasured(w io.Writer, s syntax, l *app.Layout, rates Rates) error {
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
	calls := l.Calls()
	if rates != nil {
		writeMeasured(&b, s, l, calls, rates)
		calls = nil
	}
	for _, c := range calls {
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

// writeMeasured draws the calls with their rates.
func writeMeasured(b *strings.Builder, s syntax, l *app.Layout, calls []app.PlacedCall, rates Rates) {
	callerNodes := map[app.Edge]int{}
	for _, c := range calls {
		callerNodes[c.Edge]++
	}
	rate := func(c app.PlacedCall) float64 { return rates[c.Edge] / float64(callerNodes[c.Edge]) }
	busiest := 0.0
	for _, c := range calls {
		busiest = max(busiest, rate(c))
	}
	width := func(r float64) float64 {
		if busiest == 0 {
			return 1
		}
		return math.Round((1+5*r/busiest)*10) / 10
	}
	i := 0
	for _, c := range calls {
		r := rate(c)
		if c.Local {
			fmt.Fprintf(b, "  %s\n", s.measured(id(c.Node, c.From), id(c.Node, c.To), perSecond(r), width(r), false, i))
			i++
			continue
		}
		for _, to := range c.Targets { // instances share the calls
			share := r / float64(len(c.Targets))
			fmt.Fprintf(b, "  %s\n", s.measured(id(c.Node, c.From), id(to, c.Edge.To), perSecond(share), width(share), true, i))
			i++
		}
	}
}

// perSecond formats a rate.
func perSecond(r float64) string {
	switch {
	case r == 0:
		return "0/s"
	case r < 10:
		return fmt.Sprintf("%.2g/s", r)
	}
	return fmt.Sprintf("%.0f/s", r)
}

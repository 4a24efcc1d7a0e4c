package app

import "github.com/molgen/molgen/runtime/placement"

// Layout is an app placed on nodes. Without a placement it is one node,
// "monolith", with everything on it.
type Layout struct {
	App         *App
	Placement   *placement.Placement // nil for the monolith
	PreferLocal bool
	Nodes       []NodeLayout
}

// NodeLayout lists what one node runs.
type NodeLayout struct {
	Name     string
	Services []string
	Mains    []string
}

// PlacedCall is a static call seen from one node that runs its caller.
type PlacedCall struct {
	Edge
	Node    string   // the node running the caller
	Local   bool     // a direct call on Node
	Targets []string // the nodes that can serve it, when not local
}

// NewLayout places a on pl (nil: the monolith).
func NewLayout(a *App, pl *placement.Placement) *Layout {
	l := &Layout{App: a, Placement: pl, PreferLocal: pl == nil || pl.PreferLocal}
	if pl == nil {
		l.Nodes = []NodeLayout{{Name: placement.Monolith, Services: a.ServiceNames(), Mains: a.MainNames()}}
		return l
	}
	for _, n := range pl.Nodes {
		nl := NodeLayout{Name: n.Name}
		for _, s := range a.ServiceNames() {
			if pl.Hosts(n.Name, s) {
				nl.Services = append(nl.Services, s)
			}
		}
		for _, m := range a.MainNames() {
			if pl.Hosts(n.Name, m) {
				nl.Mains = append(nl.Mains, m)
			}
		}
		l.Nodes = append(l.Nodes, nl)
	}
	return l
}

// hosts reports whether node runs name.
func (l *Layout) hosts(node, name string) bool {
	for _, n := range l.Nodes {
		if n.Name == node {
			for _, s := range append(append([]string{}, n.Services...), n.Mains...) {
				if s == name {
					return true
				}
			}
		}
	}
	return false
}

// NodesOf returns the nodes that run name.
func (l *Layout) NodesOf(name string) []string {
	var out []string
	for _, n := range l.Nodes {
		if l.hosts(n.Name, name) {
			out = append(out, n.Name)
		}
	}
	return out
}

// Calls returns every static call from every node that runs its caller.
func (l *Layout) Calls() []PlacedCall {
	var out []PlacedCall
	for _, e := range l.App.Edges() {
		for _, node := range l.NodesOf(e.From) {
			c := PlacedCall{Edge: e, Node: node}
			if l.PreferLocal && l.hosts(node, e.To) {
				c.Local = true
			} else {
				c.Targets = l.NodesOf(e.To)
			}
			out = append(out, c)
		}
	}
	return out
}

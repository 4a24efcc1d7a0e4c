package wireschema

import (
	"fmt"
	"path/filepath"

	"github.com/molgen/molgen/internal/diag"
)

// Compare adds to errs every change from old (the record at path) to cur
// (built from the code) that breaks the wire between their versions, at
// the position in the code of what broke: a method removed, made oneway or
// not, or with other parameters or results; a struct field removed,
// moved, or given another type. Appending struct fields and adding
// methods or services is compatible (docs/WIRE.md, "Evolution"); so is
// renaming a type or a field, which the wire does not carry.
func Compare(old, cur *Record, path string, errs *diag.List) {
	c := &comparer{old: old, cur: cur, errs: errs, seen: map[[2]string]bool{},
		advice: fmt.Sprintf("callers and servers built from the schema recorded in %s could not talk to this version: undo the change, or accept the break with 'molgen generate -allow-breaking' (which rewrites the record) and deploy callers and servers of the new version together", filepath.Base(path))}
	for _, os := range old.Services {
		var ns *Service
		for _, s := range cur.Services {
			if s.Name == os.Name {
				ns = s
			}
		}
		if ns == nil {
			continue // a service removed: its callers get ErrNoInstance, as for any service not running
		}
		for _, om := range os.Methods {
			var nm *Method
			for _, m := range ns.Methods {
				if m.Name == om.Name {
					nm = m
				}
			}
			if nm == nil {
				c.add(ns.Pos, ns.Pos, "method %s.%s was removed", ns.Iface, om.Name)
				continue
			}
			c.method(ns, om, nm)
		}
	}
}

type comparer struct {
	old, cur *Record
	errs     *diag.List
	seen     map[[2]string]bool // pairs of named types compared
	advice   string
	at       diag.Pos // the method being compared, where nothing nearer is known
}

func (c *comparer) add(pos, fallback diag.Pos, format string, args ...any) {
	if !pos.IsValid() {
		pos = fallback
	}
	c.errs.Add(pos, "wire schema: %s: %s", fmt.Sprintf(format, args...), c.advice)
}

func (c *comparer) method(s *Service, om, nm *Method) {
	c.at = nm.Pos
	if om.Oneway != nm.Oneway {
		what := "is now //molgen:oneway"
		if om.Oneway {
			what = "is no longer //molgen:oneway"
		}
		c.add(nm.Pos, s.Pos, "%s.%s %s", s.Iface, nm.Name, what)
	}
	for _, l := range []struct {
		what     string
		old, cur []*Expr
	}{{"parameters", om.Params, nm.Params}, {"results", om.Results, nm.Results}} {
		same := len(l.old) == len(l.cur)
		for i := 0; same && i < len(l.old); i++ {
			same = c.match(l.old[i], l.cur[i], s.Iface+"."+nm.Name, nm.Pos)
		}
		if !same {
			c.add(nm.Pos, s.Pos, "the %s of %s.%s changed from %s to %s", l.what, s.Iface, nm.Name, exprList(l.old), exprList(l.cur))
		}
	}
}

// match reports whether values of type o and type n are compatible at
// this level; the structs they hold are compared on their own, their
// problems reported at their fields (name is the path to them for
// messages, pos where the code writes them).
func (c *comparer) match(o, n *Expr, name string, pos diag.Pos) bool {
	var pair [2]string
	if o.Kind == Ref {
		td := c.old.byName[o.Text]
		if td == nil {
			return n.Kind == Ref && n.Text == o.Text
		}
		pair[0], o = o.Text, td.Def
	}
	if n.Kind == Ref {
		td := c.cur.byName[n.Text]
		if td == nil {
			return false
		}
		pair[1], name, n = n.Text, n.Text, td.Def
		if td.Pos.IsValid() {
			pos = td.Pos
		}
	}
	if pair[0] != "" && pair[1] != "" {
		if c.seen[pair] {
			return true
		}
		c.seen[pair] = true
	}
	if o.Kind != n.Kind {
		return false
	}
	switch o.Kind {
	case Leaf:
		return o.Text == n.Text
	case Array:
		return o.Len == n.Len && c.match(o.Elem, n.Elem, name+"[]", pos)
	case Slice, Pointer:
		return c.match(o.Elem, n.Elem, name, pos)
	case Map:
		return c.match(o.Key, n.Key, name, pos) && c.match(o.Elem, n.Elem, name, pos)
	case Struct:
		c.structs(o, n, name, pos)
		return true
	}
	return false
}

// structs compares the fields of two versions of a struct: n may append
// fields to o, nothing else.
func (c *comparer) structs(o, n *Expr, name string, pos diag.Pos) {
	index := func(field string) int {
		for j, f := range n.Fields {
			if f.Name == field {
				return j
			}
		}
		return -1
	}
	for i, of := range o.Fields {
		if i < len(n.Fields) && n.Fields[i].Name == of.Name {
			nf := n.Fields[i]
			if !c.match(of.Type, nf.Type, name+"."+nf.Name, nf.Pos) {
				c.add(nf.Pos, pos, "field %s.%s changed type from %s to %s", name, nf.Name, of.Type, nf.Type)
			}
			continue
		}
		if j := index(of.Name); j >= 0 {
			nf := n.Fields[j]
			c.add(nf.Pos, pos, "field %s.%s moved from field %d to field %d", name, of.Name, i+1, j+1)
			c.match(of.Type, nf.Type, name+"."+nf.Name, nf.Pos) // the structs it holds
			continue
		}
		if i < len(n.Fields) {
			nf := n.Fields[i]
			if !c.match(of.Type, nf.Type, name+"."+nf.Name, nf.Pos) {
				c.add(nf.Pos, pos, "field %s.%s (%s) was removed, and %s (%s) took its place", name, of.Name, of.Type, nf.Name, nf.Type)
			}
			continue // renamed: names are not on the wire
		}
		c.add(pos, c.at, "field %s.%s (%s) was removed", name, of.Name, of.Type)
	}
}

package runtime

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// A method's schema is the shape of its arguments and results, as
// docs/WIRE.md writes it: "(P1,P2,…)(R1,R2,…)", with basic kinds by name,
// bytes, time, [N]T, []T, map[K]V, *T, {F1,F2,…} for a struct's field
// types in order, bin(path.Name) for a BinaryMarshaler and @k for a
// recursive reference. Requests carry the caller's schema and replies the
// server's; two schemas are compatible when they are equal except that a
// struct of one may have more trailing fields than the same struct of the
// other (fields appended by a newer version). See compatibleSchemas.

// schemaVerdicts caches compatibleSchemas by pair: a node meets few
// schemas other than its own.
var schemaVerdicts sync.Map // [2]string -> error (nil stored as noProblem)

type noProblem struct{}

// compatibleSchemas reports whether values written for a method of schema
// a can be read for schema b (and so the reverse): nil when they can,
// otherwise an error saying where they differ, such as
// "parameter 0: field 2: int vs string".
func compatibleSchemas(a, b string) error {
	if a == b {
		return nil
	}
	key := [2]string{a, b}
	if v, ok := schemaVerdicts.Load(key); ok {
		if err, isErr := v.(error); isErr {
			return err
		}
		return nil
	}
	err := compareSchemas(a, b)
	if err != nil {
		schemaVerdicts.Store(key, err)
	} else {
		schemaVerdicts.Store(key, noProblem{})
	}
	return err
}

func compareSchemas(a, b string) error {
	sa, err := parseSchema(a)
	if err != nil {
		return err
	}
	sb, err := parseSchema(b)
	if err != nil {
		return err
	}
	for i, what := range []string{"parameter", "result"} {
		if len(sa[i].elems) != len(sb[i].elems) {
			return fmt.Errorf("%d %ss vs %d", len(sa[i].elems), what, len(sb[i].elems))
		}
		for j := range sa[i].elems {
			if err := compatShapes(sa[i].elems[j], sb[i].elems[j]); err != nil {
				return fmt.Errorf("%s %d: %w", what, j, err)
			}
		}
	}
	return nil
}

// shapeNode is a parsed shape: a leaf (basic kind, bytes, time, bin(…),
// @k) in text, or a composite with its elements.
type shapeNode struct {
	kind  byte // 0 leaf, '[' array (text is the length), 's' slice, 'm' map, '*' pointer, '{' struct, '(' list
	text  string
	elems []*shapeNode
}

func (n *shapeNode) String() string {
	switch n.kind {
	case '[':
		return "[" + n.text + "]" + n.elems[0].String()
	case 's':
		return "[]" + n.elems[0].String()
	case 'm':
		return "map[" + n.elems[0].String() + "]" + n.elems[1].String()
	case '*':
		return "*" + n.elems[0].String()
	case '{', '(':
		parts := make([]string, len(n.elems))
		for i, e := range n.elems {
			parts[i] = e.String()
		}
		if n.kind == '{' {
			return "{" + strings.Join(parts, ",") + "}"
		}
		return "(" + strings.Join(parts, ",") + ")"
	}
	return n.text
}

// compatShapes compares two shapes by docs/WIRE.md's rule.
func compatShapes(a, b *shapeNode) error {
	if a.kind != b.kind || (a.kind != '{' && a.text != b.text) {
		return fmt.Errorf("%s vs %s", a, b)
	}
	if a.kind == '{' {
		for i := 0; i < len(a.elems) && i < len(b.elems); i++ {
			if err := compatShapes(a.elems[i], b.elems[i]); err != nil {
				return fmt.Errorf("field %d: %w", i, err)
			}
		}
		return nil
	}
	if len(a.elems) != len(b.elems) {
		return fmt.Errorf("%s vs %s", a, b)
	}
	for i := range a.elems {
		if err := compatShapes(a.elems[i], b.elems[i]); err != nil {
			return err
		}
	}
	return nil
}

// parseSchema parses "(…)(…)" into the parameter and result lists.
func parseSchema(s string) ([2]*shapeNode, error) {
	p := &shapeParser{s: s}
	var out [2]*shapeNode
	for i := range out {
		if !p.eat("(") {
			return out, p.errorf("want (")
		}
		out[i] = p.list('(', ")")
	}
	if p.err == nil && p.off != len(s) {
		p.errorf("trailing text")
	}
	return out, p.err
}

type shapeParser struct {
	s   string
	off int
	err error
}

func (p *shapeParser) errorf(format string, args ...any) error {
	if p.err == nil {
		p.err = fmt.Errorf("%w: invalid schema %q at %d: %s", ErrBadRequest, p.s, p.off, fmt.Sprintf(format, args...))
	}
	p.off = len(p.s)
	return p.err
}

func (p *shapeParser) eat(prefix string) bool {
	if strings.HasPrefix(p.s[p.off:], prefix) {
		p.off += len(prefix)
		return true
	}
	return false
}

// list parses types separated by commas up to close (the opening bracket
// is read).
func (p *shapeParser) list(kind byte, close string) *shapeNode {
	n := &shapeNode{kind: kind}
	if p.eat(close) {
		return n
	}
	for p.err == nil {
		n.elems = append(n.elems, p.shape())
		if p.eat(close) {
			return n
		}
		if !p.eat(",") {
			p.errorf("want , or %s", close)
		}
	}
	return n
}

func (p *shapeParser) shape() *shapeNode {
	if p.err != nil {
		return &shapeNode{}
	}
	switch {
	case p.eat("{"):
		return p.list('{', "}")
	case p.eat("[]"):
		return &shapeNode{kind: 's', elems: []*shapeNode{p.shape()}}
	case p.eat("["):
		end := strings.IndexByte(p.s[p.off:], ']')
		if end < 0 {
			p.errorf("unterminated array length")
			return &shapeNode{}
		}
		n := p.s[p.off : p.off+end]
		if _, err := strconv.ParseUint(n, 10, 63); err != nil {
			p.errorf("invalid array length %q", n)
		}
		p.off += end + 1
		return &shapeNode{kind: '[', text: n, elems: []*shapeNode{p.shape()}}
	case p.eat("map["):
		k := p.shape()
		if !p.eat("]") {
			p.errorf("want ]")
		}
		return &shapeNode{kind: 'm', elems: []*shapeNode{k, p.shape()}}
	case p.eat("*"):
		return &shapeNode{kind: '*', elems: []*shapeNode{p.shape()}}
	case p.eat("bin("):
		start := p.off
		for depth := 1; depth > 0; p.off++ {
			if p.off == len(p.s) {
				p.errorf("unterminated bin(")
				return &shapeNode{}
			}
			switch p.s[p.off] {
			case '(':
				depth++
			case ')':
				depth--
			}
		}
		return &shapeNode{text: "bin(" + p.s[start:p.off]}
	}
	start := p.off
	for p.off < len(p.s) && (p.s[p.off] == '@' || p.s[p.off] >= 'a' && p.s[p.off] <= 'z' || p.s[p.off] >= '0' && p.s[p.off] <= '9') {
		p.off++
	}
	if p.off == start {
		p.errorf("want a type")
	}
	return &shapeNode{text: p.s[start:p.off]}
}

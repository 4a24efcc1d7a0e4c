// Package schema is the grammar of molgen's wire schemas (docs/WIRE.md,
// "Schemas"): the shape of a method's parameters and results that every
// request and ok reply carries, "(P1,P2,…)(R1,R2,…)", with basic kinds by
// name, bytes, time, [N]T, []T, map[K]V, *T, {F1,F2,…} for a struct's
// field types in order, bin(path.Name) for a BinaryMarshaler and @k for a
// recursive reference.
//
// A schema arrives in a Kafka header that anyone with write rights on a
// topic can set, so parsing is bounded: a schema longer than MaxLen or
// nesting deeper than MaxDepth is refused before any work that grows with
// it, and parsing, comparing and describing a difference all take time
// linear in the schema's length. molgen generate refuses methods whose
// schema would exceed either bound, so no legitimate peer sends one.
package schema

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Bounds of a schema the parser accepts.
const (
	// MaxLen is the most bytes a schema may take.
	MaxLen = 64 << 10
	// MaxDepth is the deepest a shape may nest: a parameter or result is
	// at level 1, and each [N], [], map[, * and { adds a level.
	MaxDepth = 100
)

// ErrInvalid marks a schema that does not follow the grammar or exceeds
// its bounds.
var ErrInvalid = errors.New("invalid schema")

// Kinds of a Shape.
const (
	Leaf    byte = 0   // a basic kind, bytes, time, bin(…) or @k: Text says which
	Array   byte = '[' // [N]T: Text is N
	Slice   byte = 's' // []T
	Map     byte = 'm' // map[K]V
	Pointer byte = '*' // *T
	Struct  byte = '{' // {F1,…}
	List    byte = '(' // a parameter or result list
)

// Shape is one parsed shape: a leaf, or a composite with its elements.
type Shape struct {
	Kind  byte
	Text  string
	Elems []*Shape
}

// Method is a parsed schema: the shapes of the parameters and results.
type Method struct {
	Params, Results *Shape
}

// Parse parses a method's schema. It never recurses deeper than
// MaxDepth, and refuses a schema over MaxLen bytes at once.
func Parse(s string) (*Method, error) {
	if len(s) > MaxLen {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrInvalid, len(s), MaxLen)
	}
	p := &parser{s: s}
	var lists [2]*Shape
	for i := range lists {
		if !p.eat("(") {
			return nil, p.errorf("want (")
		}
		lists[i] = p.list(List, ")", 0)
	}
	if p.err == nil && p.off != len(s) {
		p.errorf("trailing text")
	}
	if p.err != nil {
		return nil, p.err
	}
	return &Method{Params: lists[0], Results: lists[1]}, nil
}

type parser struct {
	s   string
	off int
	err error
}

// errorf records the first error, with the offset and a short excerpt of
// the text there (never the whole schema: describing an error must not
// cost more than parsing).
func (p *parser) errorf(format string, args ...any) error {
	if p.err == nil {
		p.err = fmt.Errorf("%w at byte %d (near %q): %s", ErrInvalid, p.off, excerpt(p.s, p.off), fmt.Sprintf(format, args...))
	}
	p.off = len(p.s)
	return p.err
}

// excerpt returns at most 24 bytes of s from off.
func excerpt(s string, off int) string {
	if off > len(s) {
		off = len(s)
	}
	end := min(len(s), off+24)
	return s[off:end]
}

func (p *parser) eat(prefix string) bool {
	if strings.HasPrefix(p.s[p.off:], prefix) {
		p.off += len(prefix)
		return true
	}
	return false
}

// list parses shapes separated by commas up to close (the opening bracket
// is read) at nesting level depth.
func (p *parser) list(kind byte, close string, depth int) *Shape {
	n := &Shape{Kind: kind}
	if p.eat(close) {
		return n
	}
	for p.err == nil {
		n.Elems = append(n.Elems, p.shape(depth+1))
		if p.eat(close) {
			return n
		}
		if p.err == nil && !p.eat(",") {
			p.errorf("want , or %s", close)
		}
	}
	return n
}

// shape parses one shape at nesting level depth. Every path that descends
// passes depth+1, and a level past MaxDepth stops the parse: the
// recursion is bounded.
func (p *parser) shape(depth int) *Shape {
	if p.err != nil {
		return &Shape{}
	}
	if depth > MaxDepth {
		p.errorf("nests deeper than %d levels", MaxDepth)
		return &Shape{}
	}
	switch {
	case p.eat("{"):
		return p.list(Struct, "}", depth)
	case p.eat("[]"):
		return &Shape{Kind: Slice, Elems: []*Shape{p.shape(depth + 1)}}
	case p.eat("["):
		end := strings.IndexByte(p.s[p.off:], ']')
		if end < 0 {
			p.errorf("unterminated array length")
			return &Shape{}
		}
		n := p.s[p.off : p.off+end]
		if _, err := strconv.ParseUint(n, 10, 63); err != nil {
			p.errorf("invalid array length %q", excerpt(n, 0))
			return &Shape{}
		}
		p.off += end + 1
		return &Shape{Kind: Array, Text: n, Elems: []*Shape{p.shape(depth + 1)}}
	case p.eat("map["):
		k := p.shape(depth + 1)
		if p.err == nil && !p.eat("]") {
			p.errorf("want ]")
		}
		return &Shape{Kind: Map, Elems: []*Shape{k, p.shape(depth + 1)}}
	case p.eat("*"):
		return &Shape{Kind: Pointer, Elems: []*Shape{p.shape(depth + 1)}}
	case p.eat("bin("):
		return p.marshaler()
	}
	start := p.off
	for p.off < len(p.s) && (p.s[p.off] == '@' || p.s[p.off] >= 'a' && p.s[p.off] <= 'z' || p.s[p.off] >= '0' && p.s[p.off] <= '9') {
		p.off++
	}
	if p.off == start {
		p.errorf("want a type")
	}
	return &Shape{Text: p.s[start:p.off]}
}

// marshaler reads the type name of bin(…) ("bin(" is read): a Go type
// name, whose type arguments may hold brackets and parentheses, up to the
// parenthesis that closes bin(.
func (p *parser) marshaler() *Shape {
	start := p.off
	for depth := 1; depth > 0; p.off++ {
		if p.off == len(p.s) {
			p.errorf("unterminated bin(")
			return &Shape{}
		}
		switch p.s[p.off] {
		case '(':
			depth++
		case ')':
			depth--
		}
	}
	return &Shape{Text: "bin(" + p.s[start:p.off]}
}

// String writes the shape in the grammar's form.
func (n *Shape) String() string {
	var b strings.Builder
	n.write(&b, -1)
	return b.String()
}

// write appends the shape to b, stopping once b holds more than limit
// bytes (limit < 0: no limit). Shapes nest at most MaxDepth deep.
func (n *Shape) write(b *strings.Builder, limit int) {
	if limit >= 0 && b.Len() > limit {
		return
	}
	switch n.Kind {
	case Array:
		b.WriteString("[" + n.Text + "]")
		n.Elems[0].write(b, limit)
	case Slice:
		b.WriteString("[]")
		n.Elems[0].write(b, limit)
	case Map:
		b.WriteString("map[")
		n.Elems[0].write(b, limit)
		b.WriteString("]")
		n.Elems[1].write(b, limit)
	case Pointer:
		b.WriteString("*")
		n.Elems[0].write(b, limit)
	case Struct, List:
		open, close := "{", "}"
		if n.Kind == List {
			open, close = "(", ")"
		}
		b.WriteString(open)
		for i, e := range n.Elems {
			if i > 0 {
				b.WriteString(",")
			}
			e.write(b, limit)
			if limit >= 0 && b.Len() > limit {
				return
			}
		}
		b.WriteString(close)
	default:
		b.WriteString(n.Text)
	}
}

// shortLen is the most bytes of a shape that an error message quotes.
const shortLen = 80

// Short returns the shape's form cut to about 80 bytes ("…" marks a cut):
// what an error message quotes of a hostile schema.
func (n *Shape) Short() string {
	var b strings.Builder
	n.write(&b, shortLen)
	if b.Len() > shortLen {
		return b.String()[:shortLen] + "…"
	}
	return b.String()
}

// Compatible reports whether values written for schema a can be read for
// schema b (and so the reverse): nil when they can, otherwise an error
// saying where they differ, such as "parameter 0: field 2: int vs string".
// Two schemas are compatible when they are equal except that a struct of
// one may have more trailing fields than the same struct of the other
// (fields appended by a newer version).
func Compatible(a, b *Method) error {
	for i, pair := range [2][2]*Shape{{a.Params, b.Params}, {a.Results, b.Results}} {
		what := [2]string{"parameter", "result"}[i]
		x, y := pair[0], pair[1]
		if len(x.Elems) != len(y.Elems) {
			return fmt.Errorf("%d %ss vs %d", len(x.Elems), what, len(y.Elems))
		}
		for j := range x.Elems {
			var path []int
			if bad := mismatch(x.Elems[j], y.Elems[j], &path); bad != nil {
				return fmt.Errorf("%s %d: %s%s vs %s", what, j, fieldPath(path), bad[0].Short(), bad[1].Short())
			}
		}
	}
	return nil
}

// mismatch returns the first pair of shapes of a and b that differ by the
// evolution rule, or nil, and the struct field indexes on the way to it in
// path. The recursion is as deep as the shapes, which Parse bounds.
func mismatch(a, b *Shape, path *[]int) *[2]*Shape {
	if a.Kind != b.Kind || (a.Kind != Struct && a.Text != b.Text) {
		return &[2]*Shape{a, b}
	}
	if a.Kind == Struct {
		for i := 0; i < len(a.Elems) && i < len(b.Elems); i++ {
			*path = append(*path, i)
			if bad := mismatch(a.Elems[i], b.Elems[i], path); bad != nil {
				return bad
			}
			*path = (*path)[:len(*path)-1]
		}
		return nil
	}
	if len(a.Elems) != len(b.Elems) {
		return &[2]*Shape{a, b}
	}
	for i := range a.Elems {
		if bad := mismatch(a.Elems[i], b.Elems[i], path); bad != nil {
			return bad
		}
	}
	return nil
}

// fieldPath formats struct field indexes as "field 1: field 0: ".
func fieldPath(path []int) string {
	var b strings.Builder
	for _, i := range path {
		b.WriteString("field ")
		b.WriteString(strconv.Itoa(i))
		b.WriteString(": ")
	}
	return b.String()
}

// CompatibleText parses both schemas and compares them (Compatible).
func CompatibleText(a, b string) error {
	ma, err := Parse(a)
	if err != nil {
		return err
	}
	mb, err := Parse(b)
	if err != nil {
		return err
	}
	return Compatible(ma, mb)
}

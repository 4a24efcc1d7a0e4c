// Package wireschema describes the wire form of services: the schema of
// each method that requests and replies carry (docs/WIRE.md, "Schemas"),
// and the record of a package's wire schema that molgen generate keeps
// beside the generated code and checks every change against, refusing
// the ones that break callers or servers of the recorded version.
package wireschema

import (
	"fmt"
	"strings"

	"github.com/molgen/molgen/internal/model"
)

// MethodSchema is the schema of a method: the shape of its parameters and
// results, "(P1,P2,…)(R1,R2,…)". The runtime compares schemas by the
// evolution rule of docs/WIRE.md.
func MethodSchema(m *model.Method) string {
	var b strings.Builder
	b.WriteString("(")
	for i, p := range m.Params {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(Shape(p.Type, nil))
	}
	b.WriteString(")(")
	for i, r := range m.Results {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(Shape(r.Type, nil))
	}
	b.WriteString(")")
	return b.String()
}

// Shape describes how values of t are encoded, ignoring names: two types
// with the same shape have the same wire form. Recursive defined types
// refer back to themselves by position on the stack.
func Shape(t *model.Type, stack []*model.Type) string {
	t = model.Resolve(t)
	switch t.Kind {
	case model.Named:
		for i, s := range stack {
			if s == t {
				return fmt.Sprintf("@%d", len(stack)-i)
			}
		}
		return Shape(t.Underlying, append(stack, t))
	case model.Marshaler:
		return "bin(" + model.TypeKey(t) + ")"
	case model.Bytes:
		return "bytes"
	case model.Time:
		return "time"
	case model.Array:
		return fmt.Sprintf("[%d]%s", t.Len, Shape(t.Elem, stack))
	case model.Slice:
		return "[]" + Shape(t.Elem, stack)
	case model.Map:
		return "map[" + Shape(t.Key, stack) + "]" + Shape(t.Elem, stack)
	case model.Pointer:
		return "*" + Shape(t.Elem, stack)
	case model.Struct:
		fs := make([]string, len(t.Fields))
		for i, f := range t.Fields {
			fs[i] = Shape(f.Type, stack)
		}
		return "{" + strings.Join(fs, ",") + "}"
	}
	return t.Kind.BasicName()
}

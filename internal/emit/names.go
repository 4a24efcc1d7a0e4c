package emit

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"github.com/molgen/molgen/internal/model"
)

// typeKey is a unique, stable text for a type, used to name and order codec
// functions.
func typeKey(t *model.Type) string {
	t = resolve(t)
	switch t.Kind {
	case model.Named, model.Marshaler:
		s := t.Pkg + "." + t.Name
		if len(t.TypeArgs) > 0 {
			args := make([]string, len(t.TypeArgs))
			for i, a := range t.TypeArgs {
				args[i] = typeKey(a)
			}
			s += "[" + strings.Join(args, ",") + "]"
		}
		return s
	case model.Bytes:
		return "[]byte"
	case model.Time:
		return "time.Time"
	case model.Array:
		return fmt.Sprintf("[%d]%s", t.Len, typeKey(t.Elem))
	case model.Slice:
		return "[]" + typeKey(t.Elem)
	case model.Map:
		return "map[" + typeKey(t.Key) + "]" + typeKey(t.Elem)
	case model.Pointer:
		return "*" + typeKey(t.Elem)
	case model.Struct:
		fs := make([]string, len(t.Fields))
		for i, f := range t.Fields {
			fs[i] = f.Name + " " + typeKey(f.Type)
		}
		return "struct{" + strings.Join(fs, "; ") + "}"
	}
	return t.Kind.BasicName()
}

// mangle turns a type into an identifier fragment: User, other_Money,
// Page_of_User.
func mangle(t *model.Type, pkgPath string) string {
	t = resolve(t)
	switch t.Kind {
	case model.Named, model.Marshaler:
		s := t.Name
		if t.Pkg != pkgPath {
			s = t.PkgName + "_" + s
		}
		for _, a := range t.TypeArgs {
			s += "_" + mangle(a, pkgPath)
		}
		return s
	case model.Bytes:
		return "bytes"
	case model.Time:
		return "time"
	case model.Array:
		return fmt.Sprintf("array%d_%s", t.Len, mangle(t.Elem, pkgPath))
	case model.Slice:
		return "slice_" + mangle(t.Elem, pkgPath)
	case model.Map:
		return "map_" + mangle(t.Key, pkgPath) + "_" + mangle(t.Elem, pkgPath)
	case model.Pointer:
		return "ptr_" + mangle(t.Elem, pkgPath)
	case model.Struct:
		return "struct"
	}
	return t.Kind.BasicName()
}

// codecNames assigns each defined type with a codec function a unique name
// fragment, in a deterministic order.
func codecNames(types []*model.Type, pkgPath string) map[*model.Type]string {
	sort.Slice(types, func(i, j int) bool { return typeKey(types[i]) < typeKey(types[j]) })
	out := map[*model.Type]string{}
	used := map[string]bool{}
	for _, t := range types {
		base := mangle(t, pkgPath)
		name := base
		for i := 2; used[name]; i++ {
			name = fmt.Sprintf("%s_%d", base, i)
		}
		used[name] = true
		out[t] = name
	}
	return out
}

// shape describes how values of t are encoded, ignoring names: two types
// with the same shape have the same wire form. Recursive defined types
// refer back to themselves by position on the stack.
func shape(t *model.Type, stack []*model.Type) string {
	t = resolve(t)
	switch t.Kind {
	case model.Named:
		for i, s := range stack {
			if s == t {
				return fmt.Sprintf("@%d", len(stack)-i)
			}
		}
		return shape(t.Underlying, append(stack, t))
	case model.Marshaler:
		return "bin(" + typeKey(t) + ")"
	case model.Bytes:
		return "bytes"
	case model.Time:
		return "time"
	case model.Array:
		return fmt.Sprintf("[%d]%s", t.Len, shape(t.Elem, stack))
	case model.Slice:
		return "[]" + shape(t.Elem, stack)
	case model.Map:
		return "map[" + shape(t.Key, stack) + "]" + shape(t.Elem, stack)
	case model.Pointer:
		return "*" + shape(t.Elem, stack)
	case model.Struct:
		fs := make([]string, len(t.Fields))
		for i, f := range t.Fields {
			fs[i] = shape(f.Type, stack)
		}
		return "{" + strings.Join(fs, ",") + "}"
	}
	return t.Kind.BasicName()
}

// schema fingerprints the wire form of a method's arguments and results, so
// that a server can refuse a request encoded for other types.
func schema(m *model.Method) string {
	var b strings.Builder
	b.WriteString("(")
	for i, p := range m.Params {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(shape(p.Type, nil))
	}
	b.WriteString(")(")
	for i, r := range m.Results {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(shape(r.Type, nil))
	}
	b.WriteString(")")
	h := fnv.New64a()
	h.Write([]byte(b.String()))
	return fmt.Sprintf("%016x", h.Sum64())
}

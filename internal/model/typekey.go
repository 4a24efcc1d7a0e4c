package model

import (
	"fmt"
	"strings"
)

// TypeKey is a unique, stable text for a type, used to name and order
// what is generated for it.
func TypeKey(t *Type) string {
	t = Resolve(t)
	switch t.Kind {
	case Named, Marshaler:
		s := t.Pkg + "." + t.Name
		if len(t.TypeArgs) > 0 {
			args := make([]string, len(t.TypeArgs))
			for i, a := range t.TypeArgs {
				args[i] = TypeKey(a)
			}
			s += "[" + strings.Join(args, ",") + "]"
		}
		return s
	case Bytes:
		return "[]byte"
	case Time:
		return "time.Time"
	case Array:
		return fmt.Sprintf("[%d]%s", t.Len, TypeKey(t.Elem))
	case Slice:
		return "[]" + TypeKey(t.Elem)
	case Map:
		return "map[" + TypeKey(t.Key) + "]" + TypeKey(t.Elem)
	case Pointer:
		return "*" + TypeKey(t.Elem)
	case Struct:
		fs := make([]string, len(t.Fields))
		for i, f := range t.Fields {
			fs[i] = f.Name + " " + TypeKey(f.Type)
		}
		return "struct{" + strings.Join(fs, "; ") + "}"
	}
	return t.Kind.BasicName()
}

// Resolve looks through aliases.
func Resolve(t *Type) *Type {
	for t.Kind == Alias {
		t = t.Underlying
	}
	return t
}

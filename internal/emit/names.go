package emit

import (
	"fmt"
	"sort"

	"github.com/molgen/molgen/internal/model"
)

// mangle turns a type into an identifier fragment: User, other_Money,
// Page_of_User.
func mangle(t *model.Type, pkgPath string) string {
	t = model.Resolve(t)
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
	sort.Slice(types, func(i, j int) bool { return model.TypeKey(types[i]) < model.TypeKey(types[j]) })
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

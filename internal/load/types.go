package load

import (
	"go/token"
	"go/types"
	"strings"

	"github.com/molgen/molgen/internal/diag"
	"github.com/molgen/molgen/internal/model"
	"golang.org/x/tools/go/types/typeutil"
)

// problem is a reason a type cannot be serialized, with the path of the
// offending part, e.g. {"Money.cents", "unexported field"}. Path segments
// are joined with ": " where the path crosses into another defined type.
// pos is the declaration of the innermost struct field on the path (where
// the problem is reported), or NoPos when the path crosses no field.
type problem struct {
	path   []string
	reason string
	pos    token.Pos
}

// String prints the path and the reason: "Money.cents: unexported field".
// A reason starting with "is " says what the last element of the path is:
// "Address.Notes: bytes.Buffer is not supported: ...".
func (p problem) String() string {
	switch {
	case len(p.path) == 0:
		return p.reason
	case strings.HasPrefix(p.reason, "is "):
		return strings.Join(p.path, ": ") + " " + p.reason
	}
	return strings.Join(p.path, ": ") + ": " + p.reason
}

// converter turns go/types types into model types, checking that each is
// serializable. Defined types are converted once and shared.
type converter struct {
	pkg    *types.Package // the package generated code will live in
	module string         // the main module's path, which is not the standard library
	named  typeutil.Map   // types.Type -> *namedResult
	qual   types.Qualifier

	marshaler, unmarshaler *types.Interface
	fset                   *token.FileSet // positions of types and fields, for the wire schema record
}

type namedResult struct {
	typ      *model.Type
	problems []problem // relative to the defined type, paths starting with its name
	done     bool
}

func newConverter(pkg *types.Package, module string, fset *token.FileSet) *converter {
	c := &converter{pkg: pkg, module: module, fset: fset}
	c.qual = pkgNameQualifier(pkg)
	bytes := types.NewSlice(types.Typ[types.Byte])
	errT := types.Universe.Lookup("error").Type()
	c.marshaler = types.NewInterfaceType([]*types.Func{
		types.NewFunc(token.NoPos, nil, "MarshalBinary", types.NewSignatureType(nil, nil, nil, nil,
			types.NewTuple(types.NewVar(token.NoPos, nil, "", bytes), types.NewVar(token.NoPos, nil, "", errT)), false)),
	}, nil).Complete()
	c.unmarshaler = types.NewInterfaceType([]*types.Func{
		types.NewFunc(token.NoPos, nil, "UnmarshalBinary", types.NewSignatureType(nil, nil, nil,
			types.NewTuple(types.NewVar(token.NoPos, nil, "", bytes)),
			types.NewTuple(types.NewVar(token.NoPos, nil, "", errT)), false)),
	}, nil).Complete()
	return c
}

// position is where pos is, when the type's package came with positions.
func (c *converter) position(pos token.Pos) diag.Pos {
	if c.fset == nil || !pos.IsValid() {
		return diag.Pos{}
	}
	return position(c.fset, pos)
}

// display prints t the way the user wrote it in pkg.
func (c *converter) display(t types.Type) string { return types.TypeString(t, c.qual) }

// convert converts a parameter or result type. The returned problems have
// full paths starting at the top-level type.
func (c *converter) convert(t types.Type) (*model.Type, []problem) {
	top := c.display(t)
	if lock, std := c.lockByValue(t); lock != nil {
		p := problem{reason: c.lockReason(lock, "pass a pointer")}
		if std {
			return nil, []problem{p}
		}
		mt, probs := c.typ(t, top)
		return mt, append([]problem{p}, probs...)
	}
	return c.typ(t, top)
}

// lockByValue returns the defined type held by value in t (itself, or the
// element of an array) whose pointer declares Lock and Unlock, and whether
// it belongs to the standard library. Generated code copies values, and go
// vet's copylocks check forbids copying such a value. A struct that only
// embeds a lock is not one itself: its field is reported.
func (c *converter) lockByValue(t types.Type) (*types.Named, bool) {
	for {
		a, ok := types.Unalias(t).(*types.Array)
		if !ok {
			break
		}
		t = a.Elem()
	}
	n, ok := types.Unalias(t).(*types.Named)
	if !ok || n.Obj().Pkg() == nil || !declaresOwn(types.NewPointer(n), "Lock", "Unlock") {
		return nil, false
	}
	return n, c.isStd(n.Obj().Pkg().Path())
}

// lockReason says why a lock cannot be sent, and what to do instead.
func (c *converter) lockReason(lock *types.Named, fix string) string {
	if c.isStd(lock.Obj().Pkg().Path()) {
		return c.display(lock) + " is not supported: a lock of the standard library is neither copied nor encoded; keep it out of the types that cross the wire"
	}
	return c.display(lock) + " has Lock and Unlock methods, and generated code copies values (go vet's copylocks forbids it): " + fix
}

// isStd reports whether path is a package of the standard library: its
// first element has no dot (the go command's own rule), and it is not in
// the main module.
func (c *converter) isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	if strings.Contains(first, ".") {
		return false
	}
	return c.module == "" || path != c.module && !strings.HasPrefix(path, c.module+"/")
}

// typ converts t, found at path cur (the text of the current path segment).
func (c *converter) typ(t types.Type, cur string) (*model.Type, []problem) {
	if a, ok := t.(*types.Alias); ok && c.keepAlias(a) {
		target, probs := c.typ(types.Unalias(a), cur)
		if target == nil {
			return nil, probs
		}
		obj := a.Obj()
		return &model.Type{Kind: model.Alias, Pkg: obj.Pkg().Path(), PkgName: obj.Pkg().Name(), Name: obj.Name(), Underlying: target}, probs
	}
	t = types.Unalias(t)
	switch t := t.(type) {
	case *types.Basic:
		return c.basic(t, cur)
	case *types.Named:
		return c.namedType(t, cur)
	case *types.Pointer:
		elem, probs := c.typ(t.Elem(), cur)
		return &model.Type{Kind: model.Pointer, Elem: elem}, probs
	case *types.Slice:
		if b, ok := types.Unalias(t.Elem()).(*types.Basic); ok && b.Kind() == types.Uint8 {
			return &model.Type{Kind: model.Bytes}, nil
		}
		elem, probs := c.typ(t.Elem(), cur+"[]")
		return &model.Type{Kind: model.Slice, Elem: elem}, probs
	case *types.Array:
		elem, probs := c.typ(t.Elem(), cur+"[]")
		return &model.Type{Kind: model.Array, Elem: elem, Len: t.Len()}, probs
	case *types.Map:
		var probs []problem
		if !types.Comparable(t.Key()) {
			probs = append(probs, problem{path: []string{cur + "[key]"}, reason: "map key type " + c.display(t.Key()) + " is not comparable"})
		} else if hasPointer(t.Key(), map[types.Type]bool{}) {
			probs = append(probs, problem{path: []string{cur + "[key]"}, reason: "map key type " + c.display(t.Key()) + " contains a pointer: keys compare by address, which means nothing on another node"})
		}
		key, kp := c.typ(t.Key(), cur+"[key]")
		elem, ep := c.typ(t.Elem(), cur+"[value]")
		probs = append(append(probs, kp...), ep...)
		return &model.Type{Kind: model.Map, Key: key, Elem: elem}, probs
	case *types.Struct:
		return c.structType(t, cur)
	case *types.Interface:
		if types.Identical(t, types.Universe.Lookup("error").Type().Underlying()) {
			return nil, []problem{{path: []string{cur}, reason: "error is allowed only as the last result"}}
		}
		return nil, []problem{{path: []string{cur}, reason: "interface types are not serializable"}}
	case *types.Chan:
		return nil, []problem{{path: []string{cur}, reason: "channels are not serializable"}}
	case *types.Signature:
		return nil, []problem{{path: []string{cur}, reason: "funcs are not serializable"}}
	case *types.TypeParam:
		return nil, []problem{{path: []string{cur}, reason: "type parameters are not serializable"}}
	}
	return nil, []problem{{path: []string{cur}, reason: "type " + c.display(t) + " is not serializable"}}
}

// isTimeStruct reports whether u is time.Time's underlying struct, so that
// a type defined from time.Time can be encoded like one.
func isTimeStruct(u types.Type) bool {
	return types.TypeString(u, nil) == "struct{wall uint64; ext int64; loc *time.Location}"
}

// hasPointer reports whether values of t hold a pointer (compared by
// address when used as a map key).
func hasPointer(t types.Type, seen map[types.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch u := t.Underlying().(type) {
	case *types.Pointer:
		return true
	case *types.Array:
		return hasPointer(u.Elem(), seen)
	case *types.Struct:
		for i := 0; i < u.NumFields(); i++ {
			if hasPointer(u.Field(i).Type(), seen) {
				return true
			}
		}
	}
	return false
}

// keepAlias reports whether generated code can name the alias a itself: a
// package-level, non-generic alias that is exported or local.
func (c *converter) keepAlias(a *types.Alias) bool {
	obj := a.Obj()
	if obj.Pkg() == nil || obj.Parent() != obj.Pkg().Scope() {
		return false
	}
	if a.TypeArgs().Len() > 0 || a.TypeParams().Len() > 0 {
		return false
	}
	return obj.Exported() || obj.Pkg() == c.pkg
}

var basicKinds = map[types.BasicKind]model.Kind{
	types.Bool: model.Bool, types.Int: model.Int, types.Int8: model.Int8,
	types.Int16: model.Int16, types.Int32: model.Int32, types.Int64: model.Int64,
	types.Uint: model.Uint, types.Uint8: model.Uint8, types.Uint16: model.Uint16,
	types.Uint32: model.Uint32, types.Uint64: model.Uint64, types.Uintptr: model.Uintptr,
	types.Float32: model.Float32, types.Float64: model.Float64, types.String: model.String,
}

func (c *converter) basic(t *types.Basic, cur string) (*model.Type, []problem) {
	if k, ok := basicKinds[t.Kind()]; ok {
		return &model.Type{Kind: k}, nil
	}
	switch t.Kind() {
	case types.UnsafePointer:
		return nil, []problem{{path: []string{cur}, reason: "unsafe.Pointer is not serializable"}}
	case types.Complex64, types.Complex128:
		return nil, []problem{{path: []string{cur}, reason: "complex numbers are not serializable"}}
	case types.Invalid:
		return nil, []problem{{path: []string{cur}, reason: "invalid type: its package does not compile (go build shows why)"}}
	}
	return nil, []problem{{path: []string{cur}, reason: "type " + t.String() + " is not serializable"}}
}

func (c *converter) structType(t *types.Struct, cur string) (*model.Type, []problem) {
	mt := &model.Type{Kind: model.Struct}
	var probs []problem
	for i := 0; i < t.NumFields(); i++ {
		f := t.Field(i)
		path := cur + "." + f.Name()
		if !f.Exported() {
			probs = append(probs, problem{[]string{path}, "unexported field", f.Pos()})
			continue
		}
		var fp []problem
		lock, std := c.lockByValue(f.Type())
		if lock != nil {
			fp = append(fp, problem{path: []string{path}, reason: c.lockReason(lock, "make the field a pointer")})
		}
		var ft *model.Type
		if !std {
			var tp []problem
			ft, tp = c.typ(f.Type(), path)
			fp = append(fp, tp...)
		}
		// Problems inside the field's type that no inner field locates
		// are reported at this field.
		for i := range fp {
			if !fp[i].pos.IsValid() {
				fp[i].pos = f.Pos()
			}
		}
		probs = append(probs, fp...)
		mt.Fields = append(mt.Fields, model.Field{Name: f.Name(), Embedded: f.Embedded(), Type: ft, Tag: t.Tag(i), Pos: c.position(f.Pos())})
	}
	return mt, probs
}

func (c *converter) namedType(t *types.Named, cur string) (*model.Type, []problem) {
	obj := t.Obj()
	if obj.Pkg() == nil { // error, comparable
		return c.typ(t.Underlying(), cur)
	}
	if obj.Pkg().Path() == "time" && obj.Name() == "Time" {
		return &model.Type{Kind: model.Time}, nil
	}
	if v, ok := c.named.At(t).(*namedResult); ok {
		return v.typ, c.rebase(v, cur)
	}
	name := c.display(t)
	res := &namedResult{typ: &model.Type{
		Kind:    model.Named,
		Pkg:     obj.Pkg().Path(),
		PkgName: obj.Pkg().Name(),
		Name:    obj.Name(),
		Pos:     c.position(obj.Pos()),
	}}
	c.named.Set(t, res)
	if !obj.Exported() && obj.Pkg() != c.pkg {
		res.problems = append(res.problems, problem{path: []string{name}, reason: "unexported type of another package cannot be named by generated code"})
	}
	if obj.Parent() != nil && obj.Parent() != obj.Pkg().Scope() {
		res.problems = append(res.problems, problem{path: []string{name}, reason: "type declared inside a function cannot be named by generated code"})
	}
	if args := t.TypeArgs(); args != nil {
		// A type argument is only named by generated code: whether it
		// can be encoded is checked where the type uses it (in the
		// underlying type), so ID[Account] with a phantom Account is fine.
		for i := 0; i < args.Len(); i++ {
			at, ap := c.typ(args.At(i), name)
			if at == nil {
				res.problems = append(res.problems, problem{path: []string{name}, reason: "type argument " + c.display(args.At(i)) + " cannot be written by generated code"})
				continue
			}
			for _, p := range ap {
				if strings.Contains(p.reason, "cannot be named") {
					res.problems = append(res.problems, p)
				}
			}
			res.typ.TypeArgs = append(res.typ.TypeArgs, at)
		}
	}
	ptr := types.NewPointer(t)
	if isTimeStruct(t.Underlying()) {
		// type Stamp time.Time: encoded as a time.Time, by conversion.
		res.typ.Underlying = &model.Type{Kind: model.Time}
		res.done = true
		return res.typ, c.rebase(res, cur)
	}
	if types.Implements(ptr, c.marshaler) && types.Implements(ptr, c.unmarshaler) && declaresOwn(ptr, "MarshalBinary", "UnmarshalBinary") {
		res.typ.Kind = model.Marshaler
	} else {
		u, probs := c.typ(t.Underlying(), name)
		res.typ.Underlying = u
		if c.isStd(obj.Pkg().Path()) && len(probs) > 0 && (len(probs) > 1 || len(probs[0].path) > 1 || probs[0].path[0] != name) {
			// The standard library's internals are not the user's to
			// change: say so once, at the type.
			probs = []problem{{path: []string{name}, reason: "is not supported: the standard library's internals are not encoded (this type has fields that are unexported or not serializable)"}}
		}
		res.problems = append(res.problems, probs...)
	}
	res.done = true
	return res.typ, c.rebase(res, cur)
}

// declaresOwn reports whether the methods are declared on t's own type
// rather than promoted from an embedded field: a struct embedding a
// time.Time has MarshalBinary, but it would encode only that field.
func declaresOwn(t types.Type, names ...string) bool {
	ms := types.NewMethodSet(t)
	for _, name := range names {
		sel := ms.Lookup(nil, name)
		if sel == nil || len(sel.Index()) != 1 {
			return false
		}
	}
	return true
}

// rebase returns a defined type's problems as seen from path cur: when the
// type is reached through a field or element, that path comes first.
func (c *converter) rebase(v *namedResult, cur string) []problem {
	if !v.done || len(v.problems) == 0 {
		return nil // in progress: a recursive use; reported at the outer level
	}
	out := make([]problem, len(v.problems))
	for i, p := range v.problems {
		if p.path[0] == cur || strings.HasPrefix(p.path[0], cur+".") || strings.HasPrefix(p.path[0], cur+"[") {
			out[i] = p
			continue
		}
		out[i] = problem{append([]string{cur}, p.path...), p.reason, p.pos}
	}
	return out
}

// markRecursive sets Recursive on every defined type that can reach itself.
func markRecursive(all []*model.Type) {
	for _, t := range all {
		if t.Kind == model.Named {
			seen := map[*model.Type]bool{}
			t.Recursive = reaches(t.Underlying, t, seen)
		}
	}
}

func reaches(from, target *model.Type, seen map[*model.Type]bool) bool {
	if from == nil {
		return false
	}
	if from == target {
		return true
	}
	if seen[from] {
		return false
	}
	seen[from] = true
	switch from.Kind {
	case model.Named, model.Alias:
		return reaches(from.Underlying, target, seen)
	case model.Array, model.Slice, model.Pointer:
		return reaches(from.Elem, target, seen)
	case model.Map:
		return reaches(from.Key, target, seen) || reaches(from.Elem, target, seen)
	case model.Struct:
		for _, f := range from.Fields {
			if reaches(f.Type, target, seen) {
				return true
			}
		}
	}
	return false
}

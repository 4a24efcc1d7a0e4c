package emit

import (
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/dave/jennifer/jen"
	"github.com/molgen/molgen/internal/model"
)

// scope decides the names a generated file declares and imports under, so
// that they neither shadow nor clash with the user's package: a local
// variable never takes the name of a type or package the code refers to,
// and an import never takes the name of a package-level declaration.
type scope struct {
	taken map[string]bool // names generated code refers to (types, funcs, import names)
}

// stdImports are the packages generated code may import besides the user's.
var stdImports = map[string]string{runtimePath: "runtime", "context": "context", "time": "time", "fmt": "fmt"}

// newScope names the file's imports (aliasing those whose name a
// package-level declaration uses) and records every name the code refers to.
func newScope(f *jen.File, pkg *model.Package) *scope {
	s := &scope{taken: map[string]bool{}}
	declared := map[string]bool{}
	for _, n := range pkg.Scope {
		declared[n] = true
	}
	imports := map[string]string{} // path -> package name
	for p, name := range stdImports {
		imports[p] = name
	}
	local := func(name string) { s.taken[name] = true }
	// Every type the code names, type arguments included.
	visit := func(t *model.Type) {
		switch t.Kind {
		case model.Named, model.Marshaler, model.Alias:
			if t.Pkg == pkg.Path {
				local(t.Name)
			} else {
				imports[t.Pkg] = t.PkgName
			}
		case model.Time:
			imports["time"] = "time"
		}
	}
	ref := func(r model.Ref) {
		if r.Pkg == pkg.Path {
			local(r.Iface)
		} else {
			imports[r.Pkg] = r.PkgName
		}
	}
	for _, svc := range pkg.Services {
		local(svc.Iface)
		for _, m := range svc.Methods {
			model.Walk(model.Types(m.Params, m.Results), true, visit)
		}
	}
	for _, c := range pkg.Constructors {
		local(c.Func)
		ref(c.Service)
		for _, d := range c.Deps {
			ref(d)
		}
	}
	for _, m := range pkg.Mains {
		local(m.Func)
		for _, d := range m.Deps {
			ref(d)
		}
	}
	for _, e := range pkg.Errors {
		local(e)
	}
	// Import names: the package's own name unless the user's package
	// declares it (or another import has it), then a molgen_ alias, which
	// user code cannot declare.
	used := map[string]bool{}
	for _, p := range slices.Sorted(maps.Keys(imports)) {
		name := imports[p]
		if name == "" {
			name = path.Base(p)
		}
		if declared[name] || used[name] {
			base := model.ReservedPrefix + "_" + name
			name = base
			for i := 2; used[name]; i++ {
				name = base + strconv.Itoa(i)
			}
			f.ImportAlias(p, name)
		} else {
			f.ImportName(p, name)
		}
		used[name] = true
		s.taken[name] = true
	}
	return s
}

// id returns the name for a local variable or parameter called name in
// the generated code: name itself, or molgenName when the code refers to
// something of that name.
func (s *scope) id(name string) string {
	if s.taken[name] {
		return model.ReservedPrefix + strings.ToUpper(name[:1]) + name[1:]
	}
	return name
}

// varNames names the parameters and results of a generated method whose
// body declares locals (names before s.id): the user's names where they
// are safe, generated ones (a0…, r0…) where the user gave none, gave "_",
// or gave a name that would shadow or clash with something the method
// refers to: one of its locals, a type or package of the file, a
// predeclared identifier, or a generated name (model.ReservedPrefix).
// The names are distinct from each other and from the locals.
func (s *scope) varNames(params, results []model.Var, locals []string) (paramNames, resultNames []string) {
	used := map[string]bool{}
	for _, l := range locals {
		used[l], used[s.id(l)] = true, true
	}
	// The user's names first, so that generated ones step around them.
	keep := func(vars []model.Var) []string {
		names := make([]string, len(vars))
		for i, v := range vars {
			n := v.Name
			if n == "" || n == "_" || used[n] || s.taken[n] || predeclared[n] || strings.HasPrefix(n, model.ReservedPrefix) {
				continue
			}
			names[i] = n
			used[n] = true
		}
		return names
	}
	fill := func(names []string, prefix string) []string {
		for i := range names {
			if names[i] != "" {
				continue
			}
			base := s.id(prefix + strconv.Itoa(i))
			name := base
			for k := 2; used[name]; k++ {
				name = base + "_" + strconv.Itoa(k)
			}
			names[i] = name
			used[name] = true
		}
		return names
	}
	paramNames, resultNames = keep(params), keep(results)
	return fill(paramNames, "a"), fill(resultNames, "r")
}

// predeclared lists Go's predeclared identifiers, which a parameter of a
// generated method must not shadow.
var predeclared = map[string]bool{
	"any": true, "bool": true, "byte": true, "comparable": true, "complex64": true, "complex128": true,
	"error": true, "float32": true, "float64": true, "int": true, "int8": true, "int16": true,
	"int32": true, "int64": true, "rune": true, "string": true, "uint": true, "uint8": true,
	"uint16": true, "uint32": true, "uint64": true, "uintptr": true,
	"true": true, "false": true, "iota": true, "nil": true,
	"append": true, "cap": true, "clear": true, "close": true, "complex": true, "copy": true,
	"delete": true, "imag": true, "len": true, "make": true, "max": true, "min": true, "new": true,
	"panic": true, "print": true, "println": true, "real": true, "recover": true,
}

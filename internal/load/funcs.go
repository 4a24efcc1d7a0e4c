package load

import (
	"go/ast"
	"go/types"
	"strings"

	"github.com/molgen/molgen/internal/diag"
	"github.com/molgen/molgen/internal/model"
)

// collectFuncs finds //molgen:constructor and //molgen:main funcs.
func (l *loader) collectFuncs(info *pkgInfo) {
	for _, f := range info.pkg.Syntax {
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || len(info.dirs[fd.Doc]) == 0 {
				continue
			}
			info.used[fd.Doc] = true
			var kind *directive
			ds := info.dirs[fd.Doc]
			for i, d := range ds {
				switch {
				case d.Name != "constructor" && d.Name != "main":
					l.errs.Add(position(l.fset, d.Pos), "misplaced //molgen:%s directive: it belongs on %s", d.Name, directiveNames[d.Name])
				case kind != nil:
					l.errs.Add(position(l.fset, d.Pos), "//molgen:%s conflicts with //molgen:%s on the same func", d.Name, kind.Name)
				default:
					kind = &ds[i]
				}
			}
			if kind == nil {
				continue
			}
			pos := position(l.fset, fd.Name.Pos())
			if fd.Recv != nil {
				l.errs.Add(pos, "misplaced //molgen:%s directive: it belongs on a package-level func, not a method", kind.Name)
				continue
			}
			fn, _ := info.pkg.TypesInfo.Defs[fd.Name].(*types.Func)
			if fn == nil {
				continue
			}
			if !fn.Exported() {
				l.errs.Add(pos, "%s: a //molgen:%s func must be exported so generated mains can call it", fd.Name.Name, kind.Name)
				continue
			}
			if fd.Type.TypeParams != nil && len(fd.Type.TypeParams.List) > 0 {
				l.errs.Add(pos, "%s: a //molgen:%s func cannot be generic", fd.Name.Name, kind.Name)
				continue
			}
			if kind.Name == "constructor" {
				if len(kind.Args) > 0 {
					l.errs.Add(position(l.fset, kind.Pos), "//molgen:constructor takes no arguments")
					continue
				}
				l.constructor(info, fn, pos)
			} else {
				l.mainFunc(info, fn, pos, *kind)
			}
		}
	}
}

// deps checks that params (from index start) are service interfaces.
func (l *loader) deps(fnName string, params *types.Tuple, start int, pos diag.Pos) ([]model.Ref, bool) {
	var out []model.Ref
	ok := true
	for i := start; i < params.Len(); i++ {
		v := params.At(i)
		ref, isSvc := l.serviceRef(v.Type())
		if !isSvc {
			l.errs.Add(l.varPos(v, pos), "%s: parameter %d has type %s, which is not a //molgen:service interface (only services can be injected)",
				fnName, i, types.TypeString(v.Type(), pkgNameQualifier(v.Pkg())))
			ok = false
			continue
		}
		out = append(out, ref)
	}
	return out, ok
}

// constructor checks a //molgen:constructor func and adds it to the model.
func (l *loader) constructor(info *pkgInfo, fn *types.Func, pos diag.Pos) {
	sig := fn.Type().(*types.Signature)
	name := fn.Name()
	const shape = "want func([ctx context.Context,] deps...) (Service[, error])"
	if sig.Variadic() {
		l.errs.Add(pos, "%s: a constructor cannot be variadic; %s", name, shape)
		return
	}
	params, results := sig.Params(), sig.Results()
	start := 0
	hasCtx := params.Len() > 0 && isContext(params.At(0).Type())
	if hasCtx {
		start = 1
	}
	deps, ok := l.deps(name, params, start, pos)
	hasErr := false
	var svc model.Ref
	switch {
	case results.Len() == 0 || results.Len() > 2:
		l.errs.Add(pos, "%s: a constructor returns the service it builds, optionally followed by error; %s", name, shape)
		ok = false
	default:
		var isSvc bool
		svc, isSvc = l.serviceRef(results.At(0).Type())
		if !isSvc {
			l.errs.Add(pos, "%s: result 0 has type %s, which is not a //molgen:service interface; %s",
				name, types.TypeString(results.At(0).Type(), pkgNameQualifier(fn.Pkg())), shape)
			ok = false
		}
		if results.Len() == 2 {
			if !types.Identical(results.At(1).Type(), errorType) {
				l.errs.Add(pos, "%s: the second result must be error; %s", name, shape)
				ok = false
			}
			hasErr = true
		}
	}
	if !ok {
		return
	}
	info.model.Constructors = append(info.model.Constructors, &model.Constructor{
		Func: name, Pkg: info.pkg.PkgPath, PkgName: info.pkg.Name, Pos: pos,
		Service: svc, HasCtx: hasCtx, HasErr: hasErr, Deps: deps,
	})
}

// mainFunc checks a //molgen:main func and adds it to the model.
func (l *loader) mainFunc(info *pkgInfo, fn *types.Func, pos diag.Pos, d directive) {
	sig := fn.Type().(*types.Signature)
	name := fn.Name()
	const shape = "want func(ctx context.Context, deps...) error"
	mainName, ok := parseNameArg(l.fset, d, &l.errs)
	if !ok {
		return
	}
	if mainName == "" {
		mainName = strings.ToLower(name)
		if !nameRE.MatchString(mainName) {
			l.errs.Add(pos, "main %s: default name %q is not valid (names match %s); set one with //molgen:main name=N", name, mainName, nameForm)
			return
		}
	}
	params, results := sig.Params(), sig.Results()
	if sig.Variadic() {
		l.errs.Add(pos, "%s: a main cannot be variadic; %s", name, shape)
		return
	}
	if params.Len() == 0 || !isContext(params.At(0).Type()) {
		l.errs.Add(pos, "%s: the first parameter of a main must be context.Context; %s", name, shape)
		ok = false
	}
	if results.Len() != 1 || !types.Identical(results.At(0).Type(), errorType) {
		l.errs.Add(pos, "%s: a main must return exactly error; %s", name, shape)
		ok = false
	}
	deps, depsOK := l.deps(name, params, 1, pos)
	if !ok || !depsOK {
		return
	}
	info.model.Mains = append(info.model.Mains, &model.Main{
		Name: mainName, Func: name, Pkg: info.pkg.PkgPath, PkgName: info.pkg.Name, Pos: pos, Deps: deps,
	})
}

// serviceRef reports whether t is a service interface, wherever declared.
func (l *loader) serviceRef(t types.Type) (model.Ref, bool) {
	n, ok := types.Unalias(t).(*types.Named)
	if !ok || n.Obj().Pkg() == nil {
		return model.Ref{}, false
	}
	obj := n.Obj()
	if svc := l.services[obj]; svc != nil {
		return svc.Ref(), true
	}
	if _, isIface := n.Underlying().(*types.Interface); !isIface {
		return model.Ref{}, false
	}
	name, ok := l.foreignService(obj)
	if !ok {
		return model.Ref{}, false
	}
	return model.Ref{Pkg: obj.Pkg().Path(), PkgName: obj.Pkg().Name(), Iface: obj.Name(), Name: name}, true
}

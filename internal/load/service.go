package load

import (
	"fmt"
	"go/ast"
	"go/types"
	"sort"
	"strings"

	"github.com/molgen/molgen/internal/diag"
	"github.com/molgen/molgen/internal/model"
)

// collectServices finds //molgen:service interfaces and their methods.
func (l *loader) collectServices(info *pkgInfo) {
	for _, f := range info.pkg.Syntax {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				ts, ok := spec.(*ast.TypeSpec)
				if !ok {
					continue
				}
				doc := typeDoc(gd, ts)
				ds := info.dirs[doc]
				if len(ds) > 0 {
					info.used[doc] = true
				}
				var svc *directive
				for i, d := range ds {
					switch {
					case d.Name != "service":
						l.errs.Add(position(l.fset, d.Pos), "misplaced //molgen:%s directive: it belongs on %s", d.Name, directiveNames[d.Name])
					case svc != nil:
						l.errs.Add(position(l.fset, d.Pos), "duplicate //molgen:service directive")
					default:
						svc = &ds[i]
					}
				}
				it, isIface := ts.Type.(*ast.InterfaceType)
				if isIface {
					l.methodDirectives(info, it, svc != nil)
				}
				if svc == nil {
					continue
				}
				if ts.Assign.IsValid() {
					l.errs.Add(position(l.fset, ts.Name.Pos()), "//molgen:service cannot annotate the alias %s: declare a defined interface type (type %s interface{...})", ts.Name.Name, ts.Name.Name)
					continue
				}
				if !isIface {
					l.errs.Add(position(l.fset, ts.Name.Pos()), "//molgen:service must annotate an interface type; %s is not an interface", ts.Name.Name)
					continue
				}
				l.pending = append(l.pending, pendingService{info, ts, it, *svc})
			}
		}
	}
}

// pendingService is a service declaration waiting to be checked.
type pendingService struct {
	info *pkgInfo
	ts   *ast.TypeSpec
	it   *ast.InterfaceType
	d    directive
}

// methodDirectives marks the directives on the methods of an interface:
// they are checked by l.service for services and misplaced otherwise.
func (l *loader) methodDirectives(info *pkgInfo, it *ast.InterfaceType, isService bool) {
	for _, field := range it.Methods.List {
		for _, g := range []*ast.CommentGroup{field.Doc, field.Comment} {
			ds := info.dirs[g]
			if len(ds) == 0 {
				continue
			}
			info.used[g] = true
			switch {
			case !isService:
				for _, d := range ds {
					l.errs.Add(position(l.fset, d.Pos), "misplaced //molgen:%s directive: the interface is not a //molgen:service", d.Name)
				}
			case len(field.Names) == 0:
				for _, d := range ds {
					l.errs.Add(position(l.fset, d.Pos), "misplaced //molgen:%s directive: it belongs on a method, not an embedded interface", d.Name)
				}
			default:
				for _, n := range field.Names {
					l.methodDirs[n.Pos()] = append(l.methodDirs[n.Pos()], ds...)
				}
			}
		}
	}
}

// service checks a //molgen:service interface and its methods, and adds
// it to the model.
func (l *loader) service(info *pkgInfo, ts *ast.TypeSpec, it *ast.InterfaceType, d directive) {
	tinfo := info.pkg.TypesInfo
	obj, _ := tinfo.Defs[ts.Name].(*types.TypeName)
	if obj == nil {
		return
	}
	pos := position(l.fset, ts.Name.Pos())
	// On a bad name, go on checking the methods: every error in one run.
	name, _ := parseNameArg(l.fset, d, &l.errs)
	if name == "" {
		name = strings.ToLower(ts.Name.Name)
		if !nameRE.MatchString(name) {
			l.errs.Add(pos, "service %s: default name %q is not valid (names match %s); set one with //molgen:service name=N", ts.Name.Name, name, nameForm)
		}
	}
	if !obj.Exported() {
		l.errs.Add(pos, "service %s must be an exported type", ts.Name.Name)
	}
	if ts.TypeParams != nil && len(ts.TypeParams.List) > 0 {
		l.errs.Add(pos, "service %s: generic interfaces cannot be services", ts.Name.Name)
		return
	}
	iface, ok := obj.Type().Underlying().(*types.Interface)
	if !ok {
		return
	}
	if !iface.IsMethodSet() {
		l.errs.Add(pos, "service %s: interfaces with type constraints cannot be services", ts.Name.Name)
		return
	}
	svc := &model.Service{
		Name:    name,
		Iface:   ts.Name.Name,
		Pkg:     info.pkg.PkgPath,
		PkgName: info.pkg.Name,
		Doc:     docText(ts.Doc),
		Pos:     pos,
	}
	// Methods declared in the interface come in declaration order, then
	// embedded ones sorted by name.
	declared := map[string]*ast.Field{}
	var order []string
	for _, field := range it.Methods.List {
		for _, n := range field.Names {
			declared[n.Name] = field
			order = append(order, n.Name)
		}
	}
	var embedded []string
	for i := 0; i < iface.NumMethods(); i++ {
		if m := iface.Method(i); declared[m.Name()] == nil {
			embedded = append(embedded, m.Name())
		}
	}
	sort.Strings(embedded)
	order = append(order, embedded...)
	if len(order) == 0 {
		l.errs.Add(pos, "service %s has no methods", ts.Name.Name)
	}
	for _, mname := range order {
		var fn *types.Func
		for i := 0; i < iface.NumMethods(); i++ {
			if iface.Method(i).Name() == mname {
				fn = iface.Method(i)
			}
		}
		if fn == nil {
			continue
		}
		mpos := position(l.fset, fn.Pos())
		doc := ""
		// Directives come from where the method is declared, which may be
		// another service this one embeds. They are checked once, there.
		ds, loaded := l.methodDirs[fn.Pos()]
		opts := parseMethodDirectives(l.fset, ds, &l.errs)
		if !loaded && declared[mname] == nil {
			// Embedded from a package not loaded from source: read its
			// directives from the declaring file, so that the output does
			// not depend on which packages were named.
			opts = parseMethodDirectives(l.fset, l.foreignMethodDirectives(fn), &diag.List{})
		}
		if fn.Pkg() == nil || fn.Pkg() != obj.Pkg() && !loaded {
			// Problems of methods embedded from elsewhere (error,
			// io.Closer) are reported where the service embeds them.
			mpos = pos
			mname = fmt.Sprintf("%s (embedded)", mname)
		}
		if field := declared[mname]; field != nil {
			doc = docText(field.Doc)
		}
		if m := l.method(info, name, fn, mname, mpos, opts); m != nil {
			m.Doc = doc
			svc.Methods = append(svc.Methods, m)
		}
	}
	info.model.Services = append(info.model.Services, svc)
	l.services[obj] = svc
}

// method checks one service method against the method rules and converts
// its parameters and results; it returns nil when the method breaks a rule.
// service is the service's name, for problems reported at a struct field
// far from the method.
func (l *loader) method(info *pkgInfo, service string, fn *types.Func, name string, pos diag.Pos, opts methodOptions) *model.Method {
	if !fn.Exported() {
		l.errs.Add(pos, "%s: service methods must be exported", name)
		return nil
	}
	sig := fn.Type().(*types.Signature)
	ok := true
	params, results := sig.Params(), sig.Results()
	if params.Len() == 0 || !isContext(params.At(0).Type()) {
		l.errs.Add(pos, "%s: the first parameter must be context.Context", name)
		ok = false
	}
	if results.Len() == 0 || !types.Identical(results.At(results.Len()-1).Type(), errorType) {
		l.errs.Add(pos, "%s: the last result must be error", name)
		ok = false
	}
	if sig.Variadic() {
		l.errs.Add(pos, "%s: variadic parameters are not supported; use a slice", name)
		ok = false
	}
	if opts.Oneway && results.Len() != 1 {
		l.errs.Add(pos, "%s: a //molgen:oneway method must return only error", name)
		ok = false
	}
	m := &model.Method{Name: fn.Name(), Pos: pos, Timeout: opts.Timeout, Retry: opts.Retry, Oneway: opts.Oneway}
	// A problem inside a struct is reported once, at the field, with the
	// path from the first method that reaches it; others at the parameter
	// or result.
	convert := func(where string, v *types.Var) *model.Type {
		t, probs := info.conv.convert(v.Type())
		for _, p := range probs {
			ok = false
			if !p.pos.IsValid() {
				l.errs.Add(l.varPos(v, pos), "%s: %s: %s", name, where, p)
				continue
			}
			key := fieldProblem{p.pos, p.reason}
			if l.fieldProblems[key] {
				continue
			}
			l.fieldProblems[key] = true
			l.errs.Add(position(l.fset, p.pos), "%s.%s: %s: %s", service, name, where, p)
		}
		return t
	}
	for i := 1; i < params.Len(); i++ {
		v := params.At(i)
		t := convert(fmt.Sprintf("param %d", i), v)
		m.Params = append(m.Params, model.Var{Name: v.Name(), Type: t})
	}
	for i := 0; i < results.Len()-1; i++ {
		v := results.At(i)
		t := convert(fmt.Sprintf("result %d", i), v)
		m.Results = append(m.Results, model.Var{Name: v.Name(), Type: t})
	}
	if !ok {
		return nil
	}
	info.named = append(info.named, collectNamed(m)...)
	return m
}

// collectNamed lists the defined types reachable from m's signature.
func collectNamed(m *model.Method) []*model.Type {
	var out []*model.Type
	model.Walk(model.Types(m.Params, m.Results), true, func(t *model.Type) {
		if t.Kind == model.Named {
			out = append(out, t)
		}
	})
	return out
}

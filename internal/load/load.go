// Package load reads Go packages with golang.org/x/tools/go/packages,
// finds //molgen: directives, checks every rule of molgen's annotation
// contract and builds the model. It is the only stage that sees go/ast and
// go/types; everything it reports carries a file position.
package load

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/molgen/molgen/internal/diag"
	"github.com/molgen/molgen/internal/model"
	"golang.org/x/tools/go/packages"
)

// Config says what to load.
type Config struct {
	Dir      string   // directory patterns are relative to; "" means the working directory
	Patterns []string // package patterns; empty means "."
	Tags     string   // comma- or space-separated build tags
}

// Load loads the packages, checks every molgen rule and returns the model.
// The error, when not nil, lists every problem found (a diag.Errors).
func Load(cfg Config) (*model.Program, error) {
	patterns := cfg.Patterns
	if len(patterns) == 0 {
		patterns = []string{"."}
	}
	var flags []string
	if strings.TrimSpace(cfg.Tags) != "" {
		flags = append(flags, "-tags="+strings.Join(strings.FieldsFunc(cfg.Tags, func(r rune) bool { return r == ',' || r == ' ' }), ","))
	}

	// First pass: list files only, to find earlier generated files. They are
	// replaced by empty stand-ins while loading, so a stale one (which may
	// no longer compile) cannot stop a regeneration.
	list, err := packages.Load(&packages.Config{
		Mode:       packages.NeedName | packages.NeedFiles | packages.NeedModule | packages.NeedImports | packages.NeedDeps,
		Dir:        cfg.Dir,
		BuildFlags: flags,
	}, patterns...)
	if err != nil {
		return nil, fmt.Errorf("loading packages: %w", err)
	}
	overlay := map[string][]byte{}
	packages.Visit(list, nil, func(p *packages.Package) {
		if p.Module == nil || !p.Module.Main {
			return
		}
		for _, f := range p.GoFiles {
			if filepath.Base(f) == model.GeneratedFile && isGenerated(f) {
				overlay[f] = []byte("package " + p.Name + "\n")
			}
		}
	})

	fset := token.NewFileSet()
	pkgs, err := packages.Load(&packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax | packages.NeedTypes |
			packages.NeedTypesInfo | packages.NeedModule | packages.NeedImports,
		Dir:        cfg.Dir,
		BuildFlags: flags,
		Fset:       fset,
		Overlay:    overlay,
		ParseFile: func(fset *token.FileSet, filename string, src []byte) (*ast.File, error) {
			return parser.ParseFile(fset, filename, src, parser.ParseComments|parser.SkipObjectResolution)
		},
	}, patterns...)
	if err != nil {
		return nil, fmt.Errorf("loading packages: %w", err)
	}
	l := &loader{
		fset:       fset,
		services:   map[*types.TypeName]*model.Service{},
		methodDirs: map[token.Pos][]directive{},
		foreign:    map[string]map[string]string{},
		files:      map[string]*foreignFile{},
	}
	return l.run(pkgs, overlay)
}

// isGenerated reports whether the file at path starts with molgen's header.
func isGenerated(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	return strings.TrimRight(line, "\r\n") == model.Header
}

type loader struct {
	fset *token.FileSet
	errs diag.List

	services map[*types.TypeName]*model.Service
	// methodDirs holds the directives of service methods by the position
	// of the method's name, so that methods embedded from another service
	// keep theirs.
	methodDirs map[token.Pos][]directive
	pending    []pendingService
	// foreign caches the services declared by packages that were not
	// loaded from source: package path -> type name -> service name.
	foreign map[string]map[string]string
	files   map[string]*foreignFile // parsed files of those packages
}

// pkgInfo is a loaded package with its directives.
type pkgInfo struct {
	pkg   *packages.Package
	model *model.Package
	dirs  map[*ast.CommentGroup][]directive
	used  map[*ast.CommentGroup]bool
	conv  *converter
	// hasDirectives is set when any //molgen: line was seen.
	hasDirectives bool
	named         []*model.Type
}

func (l *loader) run(pkgs []*packages.Package, overlay map[string][]byte) (*model.Program, error) {
	prog := &model.Program{}
	var infos []*pkgInfo
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].PkgPath < pkgs[j].PkgPath })
	for _, p := range pkgs {
		if p.Module != nil && p.Module.Main && prog.Module == "" {
			prog.Module, prog.ModuleDir = p.Module.Path, p.Module.Dir
		}
		info := &pkgInfo{
			pkg:  p,
			dirs: map[*ast.CommentGroup][]directive{},
			used: map[*ast.CommentGroup]bool{},
		}
		for _, f := range p.Syntax {
			for g, ds := range scanFile(l.fset, f, &l.errs) {
				info.dirs[g] = ds
			}
			for _, g := range f.Comments {
				for _, c := range g.List {
					if strings.HasPrefix(c.Text, prefix) {
						info.hasDirectives = true
					}
				}
			}
		}
		if !l.reportLoadErrors(p, info.hasDirectives) {
			continue
		}
		if p.Types == nil || p.TypesInfo == nil {
			continue
		}
		info.conv = newConverter(p.Types)
		info.model = &model.Package{Path: p.PkgPath, Name: p.Name, Dir: packageDir(p)}
		infos = append(infos, info)
	}

	// Services first: constructors and mains refer to them. All service
	// declarations are found before any is checked, so that a service can
	// embed another declared later.
	for _, info := range infos {
		l.collectServices(info)
	}
	for _, p := range l.pending {
		l.service(p.info, p.ts, p.it, p.d)
	}
	for _, info := range infos {
		l.collectFuncs(info)
		l.reportMisplaced(info)
		l.checkReserved(info)
	}
	l.checkUnique(infos)

	for _, info := range infos {
		m := info.model
		if len(m.Services) == 0 && len(m.Constructors) == 0 && len(m.Mains) == 0 {
			if gen := filepath.Join(m.Dir, model.GeneratedFile); overlay[gen] != nil {
				prog.Stale = append(prog.Stale, gen)
			}
			continue
		}
		m.Errors = errorVars(info.pkg.Types)
		m.Scope = info.pkg.Types.Scope().Names()
		markRecursive(info.named)
		prog.Packages = append(prog.Packages, m)
	}
	if err := l.errs.Err(); err != nil {
		return nil, err
	}
	return prog, nil
}

func packageDir(p *packages.Package) string {
	for _, f := range append(slices.Clone(p.GoFiles), p.CompiledGoFiles...) {
		return filepath.Dir(f)
	}
	return p.Dir
}

var posRE = regexp.MustCompile(`^(.*?):(\d+)(?::(\d+))?$`)

// reportLoadErrors turns go/packages errors into diagnostics. Type errors
// are reported only for packages that use molgen directives: other packages
// are merely scanned. It reports whether the package can be used.
func (l *loader) reportLoadErrors(p *packages.Package, relevant bool) bool {
	ok := true
	typeErrors := false
	for _, e := range p.Errors {
		typeErrors = typeErrors || e.Kind == packages.TypeError
	}
	for _, e := range p.Errors {
		// 'go list -export' also compiles the package and reports the same
		// problems as compiler output ("# path\n..."): keep the type errors.
		if typeErrors && e.Kind == packages.ListError && strings.HasPrefix(e.Msg, "# ") {
			ok = false
			continue
		}
		if e.Kind == packages.TypeError && !relevant {
			ok = false
			continue
		}
		ok = false
		pos := diag.Pos{}
		if m := posRE.FindStringSubmatch(e.Pos); m != nil {
			pos.File = m[1]
			if !filepath.IsAbs(pos.File) && p.Dir != "" {
				pos.File = filepath.Join(p.Dir, pos.File)
			}
			pos.Line, _ = strconv.Atoi(m[2])
			pos.Col, _ = strconv.Atoi(m[3])
		}
		l.errs.Add(pos, "%s", e.Msg)
	}
	return ok || !relevant && p.Types != nil && !p.IllTyped
}

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
		if m := l.method(info, fn, mname, mpos, opts); m != nil {
			m.Doc = doc
			svc.Methods = append(svc.Methods, m)
		}
	}
	info.model.Services = append(info.model.Services, svc)
	l.services[obj] = svc
}

var errorType = types.Universe.Lookup("error").Type()

func isContext(t types.Type) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "context" && n.Obj().Name() == "Context"
}

func (l *loader) method(info *pkgInfo, fn *types.Func, name string, pos diag.Pos, opts methodOptions) *model.Method {
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
	lock := func(where string, v *types.Var) {
		if lp := info.conv.lockPath(v.Type(), map[types.Type]bool{}); lp != "" {
			l.errs.Add(l.varPos(v, pos), "%s: %s: %s has Lock and Unlock methods, and generated code copies values (go vet's copylocks forbids it): pass a pointer", name, where, lp)
			ok = false
		}
	}
	for i := 1; i < params.Len(); i++ {
		v := params.At(i)
		lock(fmt.Sprintf("param %d", i), v)
		t, probs := info.conv.convert(v.Type())
		for _, p := range probs {
			l.errs.Add(l.varPos(v, pos), "%s: param %d: %s", name, i, p)
			ok = false
		}
		m.Params = append(m.Params, model.Var{Name: v.Name(), Type: t})
	}
	for i := 0; i < results.Len()-1; i++ {
		v := results.At(i)
		lock(fmt.Sprintf("result %d", i), v)
		t, probs := info.conv.convert(v.Type())
		for _, p := range probs {
			l.errs.Add(l.varPos(v, pos), "%s: result %d: %s", name, i, p)
			ok = false
		}
		m.Results = append(m.Results, model.Var{Name: v.Name(), Type: t})
	}
	if !ok {
		return nil
	}
	info.named = append(info.named, collectNamed(m)...)
	return m
}

func (l *loader) varPos(v *types.Var, fallback diag.Pos) diag.Pos {
	if v.Pos().IsValid() {
		return position(l.fset, v.Pos())
	}
	return fallback
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

// foreignService reads the declarations of a package that was not loaded
// from source, to see whether a type carries //molgen:service.
func (l *loader) foreignService(obj *types.TypeName) (string, bool) {
	path := obj.Pkg().Path()
	byType, done := l.foreign[path]
	if !done {
		byType = map[string]string{}
		l.foreign[path] = byType
		if file := l.fset.Position(obj.Pos()).Filename; file != "" {
			dir := filepath.Dir(file)
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				n := e.Name()
				if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") || n == model.GeneratedFile {
					continue
				}
				ff := l.parseForeign(filepath.Join(dir, n))
				if ff == nil || ff.file.Name.Name != obj.Pkg().Name() {
					continue
				}
				for _, decl := range ff.file.Decls {
					gd, ok := decl.(*ast.GenDecl)
					if !ok {
						continue
					}
					for _, spec := range gd.Specs {
						ts, ok := spec.(*ast.TypeSpec)
						if !ok {
							continue
						}
						for _, d := range ff.dirs[typeDoc(gd, ts)] {
							if d.Name == "service" {
								name, _ := parseNameArg(ff.fset, d, &diag.List{})
								if name == "" {
									name = strings.ToLower(ts.Name.Name)
								}
								byType[ts.Name.Name] = name
							}
						}
					}
				}
			}
		}
	}
	name, ok := byType[obj.Name()]
	return name, ok
}

// foreignFile is a source file of a package not loaded from source,
// parsed once for its directives.
type foreignFile struct {
	fset *token.FileSet
	file *ast.File
	dirs map[*ast.CommentGroup][]directive
}

// parseForeign parses the file at path, or returns nil when it cannot.
// Problems in its directives are that package's own, reported when it is
// generated itself.
func (l *loader) parseForeign(path string) *foreignFile {
	if ff, done := l.files[path]; done {
		return ff
	}
	var ff *foreignFile
	fset := token.NewFileSet()
	if f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution); err == nil {
		ff = &foreignFile{fset: fset, file: f, dirs: scanFile(fset, f, &diag.List{})}
	}
	l.files[path] = ff
	return ff
}

// typeDoc is a type declaration's doc comment: the spec's, or that of its
// declaration when it declares only this type.
func typeDoc(gd *ast.GenDecl, ts *ast.TypeSpec) *ast.CommentGroup {
	if ts.Doc == nil && len(gd.Specs) == 1 {
		return gd.Doc
	}
	return ts.Doc
}

// foreignMethodDirectives reads the directives of an interface method
// declared in a package that was not loaded from source.
func (l *loader) foreignMethodDirectives(fn *types.Func) []directive {
	p := l.fset.Position(fn.Pos())
	ff := l.parseForeign(p.Filename)
	if p.Filename == "" || ff == nil {
		return nil
	}
	var out []directive
	ast.Inspect(ff.file, func(n ast.Node) bool {
		field, ok := n.(*ast.Field)
		if !ok {
			return true
		}
		for _, name := range field.Names {
			// Export data keeps lines, not always columns: match the line
			// and the method's name.
			if np := ff.fset.Position(name.Pos()); np.Line == p.Line && name.Name == fn.Name() {
				out = append(append(out, ff.dirs[field.Doc]...), ff.dirs[field.Comment]...)
			}
		}
		return true
	})
	// Positions in that file's own file set mean nothing here.
	for i := range out {
		out[i].Pos = fn.Pos()
	}
	return out
}

// checkReserved reports user declarations that would clash with the
// generated file: NewXClient and RegisterX for each service, and any
// package-level name starting with "molgen".
func (l *loader) checkReserved(info *pkgInfo) {
	m := info.model
	if len(m.Services) == 0 && len(m.Constructors) == 0 && len(m.Mains) == 0 {
		return
	}
	scope := info.pkg.Types.Scope()
	for _, svc := range m.Services {
		for _, name := range []string{svc.Ref().NewClientFunc(), svc.Ref().RegisterFunc()} {
			if obj := scope.Lookup(name); obj != nil {
				l.errs.Add(position(l.fset, obj.Pos()), "%s is declared here, but molgen generates it for service %q: rename this one", name, svc.Name)
			}
		}
	}
	for _, name := range scope.Names() {
		if strings.HasPrefix(name, model.ReservedPrefix) {
			l.errs.Add(position(l.fset, scope.Lookup(name).Pos()), "%s: package-level names starting with %q are reserved for generated code", name, model.ReservedPrefix)
		}
	}
}

// reportMisplaced reports directives in comments that no rule consumed.
func (l *loader) reportMisplaced(info *pkgInfo) {
	for g, ds := range info.dirs {
		if info.used[g] {
			continue
		}
		for _, d := range ds {
			l.errs.Add(position(l.fset, d.Pos), "misplaced //molgen:%s directive: it belongs in the doc comment of %s", d.Name, directiveNames[d.Name])
		}
	}
}

// checkUnique reports duplicate service and main names and services with
// several constructors.
func (l *loader) checkUnique(infos []*pkgInfo) {
	type decl struct {
		what string
		pos  diag.Pos
	}
	names := map[string]decl{}
	ctors := map[string]diag.Pos{}
	for _, info := range infos {
		for _, s := range info.model.Services {
			if prev, dup := names[s.Name]; dup {
				l.errs.Add(s.Pos, "duplicate name %q: service %s.%s and %s at %s", s.Name, s.PkgName, s.Iface, prev.what, prev.pos.Short())
				continue
			}
			names[s.Name] = decl{"service " + s.PkgName + "." + s.Iface, s.Pos}
		}
	}
	for _, info := range infos {
		for _, m := range info.model.Mains {
			if prev, dup := names[m.Name]; dup {
				l.errs.Add(m.Pos, "duplicate name %q: main %s.%s and %s at %s", m.Name, m.PkgName, m.Func, prev.what, prev.pos.Short())
				continue
			}
			names[m.Name] = decl{"main " + m.PkgName + "." + m.Func, m.Pos}
		}
		for _, c := range info.model.Constructors {
			key := c.Service.Pkg + "." + c.Service.Iface
			if prev, dup := ctors[key]; dup {
				l.errs.Add(c.Pos, "service %s has a second constructor %s (the first is at %s); one constructor per service", c.Service.Name, c.Func, prev.Short())
				continue
			}
			ctors[key] = c.Pos
		}
	}
}

// errorVars lists the exported package-level variables whose type
// implements error.
func errorVars(pkg *types.Package) []string {
	var out []string
	scope := pkg.Scope()
	errIface := errorType.Underlying().(*types.Interface)
	for _, name := range scope.Names() {
		v, ok := scope.Lookup(name).(*types.Var)
		if !ok || !v.Exported() {
			continue
		}
		if types.Implements(v.Type(), errIface) {
			out = append(out, name)
		}
	}
	return out
}

// docText returns a doc comment's text without molgen directives.
func docText(g *ast.CommentGroup) string {
	if g == nil {
		return ""
	}
	var lines []string
	for _, line := range strings.Split(g.Text(), "\n") {
		if !strings.HasPrefix(line, "molgen:") {
			lines = append(lines, line)
		}
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// pkgNameQualifier qualifies types by package name, except those of pkg.
func pkgNameQualifier(pkg *types.Package) types.Qualifier {
	return func(p *types.Package) string {
		if p == pkg {
			return ""
		}
		return p.Name()
	}
}

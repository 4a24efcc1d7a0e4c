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
		guessed:    map[token.Pos]bool{},

		fieldProblems: map[fieldProblem]bool{},
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

// loader holds what one Load has found so far, and its errors.
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
	// guessed holds the positions of lines that were not directives but
	// were taken as the directive they were near (see scanFile).
	guessed map[token.Pos]bool
	// fieldProblems holds the problems already reported at a struct
	// field, so that each is reported once, not once per method using it.
	fieldProblems map[fieldProblem]bool
}

// fieldProblem is a problem reported at a struct field.
type fieldProblem struct {
	pos    token.Pos
	reason string
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

// run builds the model of pkgs: services first, then constructors and
// mains, then the checks that span packages.
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
			for g, ds := range scanFile(l.fset, f, &l.errs, l.guessed) {
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
		module := ""
		if p.Module != nil {
			module = p.Module.Path
		}
		info.conv = newConverter(p.Types, module, l.fset)
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
	l.dropGuessedMisplaced()

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

// dropGuessedMisplaced drops "misplaced" errors about a line that was
// already reported as not quite a directive: that it is misplaced as the
// directive guessed only follows from the guess.
func (l *loader) dropGuessedMisplaced() {
	at := map[diag.Pos]bool{}
	for pos := range l.guessed {
		at[position(l.fset, pos)] = true
	}
	l.errs.Drop(func(e *diag.Error) bool {
		return at[e.Pos] && strings.HasPrefix(e.Msg, "misplaced ")
	})
}

// packageDir is the directory of p's files.
func packageDir(p *packages.Package) string {
	for _, f := range append(slices.Clone(p.GoFiles), p.CompiledGoFiles...) {
		return filepath.Dir(f)
	}
	return p.Dir
}

// posRE reads the "file:line[:col]" of a go/packages error.
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

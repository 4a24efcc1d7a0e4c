package load

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"strings"

	"github.com/molgen/molgen/internal/diag"
	"github.com/molgen/molgen/internal/model"
)

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
		ff = &foreignFile{fset: fset, file: f, dirs: scanFile(fset, f, &diag.List{}, map[token.Pos]bool{})}
	}
	l.files[path] = ff
	return ff
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

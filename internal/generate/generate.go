// Package generate is molgen's generator as a library: Generate loads
// packages, checks them and returns the files to write, writing nothing
// itself; Result.Commit writes one file atomically. The CLI is a thin layer
// over it, and tests call it directly.
package generate

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/molgen/molgen/internal/diag"
	"github.com/molgen/molgen/internal/emit"
	"github.com/molgen/molgen/internal/load"
	"github.com/molgen/molgen/internal/model"
	"github.com/molgen/molgen/internal/wireschema"
	"github.com/molgen/molgen/runtime/schema"
)

// Result is one file to write (or, with Remove, a stale generated file to
// delete).
type Result struct {
	Path    string // absolute path
	Content []byte
	Remove  bool
	Pkg     *model.Package // the package it belongs to; nil for removals
}

// Options adjusts Generate.
type Options struct {
	// AllowBreaking accepts changes of the code that break the wire
	// schema recorded beside it, and rewrites the record.
	AllowBreaking bool
}

// Generate loads the packages cfg names and returns the molgen_gen.go of
// every package that declares services, constructors or mains, and the
// molgen_schema.txt of every package that declares services. A change of
// the code that breaks the recorded wire schema is an error at the
// position of what broke. On error (a diag.Errors listing every problem)
// it returns no results.
func Generate(cfg load.Config) ([]Result, *model.Program, error) {
	return Options{}.Generate(cfg)
}

// Generate is Generate with options.
func (o Options) Generate(cfg load.Config) ([]Result, *model.Program, error) {
	prog, err := load.Load(cfg)
	if err != nil {
		return nil, nil, err
	}
	results, err := o.Emit(prog)
	if err != nil {
		return nil, nil, err
	}
	return results, prog, nil
}

// Emit renders the files of an already loaded program, checking each
// package's wire schema against its record.
func (o Options) Emit(prog *model.Program) ([]Result, error) {
	var out []Result
	var errs diag.List
	for _, pkg := range prog.Packages {
		src, err := emit.File(pkg)
		if err != nil {
			return nil, err
		}
		out = append(out, Result{Path: filepath.Join(pkg.Dir, model.GeneratedFile), Content: src, Pkg: pkg})
		if len(pkg.Services) == 0 {
			continue
		}
		checkSchemaBounds(pkg, &errs)
		rec := wireschema.Build(pkg)
		path := filepath.Join(pkg.Dir, model.SchemaFile)
		if !o.AllowBreaking {
			checkSchema(path, rec, &errs)
		}
		out = append(out, Result{Path: path, Content: rec.Text(), Pkg: pkg})
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	for _, stale := range prog.Stale {
		out = append(out, Result{Path: stale, Remove: true})
	}
	return out, nil
}

// checkSchemaBounds reports methods whose wire schema the runtime would
// refuse as too long or too deep (schema.MaxLen, schema.MaxDepth): the
// bounds that keep a hostile header harmless must never refuse an app's
// own requests.
func checkSchemaBounds(pkg *model.Package, errs *diag.List) {
	for _, svc := range pkg.Services {
		for _, m := range svc.Methods {
			if _, err := schema.Parse(wireschema.MethodSchema(m)); err != nil {
				errs.Add(m.Pos, "%s.%s: its types are too large or too deeply nested for molgen's wire schema (at most %d bytes, %d levels; %v): split the method's types, or pass a BinaryMarshaler",
					svc.Iface, m.Name, schema.MaxLen, schema.MaxDepth, err)
			}
		}
	}
}

// checkSchema compares rec with the record at path, if there is one.
func checkSchema(path string, rec *wireschema.Record, errs *diag.List) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return // the first record
	}
	if err != nil {
		errs.Add(diag.Pos{File: path}, "reading the wire schema record: %v", err)
		return
	}
	old, err := wireschema.Parse(path, data)
	if err != nil {
		var des diag.Errors
		if errors.As(err, &des) {
			for _, e := range des {
				errs.Add(e.Pos, "%s", e.Msg)
			}
			return
		}
		errs.Add(diag.Pos{File: path}, "%v", err)
		return
	}
	wireschema.Compare(old, rec, path, errs)
}

// Commit writes r to disk unless the file already has exactly that content,
// and reports whether anything changed. Writes go to a temporary file that
// is renamed into place, so a reader never sees half a file.
func (r Result) Commit() (changed bool, err error) {
	if r.Remove {
		err := os.Remove(r.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return err == nil, err
	}
	old, err := os.ReadFile(r.Path)
	if err == nil && bytes.Equal(old, r.Content) {
		return false, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(r.Path), ".molgen_gen-*.go.tmp")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(r.Content); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return false, err
	}
	if err := os.Rename(tmp.Name(), r.Path); err != nil {
		return false, fmt.Errorf("writing %s: %w", r.Path, err)
	}
	return true, nil
}

// Stale reports whether r differs from what is on disk.
func (r Result) Stale() bool {
	old, err := os.ReadFile(r.Path)
	if r.Remove {
		return err == nil
	}
	return err != nil || !bytes.Equal(old, r.Content)
}

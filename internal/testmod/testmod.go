// Package testmod makes throwaway Go modules for tests: a copy of some
// source files in a temporary directory, with a go.mod that uses this
// checkout of molgen through a replace directive.
package testmod

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Root returns the root of this checkout of molgen.
func Root(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testmod: cannot locate the checkout")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// New returns a new module example.com/<name> in a temporary directory,
// holding a copy of the files under src ("" for none).
func New(t testing.TB, name, src string) string {
	t.Helper()
	root := Root(t)
	dir := t.TempDir()
	if src != "" {
		err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(src, path)
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			WriteFile(t, filepath.Join(dir, rel), data)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	gomod := "module example.com/" + name + "\n\ngo 1.24\n\nrequire github.com/molgen/molgen v0.0.0\n\nreplace github.com/molgen/molgen => " + root + "\n"
	WriteFile(t, filepath.Join(dir, "go.mod"), []byte(gomod))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, filepath.Join(dir, "go.sum"), sum)
	return dir
}

// WriteFile writes data to path, creating its directory.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/short"
	"github.com/molgen/molgen/internal/testmod"
)

const greetV1 = `// Package greet greets.
package greet

import (
	"context"
	"strings"
)

// Greeter greets.
//
//molgen:service
type Greeter interface {
	Hello(ctx context.Context, name string) (string, error)
	//SHOUT
}

type greeter struct{}

// New builds the service.
//
//molgen:constructor
func New() Greeter { return greeter{} }

func (greeter) Hello(_ context.Context, name string) (string, error) { return "hello, " + name, nil }

var _ = strings.ToUpper
`

const appV1 = `// Package app is the entry point.
package app

import (
	"context"
	"fmt"

	"example.com/freshbuild/greet"
)

// Run prints a greeting.
//
//molgen:main
func Run(ctx context.Context, g greet.Greeter) error {
	msg, err := g.Hello(ctx, "world")
	if err != nil {
		return err
	}
	fmt.Println(msg)
	return nil
}
`

// TestBuildRegeneratesStaleFilesAndWritesNothingElse guards two promises
// of 'molgen build': it brings a stale molgen_gen.go up to date before it
// compiles (here the interface gained a method the main calls, so the old
// file does not compile and the binary must use the new method), and it
// writes nothing else into the user's module: node mains live in a
// temporary directory and reach go build through -overlay. The tree is
// compared file by file before and after; the output directory is outside
// it.
func TestBuildRegeneratesStaleFilesAndWritesNothingElse(t *testing.T) {
	short.Skip(t, "builds node binaries")
	dir := testmod.New(t, "freshbuild", "")
	testmod.WriteFile(t, filepath.Join(dir, "greet", "greet.go"), []byte(greetV1))
	testmod.WriteFile(t, filepath.Join(dir, "app", "app.go"), []byte(appV1))
	t.Chdir(dir)
	t.Setenv("GOFLAGS", "-mod=mod")
	if status, _, stderr := molgen("generate", "./..."); status != 0 {
		t.Fatalf("generate: %d\n%s", status, stderr)
	}
	tidy := exec.Command("go", "mod", "tidy")
	if out, err := tidy.CombinedOutput(); err != nil {
		t.Fatalf("go mod tidy: %v\n%s", err, out)
	}
	// From now on the go command may not touch go.mod or go.sum itself: a
	// change there would be molgen's.
	t.Setenv("GOFLAGS", "-mod=readonly")

	// The interface gains a method, which the main calls: greet's
	// molgen_gen.go is now stale and does not compile.
	testmod.WriteFile(t, filepath.Join(dir, "greet", "greet.go"), []byte(strings.Replace(
		strings.Replace(greetV1, "\t//SHOUT\n", "\tShout(ctx context.Context, name string) (string, error)\n", 1),
		"var _ = strings.ToUpper\n",
		"func (greeter) Shout(_ context.Context, name string) (string, error) {\n\treturn strings.ToUpper(\"hello, \" + name + \"!\"), nil\n}\n", 1)))
	testmod.WriteFile(t, filepath.Join(dir, "app", "app.go"), []byte(strings.Replace(appV1, "g.Hello(", "g.Shout(", 1)))
	if status, stdout, _ := molgen("generate", "-n", "./..."); status != 1 || !strings.Contains(stdout, filepath.Join("greet", "molgen_gen.go")) {
		t.Fatalf("the edit did not make greet/molgen_gen.go stale: generate -n: %d %q", status, stdout)
	}

	gen := filepath.Join("greet", "molgen_gen.go")
	record := filepath.Join("greet", "molgen_schema.txt") // the added method is recorded
	before := snapshot(t, dir)
	out := t.TempDir() // a sibling of dir, not inside it
	status, stdout, stderr := molgen("build", "-o", out, "./...")
	if status != 0 {
		t.Fatalf("build: %d\n%s%s", status, stdout, stderr)
	}
	if !strings.Contains(stdout, "molgen: updated "+gen) {
		t.Errorf("build did not report regenerating %s:\n%s", gen, stdout)
	}

	after := snapshot(t, dir)
	for _, name := range union(before, after) {
		b, inBefore := before[name]
		a, inAfter := after[name]
		switch {
		case name == filepath.ToSlash(gen):
			if b == a {
				t.Errorf("build did not regenerate the stale %s", gen)
			}
			if !strings.Contains(a, "Shout(context.Context, string) (string, error)") {
				t.Errorf("the regenerated %s lacks the new method Shout:\n%s", gen, a)
			}
		case name == filepath.ToSlash(record):
			if !strings.Contains(a, "\tmethod Shout(string) (string)\n") {
				t.Errorf("the regenerated %s lacks the new method Shout:\n%s", record, a)
			}
		case !inBefore:
			t.Errorf("build wrote %s into the module", name)
		case !inAfter:
			t.Errorf("build removed %s from the module", name)
		case a != b:
			t.Errorf("build changed %s in the module", name)
		}
	}
	if status, stdout, _ := molgen("generate", "-n", "./..."); status != 0 || stdout != "" {
		t.Errorf("after build, generate -n still finds stale files: %d %q", status, stdout)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 1 || entries[0].Name() != "monolith" {
		t.Errorf("output directory holds %v, want only monolith", entries)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(out, "monolith"))
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("monolith: %v\n%s%s", err, o.String(), e.String())
	}
	if got := o.String(); got != "HELLO, WORLD!\n" {
		t.Errorf("monolith printed %q, want the new method's %q\nstderr:\n%s", got, "HELLO, WORLD!\n", e.String())
	}
}

// snapshot maps every file and directory under dir (slash-separated,
// relative) to its mode and content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		entry := info.Mode().String()
		if !d.IsDir() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			entry += "\n" + string(data)
		}
		files[filepath.ToSlash(rel)] = entry
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func union(a, b map[string]string) []string {
	var names []string
	for n := range a {
		names = append(names, n)
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

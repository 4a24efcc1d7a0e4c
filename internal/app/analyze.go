package app

import (
	"fmt"
	"io"

	"github.com/molgen/molgen/internal/diag"
	"github.com/molgen/molgen/internal/generate"
	"github.com/molgen/molgen/internal/load"
	"github.com/molgen/molgen/internal/model"
	"github.com/molgen/molgen/internal/placementfile"
	"github.com/molgen/molgen/runtime/placement"
)

// Analyze loads the app that cfg names (package patterns default to
// "./...") and, when placementFile is not empty, its placement, and checks
// both. It writes nothing: generated files that are out of date are noted
// on log (nil: no notes). 'molgen check', 'graph' and 'init' stand on it.
func Analyze(cfg load.Config, placementFile string, log io.Writer) (*App, *placement.Placement, error) {
	if len(cfg.Patterns) == 0 {
		cfg.Patterns = []string{"./..."}
	}
	results, prog, err := generate.Generate(cfg)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range results {
		if r.Stale() && log != nil {
			fmt.Fprintf(log, "molgen: note: %s is out of date (run molgen generate)\n", diag.Rel(r.Path))
		}
	}
	return Place(prog, placementFile)
}

// Place assembles a loaded program into an app (see New), checks that node
// binaries can import its packages and, when placementFile is not empty,
// loads the placement and validates it against the app's services and
// mains. Analyze and 'molgen build' share it.
func Place(prog *model.Program, placementFile string) (*App, *placement.Placement, error) {
	a, err := New(prog)
	if err != nil {
		return nil, nil, err
	}
	if err := checkImportable(prog); err != nil {
		return nil, nil, err
	}
	if placementFile == "" {
		return a, nil, nil
	}
	pl, err := placementfile.Load(placementFile, a.ServiceNames(), a.MainNames())
	if err != nil {
		return nil, nil, err
	}
	return a, pl, nil
}

// checkImportable rejects declarations in package main, which generated
// node mains cannot import.
func checkImportable(prog *model.Program) error {
	var errs diag.List
	for _, p := range prog.Packages {
		if p.Name != "main" {
			continue
		}
		for _, s := range p.Services {
			errs.Add(s.Pos, "service %s is declared in package main, which node binaries cannot import; move it to its own package", s.Name)
		}
		for _, c := range p.Constructors {
			errs.Add(c.Pos, "constructor %s is declared in package main, which node binaries cannot import; move it to its own package", c.Func)
		}
		for _, m := range p.Mains {
			errs.Add(m.Pos, "main %s is declared in package main, which node binaries cannot import; move it to its own package", m.Func)
		}
	}
	return errs.Err()
}

package main

import (
	"fmt"
	"io"

	"github.com/molgen/molgen/internal/diag"
	"github.com/molgen/molgen/internal/generate"
	"github.com/molgen/molgen/internal/load"
	"github.com/molgen/molgen/runtime/apiversion"
)

func runtimeAPI() int { return apiversion.Current }

func runGenerate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("generate", stderr, "[-tags T] [-n] [-allow-breaking] [packages]")
	tags := fs.String("tags", "", "build tags to load packages with (comma-separated)")
	dryRun := fs.Bool("n", false, "print the files that would change, write nothing (exit 1 if any would)")
	verbose := fs.Bool("v", false, "print every file written")
	allowBreaking := fs.Bool("allow-breaking", false, "accept changes that break the recorded wire schema (molgen_schema.txt) and rewrite the record")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	results, _, err := generate.Options{AllowBreaking: *allowBreaking}.Generate(load.Config{Patterns: fs.Args(), Tags: *tags})
	if err != nil {
		return err
	}
	stale := 0
	for _, r := range results {
		if *dryRun {
			if r.Stale() {
				stale++
				fmt.Fprintf(stdout, "%s is out of date\n", diag.Rel(r.Path))
			}
			continue
		}
		changed, err := r.Commit()
		if err != nil {
			return err
		}
		if changed && *verbose {
			verb := "wrote"
			if r.Remove {
				verb = "removed"
			}
			fmt.Fprintf(stdout, "%s %s\n", verb, diag.Rel(r.Path))
		}
	}
	if stale > 0 {
		return fmt.Errorf("%d generated file(s) out of date: run molgen generate", stale)
	}
	return nil
}

package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/molgen/molgen/internal/app"
	"github.com/molgen/molgen/internal/graph"
	"github.com/molgen/molgen/internal/load"
)

func runGraph(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("graph", stderr, "[-placement FILE] [-format mermaid|dot] [-profile FILE[,FILE...]] [-tags T] [packages]")
	var files profileFiles
	fs.Var(&files, "profile", "label calls with the rates measured in these traffic profile `files` (merged)")
	placement := fs.String("placement", "", "placement `file`; without it, the monolith")
	format := fs.String("format", "mermaid", "output format: mermaid or dot")
	tags := fs.String("tags", "", "build tags (comma-separated)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "mermaid" && *format != "dot" {
		return &usageError{fmt.Sprintf("-format %q: want mermaid or dot", *format)}
	}
	a, pl, err := app.Analyze(load.Config{Patterns: fs.Args(), Tags: *tags}, *placement, stderr)
	if err != nil {
		return err
	}
	l := app.NewLayout(a, pl)
	var rates graph.Rates
	if len(files) > 0 {
		prof, err := readProfiles(files)
		if err != nil {
			return err
		}
		if prof.Seconds <= 0 {
			return fmt.Errorf("%s: the profile covers no time", strings.Join(files, ", "))
		}
		rates = graph.Rates{}
		for _, c := range prof.Calls {
			rates[app.Edge{From: c.Caller, To: c.Service, FromMain: a.Mains[c.Caller] != nil}] += float64(c.Calls) / prof.Seconds
		}
	}
	syntax := graph.Mermaid
	if *format == "dot" {
		syntax = graph.Dot
	}
	return graph.WriteMeasured(stdout, syntax, l, rates)
}

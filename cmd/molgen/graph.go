package main

import (
	"fmt"
	"io"

	"github.com/molgen/molgen/internal/app"
	"github.com/molgen/molgen/internal/graph"
	"github.com/molgen/molgen/internal/load"
)

func runGraph(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("graph", stderr, "[-placement FILE] [-format mermaid|dot] [-tags T] [packages]")
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
	if *format == "dot" {
		return graph.Write(stdout, graph.Dot, l)
	}
	return graph.Write(stdout, graph.Mermaid, l)
}

package main

import (
	"io"

	"github.com/molgen/molgen/internal/build"
	"github.com/molgen/molgen/internal/load"
)

func runBuild(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("build", stderr, "[-placement FILE] -o DIR [-tags T] [packages]")
	placement := fs.String("placement", "", "placement `file`; without it, build DIR/monolith (all local, no Kafka)")
	out := fs.String("o", "", "output `directory` for the node binaries")
	tags := fs.String("tags", "", "build tags (comma-separated)")
	race := fs.Bool("race", false, "build with the race detector")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return &usageError{"-o DIR is required"}
	}
	cfg := build.Config{
		Load:      load.Config{Patterns: fs.Args(), Tags: *tags},
		Placement: *placement,
		Out:       *out,
		Log:       stdout,
	}
	if *race {
		cfg.GoFlags = append(cfg.GoFlags, "-race")
	}
	_, err := build.Build(cfg)
	return err
}

package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/molgen/molgen/internal/app"
	"github.com/molgen/molgen/internal/load"
	"github.com/molgen/molgen/internal/placementfile"
	"github.com/molgen/molgen/templates"
)

func runInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("init", stderr, "[-o placement.yaml] [-placement FILE] [-deploy DIR] [-f] [packages]")
	out := fs.String("o", "placement.yaml", "write a placement skeleton listing every service and main to `file` (unless -placement is given)")
	placementFile := fs.String("placement", "", "an existing placement `file` to write deploy files for")
	deploy := fs.String("deploy", "", "write per-node deploy files (systemd units, compose.yaml) to `directory`")
	bin := fs.String("bin", "/opt/molgen/bin", "directory the node binaries are installed in, for the deploy files")
	appName := fs.String("app", "", "app name for a new placement (default: the module's last path element)")
	force := fs.Bool("f", false, "overwrite existing files")
	tags := fs.String("tags", "", "build tags (comma-separated)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a, _, err := app.Analyze(load.Config{Patterns: fs.Args(), Tags: *tags}, "", stderr)
	if err != nil {
		return err
	}
	file := *placementFile
	if file == "" {
		file = *out
		name := *appName
		if name == "" {
			name = defaultApp(a.Module)
		}
		data := templates.Placement{File: filepath.ToSlash(file), App: name, Module: a.Module, Services: a.ServiceNames(), Mains: a.MainNames()}
		data.Names = append(append([]string{}, data.Services...), data.Mains...)
		src, err := templates.Render("placement.yaml.tmpl", data)
		if err != nil {
			return err
		}
		if err := writeNew(file, src, *force, stdout); err != nil {
			return err
		}
	}
	if *deploy == "" {
		return nil
	}
	pl, err := placementfile.Load(file, a.ServiceNames(), a.MainNames())
	if err != nil {
		return err
	}
	l := app.NewLayout(a, pl)
	d := templates.Deploy{App: pl.App, Placement: filepath.ToSlash(file), Brokers: strings.Join(pl.Kafka.Brokers, ","), BinDir: *bin}
	if d.Brokers == "" {
		d.Brokers = "127.0.0.1:9092"
	}
	for _, n := range l.Nodes {
		node := templates.Node{App: pl.App, Node: n.Name, Placement: d.Placement, Brokers: d.Brokers, BinDir: *bin, Services: n.Services, Mains: n.Mains}
		d.Nodes = append(d.Nodes, node)
		src, err := templates.Render("systemd.service.tmpl", node)
		if err != nil {
			return err
		}
		if err := writeNew(filepath.Join(*deploy, "systemd", n.Name+"@.service"), src, *force, stdout); err != nil {
			return err
		}
	}
	src, err := templates.Render("compose.yaml.tmpl", d)
	if err != nil {
		return err
	}
	return writeNew(filepath.Join(*deploy, "compose.yaml"), src, *force, stdout)
}

// writeNew writes a file, refusing to replace one unless force is set.
func writeNew(file string, data []byte, force bool, stdout io.Writer) error {
	if _, err := os.Stat(file); err == nil && !force {
		return fmt.Errorf("molgen init: %s exists; pass -f to overwrite it", file)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", file)
	return nil
}

var nonApp = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func defaultApp(module string) string {
	name := nonApp.ReplaceAllString(path.Base(module), "-")
	if name == "" || name == "." {
		return "app"
	}
	return name
}

// Package build implements 'molgen build': it regenerates stale files,
// writes one main package per node of a placement (or one for the monolith)
// into a temporary directory, and compiles them with 'go build -overlay' so
// that nothing is written into the user's source tree.
package build

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/molgen/molgen/internal/app"
	"github.com/molgen/molgen/internal/diag"
	"github.com/molgen/molgen/internal/emit"
	"github.com/molgen/molgen/internal/generate"
	"github.com/molgen/molgen/internal/load"
	"github.com/molgen/molgen/internal/model"
	"github.com/molgen/molgen/runtime/placement"
)

// Config says what to build.
type Config struct {
	Load      load.Config // package patterns default to "./..."
	Placement string      // placement file; empty builds the monolith
	Out       string      // output directory
	Log       io.Writer   // progress messages; nil discards them
	GoFlags   []string    // extra flags for go build, e.g. -race
}

// Binary is one built node binary.
type Binary struct {
	Node string
	Path string
}

// Build builds every node binary and returns them in placement order.
func Build(cfg Config) ([]Binary, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if len(cfg.Load.Patterns) == 0 {
		cfg.Load.Patterns = []string{"./..."}
	}
	if cfg.Out == "" {
		return nil, fmt.Errorf("molgen build: -o DIR is required")
	}
	prog, err := regenerate(cfg.Load, cfg.Log)
	if err != nil {
		return nil, err
	}
	a, pl, err := app.Place(prog, cfg.Placement)
	if err != nil {
		return nil, err
	}
	specs, err := Specs(a, pl, cfg.Placement)
	if err != nil {
		return nil, err
	}
	return compile(cfg, a, specs)
}

// regenerate loads the packages cfg names and brings their generated
// files up to date, so that the binaries are built from the code as it is.
func regenerate(cfg load.Config, log io.Writer) (*model.Program, error) {
	results, prog, err := generate.Generate(cfg)
	if err != nil {
		return nil, err
	}
	for _, r := range results {
		changed, err := r.Commit()
		if err != nil {
			return nil, err
		}
		if changed {
			fmt.Fprintf(log, "molgen: updated %s\n", diag.Rel(r.Path))
		}
	}
	return prog, nil
}

// Specs returns the node binaries a placement asks for; without a
// placement, the monolith.
func Specs(a *app.App, pl *placement.Placement, placementFile string) ([]emit.NodeSpec, error) {
	services, mains := a.ServiceNames(), a.MainNames()
	if pl == nil {
		spec := emit.NodeSpec{Node: placement.Monolith, Services: services, Mains: mains}
		for _, s := range services {
			spec.Constructors = append(spec.Constructors, a.Constructors[s])
		}
		for _, m := range mains {
			spec.Run = append(spec.Run, a.Mains[m])
		}
		return []emit.NodeSpec{spec}, nil
	}
	src, err := os.ReadFile(placementFile)
	if err != nil {
		return nil, err
	}
	var specs []emit.NodeSpec
	for _, node := range pl.Nodes {
		spec := emit.NodeSpec{
			Node:          node.Name,
			PlacementFile: filepath.ToSlash(diag.Rel(placementFile)),
			Placement:     string(src),
			Services:      services,
			Mains:         mains,
		}
		for _, s := range services {
			if pl.Hosts(node.Name, s) {
				spec.Constructors = append(spec.Constructors, a.Constructors[s])
			}
		}
		for _, m := range mains {
			if pl.Hosts(node.Name, m) {
				spec.Run = append(spec.Run, a.Mains[m])
			}
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// buildDir is where node mains appear, through the overlay, inside the
// module; it never exists on disk.
const buildDir = "_molgen"

func compile(cfg Config, a *app.App, specs []emit.NodeSpec) ([]Binary, error) {
	if a.ModuleDir == "" {
		return nil, fmt.Errorf("molgen build: the packages are not in a Go module")
	}
	if _, err := os.Stat(filepath.Join(a.ModuleDir, buildDir)); err == nil {
		return nil, fmt.Errorf("molgen build: %s exists; molgen build uses that path for generated node mains, please rename it", filepath.Join(a.ModuleDir, buildDir))
	}
	out, err := filepath.Abs(cfg.Out)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "molgen-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	overlay := struct{ Replace map[string]string }{Replace: map[string]string{}}
	var pkgs []string
	var bins []Binary
	for _, spec := range specs {
		src, err := emit.NodeMain(spec)
		if err != nil {
			return nil, err
		}
		file := filepath.Join(tmp, spec.Node+".go")
		if err := os.WriteFile(file, src, 0o644); err != nil {
			return nil, err
		}
		// The directory is "node_<name>": go build names a binary after its
		// package directory, except for version-like names such as "v2".
		dir := "node_" + spec.Node
		overlay.Replace[filepath.Join(a.ModuleDir, buildDir, dir, "main.go")] = file
		pkgs = append(pkgs, "./"+buildDir+"/"+dir)
		bins = append(bins, Binary{Node: spec.Node, Path: filepath.Join(out, spec.Node)})
	}
	overlayFile := filepath.Join(tmp, "overlay.json")
	data, _ := json.Marshal(overlay)
	if err := os.WriteFile(overlayFile, data, 0o644); err != nil {
		return nil, err
	}
	// Build into a staging directory next to the output, then rename: a
	// failed build leaves earlier binaries as they were.
	staging, err := os.MkdirTemp(out, ".molgen-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(staging)
	args := []string{"build", "-overlay", overlayFile, "-o", staging + string(filepath.Separator)}
	modArgs, err := scratchModfile(a.ModuleDir, tmp)
	if err != nil {
		return nil, err
	}
	args = append(args, modArgs...)
	if tags := strings.TrimSpace(cfg.Load.Tags); tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, cfg.GoFlags...)
	args = append(args, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = a.ModuleDir
	var stderr strings.Builder
	cmd.Stdout = cfg.Log
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "missing go.sum entry") {
			msg += "\n(generated code imports github.com/molgen/molgen/runtime: run 'go mod tidy' after 'molgen generate')"
		}
		return nil, fmt.Errorf("molgen build: go build failed:\n%s", msg)
	}
	for i := range bins {
		b := &bins[i]
		built := filepath.Join(staging, "node_"+b.Node)
		if _, err := os.Stat(built + ".exe"); err == nil {
			built += ".exe"
			b.Path += ".exe"
		}
		if err := os.Rename(built, b.Path); err != nil {
			return nil, fmt.Errorf("molgen build: %w", err)
		}
	}
	for _, b := range bins {
		shown := diag.Rel(b.Path)
		if strings.HasPrefix(shown, "..") {
			shown = b.Path
		}
		fmt.Fprintf(cfg.Log, "molgen: built %s\n", shown)
	}
	return bins, nil
}

// scratchModfile returns the go build flags that build node mains with a
// copy of the module's go.mod and go.sum, which go may complete: a node
// main imports runtime/nodemain, whose dependencies (OpenTelemetry's SDK
// and exporters, the Prometheus client) the app's own packages do not
// import, so 'go mod tidy' leaves them out of the app's go.mod. The app's
// files are never written. In workspace mode (go.work), where -modfile is
// not allowed, it returns no flags.
func scratchModfile(moduleDir, tmp string) ([]string, error) {
	cmd := exec.Command("go", "env", "GOWORK")
	cmd.Dir = moduleDir
	if out, err := cmd.Output(); err != nil {
		return nil, fmt.Errorf("molgen build: go env GOWORK: %w", err)
	} else if w := strings.TrimSpace(string(out)); w != "" && w != "off" {
		return nil, nil
	}
	mod, err := os.ReadFile(filepath.Join(moduleDir, "go.mod"))
	if err != nil {
		return nil, fmt.Errorf("molgen build: %w", err)
	}
	scratch := filepath.Join(tmp, "build.mod")
	if err := os.WriteFile(scratch, mod, 0o644); err != nil {
		return nil, err
	}
	if sum, err := os.ReadFile(filepath.Join(moduleDir, "go.sum")); err == nil {
		if err := os.WriteFile(filepath.Join(tmp, "build.sum"), sum, 0o644); err != nil {
			return nil, err
		}
	}
	return []string{"-modfile", scratch, "-mod=mod"}, nil
}

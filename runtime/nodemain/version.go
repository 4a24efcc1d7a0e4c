package nodemain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	goruntime "runtime"
	"runtime/debug"
	"strings"

	"github.com/molgen/molgen/runtime"
	"github.com/molgen/molgen/runtime/placement"
)

// molgenModule is the module whose version a node binary reports.
const molgenModule = "github.com/molgen/molgen"

// printVersion writes what -version prints: the molgen runtime the
// binary was built with, the app and node, the services it hosts, the
// mains it runs, and a fingerprint of the placement built into it.
func printVersion(w io.Writer, p Program) {
	fmt.Fprintf(w, "molgen %s (runtime API %d, %s)\n", molgenVersion(), runtime.APIVersion, goruntime.Version())
	app, hosted := "", []string{}
	if p.Placement != "" {
		if pl, err := placement.Parse(p.PlacementFile, []byte(p.Placement)); err == nil {
			app = pl.App
			for _, s := range p.Services {
				if pl.Hosts(p.Node, s) {
					hosted = append(hosted, s)
				}
			}
		}
		sum := sha256.Sum256([]byte(p.Placement))
		fmt.Fprintf(w, "app %s, node %s, placement %s sha256:%s\n", app, p.Node, p.PlacementFile, hex.EncodeToString(sum[:8]))
	} else {
		hosted = p.Services
		fmt.Fprintf(w, "node %s (monolith)\n", p.Node)
	}
	fmt.Fprintf(w, "services: %s\n", list(hosted))
	fmt.Fprintf(w, "mains: %s\n", mainNames(p.Run))
}

// molgenVersion is the version of the molgen module linked in, as the Go
// toolchain recorded it ("(devel)" in molgen's own tree).
func molgenVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if info.Main.Path == molgenModule {
		return info.Main.Version
	}
	for _, d := range info.Deps {
		if d.Path == molgenModule {
			if d.Replace != nil {
				return d.Version + " => " + d.Replace.Path
			}
			return d.Version
		}
	}
	return "unknown"
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

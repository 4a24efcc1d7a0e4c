// Package templates holds the text templates for the non-Go files molgen
// writes: the placement skeleton of 'molgen init' and per-node deploy files
// (systemd units, a Compose file).
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"
)

//go:embed *.tmpl
var files embed.FS

var funcs = template.FuncMap{
	"join": strings.Join,
	"flow": func(items []string) string {
		quoted := make([]string, len(items))
		for i, s := range items {
			if s == "*" {
				s = `"*"`
			}
			quoted[i] = s
		}
		return "[" + strings.Join(quoted, ", ") + "]"
	},
}

var all = template.Must(template.New("").Funcs(funcs).ParseFS(files, "*.tmpl"))

// Render executes the template name (e.g. "placement.yaml.tmpl") with data.
func Render(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := all.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// Placement is the data of placement.yaml.tmpl.
type Placement struct {
	File     string
	App      string
	Module   string
	Services []string
	Mains    []string
	Names    []string // services then mains
}

// Node is the data of the deploy templates, one per node.
type Node struct {
	App, Node, Placement string
	Brokers              string
	BinDir               string
	Services, Mains      []string
}

// Deploy is the data of compose.yaml.tmpl.
type Deploy struct {
	App, Placement, Brokers, BinDir string
	Nodes                           []Node
}

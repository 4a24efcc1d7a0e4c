package main

import (
	"fmt"
	"io"

	"github.com/molgen/molgen/internal/acl"
	"github.com/molgen/molgen/internal/app"
	"github.com/molgen/molgen/internal/load"
	"github.com/molgen/molgen/templates"
)

// runACLs prints the Kafka ACLs each node of a placement needs (package
// internal/acl has the rules), as a kafka-acls.sh script or as Strimzi
// KafkaUser resources: the files 'molgen init -deploy' writes to kafka/.
func runACLs(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("acls", stderr, "-placement FILE [-format script|strimzi] [-principal User:{app}-{node}] [-tags T] [packages]")
	placementFile := fs.String("placement", "", "placement `file` (required)")
	format := fs.String("format", "script", "output: script (bash, for kafka-acls.sh) or strimzi (KafkaUser resources)")
	principal := fs.String("principal", acl.DefaultPrincipal, "each node's principal; {app} and {node} are replaced")
	tags := fs.String("tags", "", "build tags (comma-separated)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *placementFile == "" {
		return &usageError{"-placement FILE is required"}
	}
	tmpl, ok := aclFormats[*format]
	if !ok {
		return &usageError{fmt.Sprintf("unknown -format %q (want script or strimzi)", *format)}
	}
	a, pl, err := app.Analyze(load.Config{Patterns: fs.Args(), Tags: *tags}, *placementFile, stderr)
	if err != nil {
		return err
	}
	plan, err := acl.Derive(app.NewLayout(a, pl), acl.Options{Principal: *principal})
	if err != nil {
		return err
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(stderr, "molgen acls: warning: %s\n", w)
	}
	src, err := renderACLs(tmpl, plan, *placementFile)
	if err != nil {
		return err
	}
	_, err = stdout.Write(src)
	return err
}

// aclFormats maps -format to its template.
var aclFormats = map[string]string{"script": "acls.sh.tmpl", "strimzi": "kafka-users.yaml.tmpl"}

// renderACLs renders plan with tmpl (acls.sh.tmpl or kafka-users.yaml.tmpl).
func renderACLs(tmpl string, plan *acl.Plan, placementFile string) ([]byte, error) {
	d := templates.KafkaACLs{Plan: plan, Placement: placementFile, Users: map[string]string{}}
	if tmpl == aclFormats["strimzi"] {
		for i := range plan.Nodes {
			n := &plan.Nodes[i]
			if !n.Kafka {
				continue
			}
			name, err := n.KafkaUserName()
			if err != nil {
				return nil, err
			}
			d.Users[n.Name] = name
		}
	}
	return templates.Render(tmpl, d)
}

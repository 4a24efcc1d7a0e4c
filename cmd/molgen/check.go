package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/molgen/molgen/internal/app"
	"github.com/molgen/molgen/internal/load"
)

func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", stderr, "-placement FILE [-tags T] [packages]")
	placement := fs.String("placement", "", "placement `file` to check (required)")
	tags := fs.String("tags", "", "build tags (comma-separated)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *placement == "" {
		return &usageError{"-placement FILE is required"}
	}
	a, pl, err := app.Analyze(load.Config{Patterns: fs.Args(), Tags: *tags}, *placement, stderr)
	if err != nil {
		return err
	}
	l := app.NewLayout(a, pl)
	preferLocal := "on"
	if !pl.PreferLocal {
		preferLocal = "off: every call goes through Kafka"
	}
	fmt.Fprintf(stdout, "%s: ok: app %s, %d services, %d mains, %d nodes, prefer_local %s\n\n",
		*placement, pl.App, len(a.Services), len(a.Mains), len(l.Nodes), preferLocal)
	fmt.Fprintln(stdout, "nodes:")
	for _, n := range l.Nodes {
		var parts []string
		if len(n.Services) > 0 {
			parts = append(parts, "services "+strings.Join(n.Services, ", "))
		}
		if len(n.Mains) > 0 {
			parts = append(parts, "mains "+strings.Join(n.Mains, ", "))
		}
		fmt.Fprintf(stdout, "  %-12s %s\n", n.Name, strings.Join(parts, "; "))
	}
	calls := l.Calls()
	crossing, serviceHops := 0, 0
	fmt.Fprintln(stdout, "\ncalls:")
	for _, c := range calls {
		arrow := fmt.Sprintf("%s -> %s", c.From, c.To)
		if c.Local {
			fmt.Fprintf(stdout, "  %-28s local, on node %s\n", arrow, c.Node)
			continue
		}
		crossing++
		what := "crosses nodes"
		if len(c.Targets) == 1 && c.Targets[0] == c.Node {
			what = "through Kafka (prefer_local off)"
		}
		flag := " "
		if !c.FromMain {
			flag = "!"
			serviceHops++
		}
		fmt.Fprintf(stdout, "%s %-28s %s: %s -> %s over Kafka\n", flag, arrow, what, c.Node, strings.Join(c.Targets, "|"))
	}
	if len(calls) == 0 {
		fmt.Fprintln(stdout, "  (none)")
	}
	fmt.Fprintf(stdout, "\n%d of %d calls go through Kafka.\n", crossing, len(calls))
	if serviceHops > 0 {
		fmt.Fprintf(stdout, "! marks a service calling a service placed elsewhere: each such call adds a Kafka round trip\n  to the work of its caller. Place chatty pairs on the same node to keep them direct.\n")
	}
	if findings := a.RetryFindings(); len(findings) > 0 {
		fmt.Fprintf(stdout, "\nretries and deadlines (%d warnings; the call graph is by service, so any method may call any method of a service it depends on):\n", len(findings))
		for _, f := range findings {
			fmt.Fprintf(stdout, "  %s\n", f)
		}
	}
	if crossing > 0 && len(pl.Kafka.Brokers) == 0 {
		fmt.Fprintf(stdout, "note: calls cross nodes but the placement has no kafka.brokers: start nodes with -brokers or MOLGEN_KAFKA_BROKERS.\n")
	}
	return nil
}

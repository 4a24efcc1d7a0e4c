// Command molgen generates typed clients and server shims for annotated Go
// service interfaces and builds one binary per node of a placement, so the
// same services run as a monolith, as microservices, or mixed.
//
// Usage:
//
//	molgen generate [-tags T] [packages]            write molgen_gen.go files (default package ".")
//	molgen build [-placement FILE] -o DIR [packages] build DIR/<node> per node, or DIR/monolith
//	molgen check -placement FILE [packages]          validate a placement, list calls that cross nodes
//	molgen graph [-placement FILE] [-format dot|mermaid] [packages]
//	molgen advise -profile FILE [-from PLACEMENT] [-o FILE | -placement CANDIDATE] [packages]
//	                                                propose a placement from recorded traffic
//	molgen profile merge [-o FILE] PROFILE...       merge the profiles of a run's nodes
//	molgen init [-o FILE] [-deploy DIR] [packages]   write a placement skeleton and deploy files
//	molgen acls -placement FILE [-format script|strimzi] [packages]
//	                                                print each node's least-privilege Kafka ACLs
//	molgen broker [-addr 127.0.0.1:9092]             run an embedded Kafka-protocol broker
//	molgen topics -brokers B -app A [-idle 1h] [-delete] list (and remove) unused reply topics
//	molgen version
//
// Whole-app commands (build, check, graph, init) default to the packages
// "./..."; generate defaults to ".". Put this line in each service package:
//
//	//go:generate go run github.com/molgen/molgen/cmd/molgen generate
//
// Exit status: 0 on success, 1 when molgen found a problem (every problem is
// printed as file:line:col: message), 2 on a usage error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/molgen/molgen/internal/suggest"
)

// Version is molgen's version.
const Version = "v0.1.0"

// usageError marks errors in the command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one subcommand.
type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"generate", "write molgen_gen.go for annotated packages", runGenerate},
		{"build", "build one binary per node (or a monolith)", runBuild},
		{"check", "validate a placement and list calls that cross nodes", runCheck},
		{"graph", "draw services, mains, calls and nodes", runGraph},
		{"advise", "propose a placement from a recorded traffic profile, with its predicted saving", runAdvise},
		{"profile", "merge the traffic profiles of a run's nodes into one", runProfile},
		{"init", "write a placement skeleton and per-node deploy files", runInit},
		{"acls", "print the Kafka ACLs each node needs, from the call graph (script or Strimzi)", runACLs},
		{"broker", "run an embedded Kafka-protocol broker for development", runBroker},
		{"topics", "list an app's reply topics no running instance uses; -delete removes them", runTopics},
		{"version", "print molgen's version", func(_ []string, stdout, _ io.Writer) error {
			_, err := fmt.Fprintf(stdout, "molgen %s (runtime API %d)\n", Version, runtimeAPI())
			return err
		}},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: molgen <command> [flags] [packages]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'molgen <command> -h' for a command's flags.")
}

// run runs molgen with args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		var ue *usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "molgen %s: %s\n", c.name, ue.msg)
			return 2
		default:
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	msg := fmt.Sprintf("molgen: unknown command %q", args[0])
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	if s := suggest.Closest(args[0], names); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	fmt.Fprintln(stderr, msg)
	usage(stderr)
	return 2
}

// newFlags returns a FlagSet that reports errors as usage errors.
func newFlags(name string, stderr io.Writer, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("molgen "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: molgen %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	return nil
}

// Command mutation checks that the test suite catches targeted breakages
// of molgen: each mutant changes one spot of the code in a private copy of
// the checkout, and the tests that guard that spot must fail. A mutant the
// tests do not kill is a hole in the suite.
//
// Run it from the root of the checkout before a release (a few minutes;
// set MOLGEN_TEST_BROKERS to use a real Kafka):
//
//	go run ./internal/mutation            # every mutant, guarding packages only
//	go run ./internal/mutation -run tracker -v
//	go run ./internal/mutation -full      # go test ./... for each mutant (slow)
//
// It exits 1 if a mutant survives, no longer applies (its original text is
// gone: update the mutant with the code) or does not compile. docs/MUTATION.md has the last
// score.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mutation:", err)
		os.Exit(1)
	}
}

func run() error {
	only := flag.String("run", "", "run only mutants whose name matches this regexp")
	full := flag.Bool("full", false, "run 'go test ./...' for each mutant instead of its guarding packages")
	verbose := flag.Bool("v", false, "print the output of the tests of each mutant")
	timeout := flag.Duration("timeout", 10*time.Minute, "time limit of one mutant's tests")
	flag.Parse()
	filter, err := regexp.Compile(*only)
	if err != nil {
		return err
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "mutation")); err != nil {
		return fmt.Errorf("run it from the root of the molgen checkout")
	}
	work, err := os.MkdirTemp("", "molgen-mutation-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if out, err := exec.Command("cp", "-a", root+"/.", work).CombinedOutput(); err != nil {
		return fmt.Errorf("copying the checkout: %v\n%s", err, out)
	}

	var killed, survived, stale int
	for _, m := range mutants {
		if !filter.MatchString(m.name) {
			continue
		}
		path := filepath.Join(work, m.file)
		orig, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if n := bytes.Count(orig, []byte(m.from)); n != 1 {
			fmt.Printf("STALE    %-28s %s: the text to mutate occurs %d times, want 1\n", m.name, m.file, n)
			stale++
			continue
		}
		if err := os.WriteFile(path, bytes.Replace(orig, []byte(m.from), []byte(m.to), 1), 0o644); err != nil {
			return err
		}
		args := []string{"test", "-count=1"}
		if *full {
			args = append(args, "./...")
		} else {
			if m.tests != "" {
				args = append(args, "-run", m.tests)
			}
			args = append(args, m.pkgs...)
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() == context.DeadlineExceeded
		cancel()
		if werr := os.WriteFile(path, orig, 0o644); werr != nil {
			return werr
		}
		verdict := "killed"
		switch {
		case err == nil:
			verdict = "SURVIVED"
			survived++
		case bytes.Contains(out, []byte("[build failed]")) || bytes.Contains(out, []byte("[setup failed]")):
			// A mutant that does not compile proves nothing about the tests.
			verdict = "BROKEN"
			stale++
		case timedOut:
			verdict = "killed (timeout)"
			killed++
		default:
			killed++
		}
		fmt.Printf("%-8s %-28s %6.1fs  %s\n", verdict, m.name, time.Since(start).Seconds(), m.what)
		if *verbose || err == nil || verdict == "BROKEN" {
			fmt.Println(indent(string(out)))
		} else if failed := failures(out); failed != "" {
			fmt.Println("         caught by: " + failed)
		}
	}
	total := killed + survived + stale
	fmt.Printf("\n%d of %d mutants killed", killed, total)
	if survived+stale > 0 {
		fmt.Printf(", %d survived, %d stale or broken\n", survived, stale)
		return fmt.Errorf("the tests missed %d mutants", survived+stale)
	}
	fmt.Println()
	return nil
}

// failures lists the top-level tests that failed in go test's output.
func failures(out []byte) string {
	var names []string
	seen := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		name, ok := strings.CutPrefix(line, "--- FAIL: ")
		if !ok {
			if strings.HasPrefix(line, "panic: ") && !seen["panic"] {
				seen["panic"] = true
				names = append(names, "a panic")
			}
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		name, _, _ = strings.Cut(name, "/")
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return strings.Join(names, ", ")
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 40 {
		lines = append(lines[:40], "...")
	}
	return "         " + strings.Join(lines, "\n         ")
}

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/molgen/molgen/internal/advise"
	"github.com/molgen/molgen/internal/app"
	"github.com/molgen/molgen/internal/load"
	"github.com/molgen/molgen/internal/placementfile"
	"github.com/molgen/molgen/runtime/placement"
	"github.com/molgen/molgen/runtime/profile"
)

// profileFiles is a repeatable, comma-separated -profile flag.
type profileFiles []string

func (p *profileFiles) String() string { return strings.Join(*p, ",") }
func (p *profileFiles) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*p = append(*p, f)
		}
	}
	return nil
}

// readProfiles reads and merges profile files; a directory stands for
// the *.json files in it (where nodes started with -profile DIR/ write).
func readProfiles(paths []string) (*profile.Profile, error) {
	var files []string
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			matches, _ := filepath.Glob(filepath.Join(p, "*.json"))
			if len(matches) == 0 {
				return nil, fmt.Errorf("%s: no profiles (*.json) in the directory", p)
			}
			files = append(files, matches...)
			continue
		}
		files = append(files, p)
	}
	var ps []*profile.Profile
	for _, f := range files {
		p, err := profile.ReadFile(f)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	merged, err := profile.Merge(ps...)
	if err != nil {
		return nil, fmt.Errorf("merging %s: %v", strings.Join(files, ", "), err)
	}
	return merged, nil
}

func runProfile(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "merge" {
		return &usageError{"want: molgen profile merge -o FILE PROFILE..."}
	}
	fs := newFlags("profile merge", stderr, "-o FILE PROFILE...")
	out := fs.String("o", "", "write the merged profile to `file` (default: standard output)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return &usageError{"name the profile files to merge"}
	}
	p, err := readProfiles(fs.Args())
	if err != nil {
		return err
	}
	if *out != "" {
		return p.WriteFile(*out)
	}
	data, err := p.Encode()
	if err != nil {
		return err
	}
	_, err = stdout.Write(data)
	return err
}

func runAdvise(args []string, w, stderr io.Writer) error {
	// Tables pad their cells: trim what ends a line before printing.
	var buf strings.Builder
	defer func() { io.WriteString(w, trimLines(buf.String())) }()
	stdout := &buf
	fs := newFlags("advise", stderr, "-profile FILE[,FILE...] [-from PLACEMENT] [-o FILE | -placement CANDIDATE] [-tags T] [packages]")
	var files profileFiles
	fs.Var(&files, "profile", "traffic profile `files` written by node binaries' -profile, or directories of them (comma-separated or repeated; merged)")
	from := fs.String("from", "", "the current placement `file`, whose advise section holds the constraints (default: the placement the profile was recorded under)")
	candidate := fs.String("placement", "", "predict the cost of this candidate placement `file` instead of proposing one")
	out := fs.String("o", "", "write the proposed placement to `file`")
	byteCost := fs.Duration("byte-cost", time.Duration(advise.DefaultByteCost*1e3*float64(time.Second)), "what a kilobyte on the wire costs, in time")
	tags := fs.String("tags", "", "build tags (comma-separated)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(files) == 0 {
		return &usageError{"-profile FILE is required (record one with a node binary's -profile flag)"}
	}
	if *candidate != "" && *out != "" {
		return &usageError{"-o writes a proposal; -placement predicts a candidate without proposing: use one"}
	}
	prof, err := readProfiles(files)
	if err != nil {
		return err
	}
	a, _, err := app.Analyze(load.Config{Patterns: fs.Args(), Tags: *tags}, "", stderr)
	if err != nil {
		return err
	}
	services, mains := a.ServiceNames(), a.MainNames()

	// The current placement: -from, else the one the nodes recorded under.
	var cur *placement.Placement
	var curSrc []byte
	curName := *from
	if *from != "" {
		if curSrc, err = os.ReadFile(*from); err != nil {
			return err
		}
		if cur, err = placementfile.Check(*from, curSrc, services, mains); err != nil {
			return err
		}
	} else {
		if prof.Placement == "" {
			return &usageError{"the profile was recorded on a monolith (no placement): name the placement to start from with -from FILE"}
		}
		curName = prof.PlacementFile + " (as recorded)"
		curSrc = []byte(prof.Placement)
		if cur, err = placementfile.Check(curName, curSrc, services, mains); err != nil {
			return err
		}
	}
	if prof.App != "" && cur.App != prof.App {
		fmt.Fprintf(stdout, "note: the profile is of app %q, the placement of app %q\n", prof.App, cur.App)
	}
	model, err := advise.NewModel(services, mains, prof, float64(*byteCost)/float64(time.Second)/1e3)
	if err != nil {
		return err
	}
	names := append(append([]string{}, services...), mains...)
	current := advise.FromPlacement(cur, names)

	fmt.Fprintf(stdout, "profile: %s of traffic recorded by %d node instance(s) under %s\n", fmtSeconds(prof.Seconds), len(prof.Windows), prof.PlacementFile)
	for _, n := range model.Notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	writeTraffic(stdout, model, current)

	if *candidate != "" {
		cand, err := placementfile.Load(*candidate, services, mains)
		if err != nil {
			return err
		}
		placed := advise.FromPlacement(cand, names)
		fmt.Fprintln(stdout)
		writePrediction(stdout, model, curName, current, *candidate, placed)
		if v := model.Violations(placed, constraints(cand)); len(v) > 0 {
			fmt.Fprintf(stdout, "\n%s breaks its advise constraints:\n", *candidate)
			for _, s := range v {
				fmt.Fprintf(stdout, "  %s\n", s)
			}
		}
		return nil
	}

	c := constraints(cur)
	order := make([]string, len(cur.Nodes))
	for i, n := range cur.Nodes {
		order[i] = n.Name
	}
	prop, err := model.Optimize(current, order, c)
	if err != nil {
		return fmt.Errorf("%s: %v", curName, err)
	}
	text, err := advise.Rewrite(curSrc, prop)
	if err != nil {
		return fmt.Errorf("%s: %v", curName, err)
	}
	how := fmt.Sprintf("exact: every placement of %d services and mains considered", len(names))
	if !prop.Exact {
		how = fmt.Sprintf("heuristic (more than %d services and mains): greedy merges of the busiest pairs, then single moves", advise.ExactLimit)
	}
	fmt.Fprintf(stdout, "\nconstraints: %s\nsearch: %s\n", describeConstraints(c), how)
	if *out != "" {
		if err := os.WriteFile(*out, text, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nproposal written to %s; against %s:\n", *out, curName)
	} else {
		fmt.Fprintf(stdout, "\nproposal (-o FILE writes it), against %s:\n", curName)
	}
	fmt.Fprint(stdout, indent(advise.Diff(string(curSrc), string(text))))
	fmt.Fprintln(stdout)
	writePrediction(stdout, model, curName, current, "proposal", prop.Placed)
	return nil
}

func constraints(pl *placement.Placement) advise.Constraints {
	return advise.Constraints{Pin: pl.Advise.Pin, Apart: pl.Advise.Apart, MaxNodes: pl.Advise.MaxNodes, CPUBudget: pl.Advise.CPUBudget}
}

func describeConstraints(c advise.Constraints) string {
	var parts []string
	for _, name := range sortedKeys(c.Pin) {
		parts = append(parts, fmt.Sprintf("%s on node %s", name, c.Pin[name]))
	}
	for _, g := range c.Apart {
		parts = append(parts, strings.Join(g, ", ")+" apart")
	}
	if c.MaxNodes > 0 {
		parts = append(parts, fmt.Sprintf("at most %d nodes", c.MaxNodes))
	}
	for _, n := range sortedKeys(c.CPUBudget) {
		parts = append(parts, fmt.Sprintf("node %s at most %g cores", n, c.CPUBudget[n]))
	}
	if len(parts) == 0 {
		return "none (add an advise section to the placement: pin, apart, max_nodes, cpu_budget)"
	}
	return strings.Join(parts, "; ")
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// writeTraffic lists the measured edges.
func writeTraffic(w io.Writer, m *advise.Model, current advise.Placed) {
	fmt.Fprintln(w, "\ntraffic:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  caller -> service\tcalls/s\tremote overhead/call\tbytes/call")
	for _, e := range m.Edges {
		est := ""
		if !e.Measured {
			est = " (est.)"
		}
		fmt.Fprintf(tw, "  %s -> %s\t%.1f\t%s%s\t%.0f\n", e.From, e.To, e.Rate, fmtSeconds(e.Overhead), est, e.Bytes)
	}
	tw.Flush()
	if m.RemoteCPU > 0 {
		fmt.Fprintf(w, "remote CPU: %s per remote call (process CPU outside handlers / remote calls)\n", fmtSeconds(m.RemoteCPU))
	}
}

// writePrediction compares two placements' predictions.
func writePrediction(w io.Writer, m *advise.Model, aName string, a advise.Placed, bName string, b advise.Placed) {
	pa, pb := m.Predict(a), m.Predict(b)
	fmt.Fprintf(w, "predicted for the recorded traffic, before: %s, after: %s\n", aName, bName)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  \tbefore\tafter\n")
	fmt.Fprintf(tw, "  remote calls/s\t%.1f\t%.1f\n", pa.RemoteCalls, pb.RemoteCalls)
	fmt.Fprintf(tw, "  remote bytes/s\t%s\t%s\n", fmtBytes(pa.RemoteBytes), fmtBytes(pb.RemoteBytes))
	fmt.Fprintf(tw, "  cost (remote time/s)\t%s\t%s\n", fmtSeconds(pa.Cost), fmtSeconds(pb.Cost))
	mainsB := map[string]advise.MainPrediction{}
	for _, mp := range pb.Mains {
		mainsB[mp.Name] = mp
	}
	for _, ma := range pa.Mains {
		mb := mainsB[ma.Name]
		fmt.Fprintf(tw, "  main %s (%.1f requests/s)\t\t\n", ma.Name, ma.Requests)
		fmt.Fprintf(tw, "    remote calls/request\t%.2f\t%.2f\n", ma.RemotePerRequest, mb.RemotePerRequest)
		fmt.Fprintf(tw, "    remote latency/request\t%s\t%s\n", fmtSeconds(ma.LatencyPerRequest), fmtSeconds(mb.LatencyPerRequest))
	}
	tw.Flush()
	if pa.RemoteCalls > 0 {
		fmt.Fprintf(w, "saving: %.1f remote calls/s (%.0f%%)\n", pa.RemoteCalls-pb.RemoteCalls, 100*(pa.RemoteCalls-pb.RemoteCalls)/pa.RemoteCalls)
	}
}

func fmtSeconds(s float64) string {
	switch {
	case s == 0:
		return "0"
	case s < 1e-3:
		return fmt.Sprintf("%.1fµs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.2fms", s*1e3)
	}
	return fmt.Sprintf("%.2fs", s)
}

func fmtBytes(b float64) string {
	switch {
	case b < 1e3:
		return fmt.Sprintf("%.0f B", b)
	case b < 1e6:
		return fmt.Sprintf("%.1f kB", b/1e3)
	}
	return fmt.Sprintf("%.1f MB", b/1e6)
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}

// trimLines removes trailing blanks from every line.
func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	return strings.Join(lines, "\n")
}

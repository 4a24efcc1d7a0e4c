package advise

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Rewrite returns the placement file src with its nodes section replaced
// by the proposal's nodes, and prefer_local turned on when it was off (the
// proposal's predictions assume direct calls on a node). Everything else
// (comments, kafka, advise) is kept as written.
func Rewrite(src []byte, p *Proposal) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the placement is not a YAML mapping")
	}
	root := doc.Content[0]
	lines := strings.SplitAfter(string(src), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	start, end := -1, len(lines)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch {
		case k.Value == "nodes":
			start = k.Line - 1
		case start >= 0 && end == len(lines) && k.Line-1 > start:
			end = k.Line - 1
		}
		if k.Value == "prefer_local" && v.Value != "true" && k.Line == v.Line {
			lines[k.Line-1] = strings.Repeat(" ", k.Column-1) + "prefer_local: true # was " + v.Value + ": the proposal's calls on one node are direct\n"
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("the placement has no nodes section")
	}
	// Comments and blank lines just before the next key belong to it.
	for end > start+1 {
		t := strings.TrimSpace(lines[end-1])
		if t != "" && !strings.HasPrefix(t, "#") {
			break
		}
		end--
	}
	var b strings.Builder
	for _, l := range lines[:start] {
		b.WriteString(l)
	}
	b.WriteString(NodesYAML(p))
	for _, l := range lines[end:] {
		b.WriteString(l)
	}
	return []byte(b.String()), nil
}

// NodesYAML is the nodes section of a proposal.
func NodesYAML(p *Proposal) string {
	on := map[string][]string{}
	for name, nodes := range p.Placed.Nodes {
		for _, n := range nodes {
			on[n] = append(on[n], name)
		}
	}
	var b strings.Builder
	b.WriteString("nodes:\n")
	for _, n := range p.Order {
		names := on[n]
		sort.Strings(names)
		fmt.Fprintf(&b, "  %s: [%s]\n", n, strings.Join(names, ", "))
	}
	return b.String()
}

// Diff is a line diff of two texts: every line, prefixed "- " (only in
// a), "+ " (only in b) or "  " (in both), from a longest common
// subsequence.
func Diff(a, b string) string {
	x, y := strings.Split(strings.TrimSuffix(a, "\n"), "\n"), strings.Split(strings.TrimSuffix(b, "\n"), "\n")
	lcs := square[int](max(len(x), len(y)) + 1)
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			out.WriteString("  " + x[i] + "\n")
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			out.WriteString("- " + x[i] + "\n")
			i++
		default:
			out.WriteString("+ " + y[j] + "\n")
			j++
		}
	}
	return out.String()
}

package advise

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// heuristic finds a good feasible assignment without trying them all:
//
//  1. start with every name on a node of its own, except that names
//     pinned to one node start together;
//  2. merge greedily: join the two nodes with the most traffic between
//     them (ties: fewest changes from the current placement) as long as
//     the merge is allowed and saves something, or the node count is still
//     over max_nodes;
//  3. improve locally: move one name to another node (or a node of its
//     own) while that lowers the cost, or keeps it and changes less.
//
// It returns nil when it finds no feasible assignment. Optimize uses it
// alone beyond ExactLimit names, and as the first bound of the exact
// search below.
func (s *search) heuristic() []int {
	group := make([]int, s.n)
	for i := range group {
		group[i] = i
		for j := range i {
			if s.pin[i] != "" && s.pin[i] == s.pin[j] {
				group[i] = group[j]
				break
			}
		}
	}
	groupsOf := func(group []int) []int {
		seen := map[int]bool{}
		var out []int
		for _, g := range group {
			if !seen[g] {
				seen[g] = true
				out = append(out, g)
			}
		}
		sort.Ints(out)
		return out
	}
	try := make([]int, s.n)
	for {
		gs := groupsOf(group)
		// Traffic between every two nodes, in one pass.
		gain := map[[2]int]float64{}
		for i := range s.n {
			for j := range i {
				if a, b := group[i], group[j]; a != b {
					gain[[2]int{min(a, b), max(a, b)}] += s.w[i][j]
				}
			}
		}
		type pair struct {
			a, b int
			gain float64
		}
		var pairs []pair
		for x, a := range gs {
			for _, b := range gs[:x] {
				g := gain[[2]int{min(a, b), max(a, b)}]
				if g > s.eps || len(gs) > s.maxNodes {
					pairs = append(pairs, pair{a, b, g})
				}
			}
		}
		sort.SliceStable(pairs, func(i, j int) bool { return pairs[i].gain > pairs[j].gain })
		merge := func(p pair, into []int) {
			for i, g := range group {
				into[i] = g
				if g == p.a {
					into[i] = p.b
				}
			}
		}
		// The feasible merge that saves most; among equals, the one that
		// changes least.
		best, bestMoves := -1, math.MaxInt
		for k, p := range pairs {
			if best >= 0 && p.gain < pairs[best].gain-s.eps {
				break
			}
			merge(p, try)
			if !s.mergeable(try) {
				continue
			}
			if _, moves := s.cost(try); best < 0 || moves < bestMoves {
				best, bestMoves = k, moves
			}
		}
		if best < 0 {
			break
		}
		merge(pairs[best], group)
	}
	if !s.feasible(group) {
		return nil
	}
	// Local search: single moves.
	cost, moves := s.cost(group)
	for round := 0; round < 10*s.n; round++ {
		improved := false
		for i := range s.n {
			old := group[i]
			for _, g := range append(groupsOf(group), s.n+i) { // s.n+i: a node of its own
				if g == old {
					continue
				}
				group[i] = g
				if s.feasible(group) {
					c, mv := s.cost(group)
					if c < cost-s.eps || (c <= cost+s.eps && mv < moves) {
						cost, moves, old, improved = c, mv, g, true
						continue
					}
				}
				group[i] = old
			}
			group[i] = old
		}
		if !improved {
			break
		}
	}
	// Renumber groups 0..k-1 in order of first appearance.
	renum := map[int]int{}
	for i, g := range group {
		if _, ok := renum[g]; !ok {
			renum[g] = len(renum)
		}
		group[i] = renum[g]
	}
	return group
}

// mergeable is feasible without the node count: merges that keep too
// many nodes are still steps towards fewer.
func (s *search) mergeable(group []int) bool {
	keep := s.maxNodes
	s.maxNodes = s.n
	ok := s.feasible(group)
	s.maxNodes = keep
	return ok
}

// name turns an assignment into a placement: a node pinned by the advise
// section takes its pinned name; any other node takes the name of the
// current node that shares the most of its names (and whose CPU budget it
// fits), else a new name made of its members'.
func (s *search) name(group []int, current Placed, order []string) (Placed, []string) {
	members := map[int][]string{}
	var gs []int
	for i, g := range group {
		if _, ok := members[g]; !ok {
			gs = append(gs, g)
		}
		members[g] = append(members[g], s.names[i])
	}
	for _, g := range gs {
		sort.Strings(members[g])
	}
	names := map[int]string{}
	used := map[string]bool{}
	for i, g := range group {
		if s.pin[i] != "" {
			names[g] = s.pin[i]
			used[s.pin[i]] = true
		}
	}
	// Larger groups choose first.
	sort.SliceStable(gs, func(a, b int) bool { return len(members[gs[a]]) > len(members[gs[b]]) })
	for _, g := range gs {
		if names[g] != "" {
			continue
		}
		var cpu float64
		for _, name := range members[g] {
			cpu += s.m.CPU[name]
		}
		bestName, bestOverlap := "", 0
		for _, node := range order {
			if used[node] || cpu > s.budgetOf(node)+1e-12 {
				continue
			}
			overlap := 0
			for _, name := range members[g] {
				for _, n := range current.Nodes[name] {
					if n == node {
						overlap++
					}
				}
			}
			if overlap > bestOverlap {
				bestName, bestOverlap = node, overlap
			}
		}
		if bestName == "" {
			bestName = strings.Join(members[g], "-")
			if len(members[g]) > 3 || len(bestName) > 40 {
				bestName = "node"
			}
			for k, base := 2, bestName; used[bestName]; k++ {
				bestName = fmt.Sprintf("%s-%d", base, k)
			}
		}
		names[g] = bestName
		used[bestName] = true
	}
	p := Placed{Nodes: map[string][]string{}, PreferLocal: true}
	for g, ms := range members {
		for _, name := range ms {
			p.Nodes[name] = []string{names[g]}
		}
	}
	var out []string
	for _, node := range order {
		if used[node] {
			out = append(out, node)
		}
	}
	var fresh []string
	for node := range used {
		if !contains(order, node) {
			fresh = append(fresh, node)
		}
	}
	sort.Strings(fresh)
	return p, append(out, fresh...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// describe says what the constraints are, for messages.
func describe(c Constraints) string {
	var parts []string
	for _, name := range sortedKeys(c.Pin) {
		parts = append(parts, fmt.Sprintf("%s pinned to %s", name, c.Pin[name]))
	}
	for _, g := range c.Apart {
		parts = append(parts, strings.Join(g, ", ")+" apart")
	}
	if c.MaxNodes > 0 {
		parts = append(parts, fmt.Sprintf("at most %d nodes", c.MaxNodes))
	}
	for _, node := range sortedKeys(c.CPUBudget) {
		parts = append(parts, fmt.Sprintf("node %s at most %g cores", node, c.CPUBudget[node]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

package advise

import (
	"fmt"
	"math"
	"sort"
)

// Constraints limit the placements Optimize may propose; they come from
// the placement file's advise section.
type Constraints struct {
	// Pin keeps a service or main on the named node.
	Pin map[string]string
	// Apart lists groups no two members of which may share a node.
	Apart [][]string
	// MaxNodes bounds the number of nodes (0: none).
	MaxNodes int
	// CPUBudget bounds each node's cores of handler time by node name; "*"
	// applies to every node not named.
	CPUBudget map[string]float64
}

// ExactLimit is the largest number of services and mains for which
// Optimize tries every partition; beyond it, it uses the heuristic.
const ExactLimit = 12

// maxSteps bounds the exact search (it has never come near it for
// ExactLimit items, but constraints that admit nothing could make it
// wander): past it, the best placement found so far is kept.
const maxSteps = 50_000_000

// Proposal is a placement Optimize found.
type Proposal struct {
	// Placed puts every name on one node.
	Placed Placed
	// Order lists the proposal's nodes: the current ones kept, in their
	// file order, then new ones.
	Order []string
	// Cost is the model's cost of the proposal; Moves counts the pairs of
	// names whose being together or apart differs from the current
	// placement (the tie-breaker among placements of equal cost).
	Cost  float64
	Moves int
	// Exact says every partition was considered (else the heuristic ran);
	// Steps counts the search steps.
	Exact bool
	Steps int
}

// search is the state of one optimisation.
type search struct {
	m        *Model
	n        int
	names    []string // in search order
	w        [][]float64
	together [][]bool // in the current placement
	apart    [][]bool
	pin      []string
	cpu      []float64
	budget   map[string]float64
	maxNodes int

	// exact search state
	group      []int
	members    [][]int
	groupPin   []string
	groupCPU   []float64
	best       []int
	bestCost   float64
	bestMoves  int
	steps      int
	eps        float64
	haveResult bool
}

// Optimize proposes the placement of the model's services and mains that
// costs least under c, each on one node, with prefer_local on. current is
// the placement the traffic was recorded under (its node names and order
// name the proposal's nodes); order lists its nodes in file order.
func (m *Model) Optimize(current Placed, order []string, c Constraints) (*Proposal, error) {
	return m.optimize(current, order, c, ExactLimit)
}

// optimize is Optimize with exact search up to exactLimit names.
func (m *Model) optimize(current Placed, order []string, c Constraints, exactLimit int) (*Proposal, error) {
	s := &search{m: m, n: len(m.Names), maxNodes: c.MaxNodes, budget: c.CPUBudget}
	if s.maxNodes <= 0 || s.maxNodes > s.n {
		s.maxNodes = s.n
	}
	// Search order: heaviest traffic first, so bounds bite early.
	weight := map[string]float64{}
	for _, e := range m.Edges {
		weight[e.From] += m.edgeCost(e)
		weight[e.To] += m.edgeCost(e)
	}
	s.names = append([]string(nil), m.Names...)
	sort.SliceStable(s.names, func(i, j int) bool {
		a, b := s.names[i], s.names[j]
		if (c.Pin[a] != "") != (c.Pin[b] != "") {
			return c.Pin[a] != ""
		}
		return weight[a] > weight[b]
	})
	idx := map[string]int{}
	for i, n := range s.names {
		idx[n] = i
	}
	s.w = square[float64](s.n)
	s.together = square[bool](s.n)
	s.apart = square[bool](s.n)
	for _, e := range m.Edges {
		i, j := idx[e.From], idx[e.To]
		if i != j {
			s.w[i][j] += m.edgeCost(e)
			s.w[j][i] += m.edgeCost(e)
		}
	}
	var total float64
	for i := range s.n {
		for j := range i {
			total += s.w[i][j]
			for _, a := range current.Nodes[s.names[i]] {
				for _, b := range current.Nodes[s.names[j]] {
					if a == b {
						s.together[i][j], s.together[j][i] = true, true
					}
				}
			}
		}
	}
	s.eps = 1e-9 * max(total, 1e-12)
	for _, g := range c.Apart {
		for _, a := range g {
			for _, b := range g {
				if a != b {
					s.apart[idx[a]][idx[b]] = true
				}
			}
		}
	}
	s.pin = make([]string, s.n)
	s.cpu = make([]float64, s.n)
	for i, name := range s.names {
		s.pin[i] = c.Pin[name]
		s.cpu[i] = m.CPU[name]
	}

	s.bestCost, s.bestMoves = math.Inf(1), math.MaxInt
	if heur := s.heuristic(); heur != nil {
		s.record(heur)
	}
	exact := s.n <= exactLimit
	if exact {
		s.group = make([]int, s.n)
		s.exact(0, 0, 0)
		exact = s.steps < maxSteps
	}
	if !s.haveResult {
		return nil, fmt.Errorf("no placement satisfies the advise constraints (%s)", describe(c))
	}
	p := &Proposal{Cost: s.bestCost, Moves: s.bestMoves, Exact: exact, Steps: s.steps}
	p.Placed, p.Order = s.name(s.best, current, order)
	return p, nil
}

func square[T any](n int) [][]T {
	out := make([][]T, n)
	for i := range out {
		out[i] = make([]T, n)
	}
	return out
}

// budgetOf is the CPU budget of a group pinned to node pin ("" unpinned).
func (s *search) budgetOf(pin string) float64 {
	if b, ok := s.budget[pin]; ok && pin != "" {
		return b
	}
	if b, ok := s.budget["*"]; ok {
		return b
	}
	return math.Inf(1)
}

// cost returns the cost and moves of a full assignment (group per item).
func (s *search) cost(group []int) (float64, int) {
	var cost float64
	moves := 0
	for i := range s.n {
		for j := range i {
			same := group[i] == group[j]
			if !same {
				cost += s.w[i][j]
			}
			if same != s.together[i][j] {
				moves++
			}
		}
	}
	return cost, moves
}

// feasible reports whether a full assignment meets every constraint.
func (s *search) feasible(group []int) bool {
	pins := map[int]string{}
	cpu := map[int]float64{}
	groups := map[int]bool{}
	for i := range s.n {
		g := group[i]
		groups[g] = true
		cpu[g] += s.cpu[i]
		if s.pin[i] != "" {
			if p, ok := pins[g]; ok && p != s.pin[i] {
				return false
			}
			pins[g] = s.pin[i]
		}
		for j := range i {
			if group[j] == g && s.apart[i][j] {
				return false
			}
			if s.pin[i] != "" && s.pin[i] == s.pin[j] && group[j] != g {
				return false
			}
		}
	}
	if len(groups) > s.maxNodes {
		return false
	}
	for g, c := range cpu {
		if c > s.budgetOf(pins[g])+1e-12 {
			return false
		}
	}
	return true
}

// record keeps group as the best assignment when it beats the best.
func (s *search) record(group []int) {
	cost, moves := s.cost(group)
	if !s.haveResult || cost < s.bestCost-s.eps || (cost <= s.bestCost+s.eps && moves < s.bestMoves) {
		s.best = append(s.best[:0], group...)
		s.bestCost, s.bestMoves, s.haveResult = cost, moves, true
	}
}

// exact places item pos and those after it in every feasible way
// (restricted growth strings: each set partition once), pruning branches
// that cannot beat the best: the partial cost and moves only grow.
func (s *search) exact(pos int, cost float64, moves int) {
	s.steps++
	if s.steps >= maxSteps {
		return
	}
	if s.haveResult && (cost > s.bestCost+s.eps || (cost >= s.bestCost-s.eps && moves >= s.bestMoves)) {
		return
	}
	if pos == s.n {
		s.record(s.group)
		return
	}
	var placed float64 // weight to every item placed so far
	for j := range pos {
		placed += s.w[pos][j]
	}
	pinnedGroup := -1
	if s.pin[pos] != "" {
		for g, p := range s.groupPin {
			if p == s.pin[pos] {
				pinnedGroup = g
			}
		}
	}
	k := len(s.members)
	for g := 0; g <= k; g++ {
		if g == k && k == s.maxNodes {
			break
		}
		if pinnedGroup >= 0 && g != pinnedGroup {
			continue
		}
		pin := ""
		if g < k {
			pin = s.groupPin[g]
			if s.pin[pos] != "" && pin != "" && pin != s.pin[pos] {
				continue
			}
		}
		if s.pin[pos] != "" {
			pin = s.pin[pos]
		}
		ok := true
		var inside float64
		dm := 0
		var members []int
		if g < k {
			members = s.members[g]
		}
		for _, j := range members {
			if s.apart[pos][j] {
				ok = false
				break
			}
			inside += s.w[pos][j]
		}
		if !ok {
			continue
		}
		groupCPU := s.cpu[pos]
		if g < k {
			groupCPU += s.groupCPU[g]
		}
		if groupCPU > s.budgetOf(pin)+1e-12 {
			continue
		}
		for j := range pos {
			if (s.group[j] == g) != s.together[pos][j] {
				dm++
			}
		}
		s.group[pos] = g
		if g == k {
			s.members = append(s.members, []int{pos})
			s.groupPin = append(s.groupPin, pin)
			s.groupCPU = append(s.groupCPU, groupCPU)
			s.exact(pos+1, cost+placed-inside, moves+dm)
			s.members = s.members[:k]
			s.groupPin = s.groupPin[:k]
			s.groupCPU = s.groupCPU[:k]
			continue
		}
		oldPin, oldCPU := s.groupPin[g], s.groupCPU[g]
		s.members[g] = append(s.members[g], pos)
		s.groupPin[g], s.groupCPU[g] = pin, groupCPU
		s.exact(pos+1, cost+placed-inside, moves+dm)
		s.members[g] = s.members[g][:len(s.members[g])-1]
		s.groupPin[g], s.groupCPU[g] = oldPin, oldCPU
	}
}

// Violations lists the constraints that p breaks (none: nil).
func (m *Model) Violations(p Placed, c Constraints) []string {
	var out []string
	for _, name := range sortedKeys(c.Pin) {
		if nodes := p.Nodes[name]; len(nodes) != 1 || nodes[0] != c.Pin[name] {
			out = append(out, fmt.Sprintf("%s is pinned to node %s but runs on %v", name, c.Pin[name], nodes))
		}
	}
	for _, g := range c.Apart {
		for i, a := range g {
			for _, b := range g[:i] {
				for _, na := range p.Nodes[a] {
					if contains(p.Nodes[b], na) {
						out = append(out, fmt.Sprintf("%s and %s are kept apart but share node %s", b, a, na))
					}
				}
			}
		}
	}
	nodes := p.nodeNames()
	if c.MaxNodes > 0 && len(nodes) > c.MaxNodes {
		out = append(out, fmt.Sprintf("%d nodes, at most %d allowed", len(nodes), c.MaxNodes))
	}
	cpu := m.Predict(p).NodeCPU
	for _, n := range nodes {
		b, ok := c.CPUBudget[n]
		if !ok {
			b, ok = c.CPUBudget["*"]
		}
		if ok && cpu[n] > b+1e-12 {
			out = append(out, fmt.Sprintf("node %s uses %.3g cores of handler time, its budget is %g", n, cpu[n], b))
		}
	}
	return out
}

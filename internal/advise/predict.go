package advise

import (
	"sort"

	"github.com/molgen/molgen/runtime/placement"
)

// Placed is where each service and main runs: a placement reduced to what
// predictions need.
type Placed struct {
	// Nodes maps each name to the nodes that run it.
	Nodes map[string][]string
	// PreferLocal: calls to a service on the caller's node are direct.
	PreferLocal bool
}

// FromPlacement reduces pl to where each of names runs.
func FromPlacement(pl *placement.Placement, names []string) Placed {
	p := Placed{Nodes: map[string][]string{}, PreferLocal: pl.PreferLocal}
	for _, name := range names {
		for _, n := range pl.Nodes {
			if pl.Hosts(n.Name, name) {
				p.Nodes[name] = append(p.Nodes[name], n.Name)
			}
		}
	}
	return p
}

// remoteFraction is the share of from's calls to to that cross Kafka: all
// of them with prefer_local off, else those made on nodes that do not run
// to (calls spread evenly over the caller's nodes).
func (p Placed) remoteFraction(from, to string) float64 {
	if !p.PreferLocal {
		return 1
	}
	callers := p.Nodes[from]
	if len(callers) == 0 {
		return 1
	}
	remote := 0
	for _, n := range callers {
		local := false
		for _, t := range p.Nodes[to] {
			local = local || t == n
		}
		if !local {
			remote++
		}
	}
	return float64(remote) / float64(len(callers))
}

// Prediction is what a placement is predicted to cost, per second of the
// recorded traffic.
type Prediction struct {
	// RemoteCalls and RemoteBytes are calls and bytes over Kafka per
	// second; Cost is the model's cost (seconds per second).
	RemoteCalls, RemoteBytes, Cost float64
	// Mains lists each main's requests (calls it makes) with what each
	// one adds in remote calls and latency, through nested calls too.
	Mains []MainPrediction
	// NodeCPU is the cores of handler time per node.
	NodeCPU map[string]float64
}

// MainPrediction is the predicted remote work of one entry point.
type MainPrediction struct {
	Name string
	// Requests is calls per second the main makes into services.
	Requests float64
	// RemotePerRequest and LatencyPerRequest are the remote calls and the
	// remote overhead (seconds) that each such call causes, on average,
	// including the calls the services make in turn.
	RemotePerRequest, LatencyPerRequest float64
}

// Predict predicts the cost of running the recorded traffic on p.
func (m *Model) Predict(p Placed) Prediction {
	var out Prediction
	frac := make([]float64, len(m.Edges))
	for i, e := range m.Edges {
		frac[i] = p.remoteFraction(e.From, e.To)
		out.RemoteCalls += e.Rate * frac[i]
		out.RemoteBytes += e.Rate * frac[i] * e.Bytes
		out.Cost += m.edgeCost(e) * frac[i]
	}
	out.NodeCPU = map[string]float64{}
	for name, cores := range m.CPU {
		nodes := p.Nodes[name]
		for _, n := range nodes { // instances share the load
			out.NodeCPU[n] += cores / float64(len(nodes))
		}
	}
	for _, name := range m.Names {
		if !m.Mains[name] {
			continue
		}
		flow := m.flows(name)
		mp := MainPrediction{Name: name}
		for i, e := range m.Edges {
			if e.From == name {
				mp.Requests += e.Rate
			}
			mp.RemotePerRequest += flow[i] * frac[i]
			mp.LatencyPerRequest += flow[i] * frac[i] * e.Overhead
		}
		if mp.Requests == 0 {
			continue
		}
		mp.RemotePerRequest /= mp.Requests
		mp.LatencyPerRequest /= mp.Requests
		out.Mains = append(out.Mains, mp)
	}
	return out
}

// flows returns, per edge, the calls per second that main's calls cause on
// it: the main's own edges, and a service's edges in proportion to the
// share of its incoming calls that come (directly or not) from main. The
// profile knows the caller service of each call, not the method, so a
// service's calls are spread over its callers by their share of its calls.
func (m *Model) flows(main string) []float64 {
	in := map[string]float64{}
	for _, e := range m.Edges {
		in[e.To] += e.Rate
	}
	flow := make([]float64, len(m.Edges))
	for i, e := range m.Edges {
		if e.From == main {
			flow[i] = e.Rate
		}
	}
	// Call chains are at most len(Names) long: propagate that often.
	for range m.Names {
		from := map[string]float64{}
		for i, e := range m.Edges {
			from[e.To] += flow[i]
		}
		for i, e := range m.Edges {
			if e.From != main && !m.Mains[e.From] && in[e.From] > 0 {
				flow[i] = e.Rate * min(from[e.From]/in[e.From], 1)
			}
		}
	}
	return flow
}

// nodeNames returns the nodes of p, sorted.
func (p Placed) nodeNames() []string {
	seen := map[string]bool{}
	for _, ns := range p.Nodes {
		for _, n := range ns {
			seen[n] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

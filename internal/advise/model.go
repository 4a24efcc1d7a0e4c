// Package advise turns a recorded traffic profile into placement advice:
// it predicts what a placement costs in remote calls, bytes and added
// latency, and searches for the placement that costs least under the
// constraints of the placement file's advise section. It writes nothing;
// 'molgen advise' prints what it finds.
//
// The cost of a placement is, per second of the recording, the sum over
// every caller -> service edge that crosses nodes of
//
//	calls/s × (remote overhead + remote CPU + bytes per call × ByteCost)
//
// where the remote overhead of a method is its measured caller-side
// latency over Kafka minus its handler's time (a oneway call's latency is
// all overhead), remote CPU is the processes' CPU time not spent in
// handlers divided by the remote calls, and ByteCost prices a byte on the
// wire. Edges never measured remote take the mean measured overhead and
// size. Placing two services on one node makes their calls direct (with
// prefer_local on), so the cost only counts edges between nodes.
package advise

import (
	"fmt"
	"sort"

	"github.com/molgen/molgen/runtime/profile"
)

// DefaultOverhead is the remote overhead assumed per call when the profile
// measured no remote call at all.
const DefaultOverhead = 1e-3

// DefaultByteCost prices one byte of a remote call, in seconds (1 ms per
// MB): Kafka writes, stores and reads every byte.
const DefaultByteCost = 1e-9

// Model is an app's traffic, ready for predictions: items (services and
// mains) and the edges between them with their rates and costs.
type Model struct {
	// Names are the app's services and mains, sorted; Mains marks mains.
	Names []string
	Mains map[string]bool
	// Edges are the measured caller -> service edges, sorted.
	Edges []Edge
	// CPU is the cores each service's handlers used (self time, nested
	// calls excluded), by name.
	CPU map[string]float64
	// Seconds is the length of the recording.
	Seconds float64
	// RemoteCPU is the CPU seconds per remote call not spent in handlers
	// (0 when the profile has no CPU times).
	RemoteCPU float64
	// ByteCost prices a byte (seconds per byte).
	ByteCost float64
	// Notes says what the model assumed or left out.
	Notes []string

	index map[string]int
}

// Edge is the traffic from one caller to one service, over all methods.
type Edge struct {
	From, To string
	// Calls counts the calls in the recording; Rate is per second.
	Calls, Rate float64
	// Overhead is the mean remote overhead per call (seconds), Bytes the
	// mean bytes of a remote call (request and reply).
	Overhead, Bytes float64
	// Measured is false when no call of the edge went over Kafka: its
	// overhead and size are the profile's means.
	Measured bool
}

// Cost is the edge's cost per second when it crosses nodes.
func (m *Model) edgeCost(e Edge) float64 {
	return e.Rate * (e.Overhead + m.RemoteCPU + e.Bytes*m.ByteCost)
}

// NewModel builds the model of an app with the given services and mains
// from a profile. byteCost < 0 selects DefaultByteCost.
func NewModel(services, mains []string, p *profile.Profile, byteCost float64) (*Model, error) {
	if byteCost < 0 {
		byteCost = DefaultByteCost
	}
	m := &Model{Mains: map[string]bool{}, CPU: map[string]float64{}, Seconds: p.Seconds, ByteCost: byteCost, index: map[string]int{}}
	m.Names = append(append(m.Names, services...), mains...)
	sort.Strings(m.Names)
	for i, n := range m.Names {
		m.index[n] = i
	}
	for _, n := range mains {
		m.Mains[n] = true
	}
	if p.Seconds <= 0 {
		return nil, fmt.Errorf("the profile covers no time (seconds is 0): record traffic with a node's -profile flag")
	}

	type hk struct{ service, method string }
	handler := map[hk]profile.Handler{}
	var handlerSeconds float64
	for _, h := range p.Handlers {
		handler[hk{h.Service, h.Method}] = h
	}
	// Mean measured overhead and size, over every remote call.
	var remoteCalls, overheadSum, bytesSum float64
	overheadOf := func(c profile.Call) float64 {
		o := c.RemoteSeconds / float64(c.Remote)
		if h, ok := handler[hk{c.Service, c.Method}]; ok && !c.Oneway && h.Calls > 0 {
			o -= h.Seconds / float64(h.Calls)
		}
		return max(o, 0)
	}
	for _, c := range p.Calls {
		if c.Remote > 0 {
			remoteCalls += float64(c.Remote)
			overheadSum += overheadOf(c) * float64(c.Remote)
			bytesSum += float64(c.RequestBytes + c.ReplyBytes)
		}
	}
	meanOverhead, meanBytes := DefaultOverhead, 0.0
	if remoteCalls > 0 {
		meanOverhead, meanBytes = overheadSum/remoteCalls, bytesSum/remoteCalls
	} else {
		m.Notes = append(m.Notes, fmt.Sprintf("no call in the profile went over Kafka: remote overhead assumed %s per call", seconds(DefaultOverhead)))
	}

	type ek struct{ from, to string }
	edges := map[ek]*Edge{}
	unknown := map[string]bool{}
	var unattributed int64
	nested := map[string]float64{} // caller-side time of the calls each service makes
	for _, c := range p.Calls {
		if c.Caller == "" {
			unattributed += c.Calls
			continue
		}
		for _, n := range []string{c.Caller, c.Service} {
			if _, ok := m.index[n]; !ok {
				unknown[n] = true
			}
		}
		if unknown[c.Caller] || unknown[c.Service] {
			continue
		}
		nested[c.Caller] += c.RemoteSeconds + c.LocalSeconds
		e := edges[ek{c.Caller, c.Service}]
		if e == nil {
			e = &Edge{From: c.Caller, To: c.Service}
			edges[ek{c.Caller, c.Service}] = e
		}
		overhead, size := meanOverhead, meanBytes
		if c.Remote > 0 {
			overhead, size = overheadOf(c), float64(c.RequestBytes+c.ReplyBytes)/float64(c.Remote)
			e.Measured = true
		}
		n := float64(c.Calls)
		// Running means weighted by calls.
		e.Overhead = (e.Overhead*e.Calls + overhead*n) / max(e.Calls+n, 1)
		e.Bytes = (e.Bytes*e.Calls + size*n) / max(e.Calls+n, 1)
		e.Calls += n
	}
	for _, e := range edges {
		e.Rate = e.Calls / p.Seconds
		m.Edges = append(m.Edges, *e)
	}
	sort.Slice(m.Edges, func(i, j int) bool {
		if m.Edges[i].From != m.Edges[j].From {
			return m.Edges[i].From < m.Edges[j].From
		}
		return m.Edges[i].To < m.Edges[j].To
	})
	for _, h := range p.Handlers {
		if _, ok := m.index[h.Service]; ok {
			m.CPU[h.Service] += h.Seconds
			handlerSeconds += h.Seconds
		}
	}
	var self float64
	for s, t := range m.CPU {
		t = max(t-nested[s], 0)
		self += t
		m.CPU[s] = t / p.Seconds
	}
	var cpu float64
	for _, w := range p.Windows {
		cpu += w.CPUSeconds
	}
	if cpu > 0 && remoteCalls > 0 {
		m.RemoteCPU = max(cpu-self, 0) / remoteCalls
	}
	if unattributed > 0 {
		m.Notes = append(m.Notes, fmt.Sprintf("%d calls were made by no known service or main (a context not derived from a main's): left out", unattributed))
	}
	for _, n := range sortedKeys(unknown) {
		m.Notes = append(m.Notes, fmt.Sprintf("the profile names %q, which is not a service or main of the app: its calls are left out", n))
	}
	return m, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// seconds formats a duration in seconds for people.
func seconds(s float64) string {
	switch {
	case s == 0:
		return "0"
	case s < 1e-3:
		return fmt.Sprintf("%.1f µs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.2f ms", s*1e3)
	}
	return fmt.Sprintf("%.2f s", s)
}

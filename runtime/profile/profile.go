// Package profile is the traffic profile that node binaries record and
// 'molgen advise' reads: for each caller and callee method, how many calls
// were made, how many went over Kafka, their bytes and times, and for each
// method how long its handler ran. It is plain JSON, versioned, and links
// nothing of the runtime, so the generator side reads it too.
//
// A node binary started with -profile FILE (env MOLGEN_PROFILE) writes its
// profile when it exits after draining and whenever it receives SIGUSR1;
// Merge combines the files of every node and instance of one run into one.
//
//	{
//	  "molgen_profile": 1,
//	  "app": "blog",
//	  "placement_file": "microservices.yaml",
//	  "placement": "app: blog\nnodes: ...",
//	  "seconds": 12.5,
//	  "windows": [{"node": "posts", "instance": "posts-1", "start": "...", "end": "...", "cpu_seconds": 0.4}],
//	  "calls": [{"caller": "posts", "service": "users", "method": "Get", "calls": 500, "remote": 500, ...}],
//	  "handlers": [{"service": "users", "method": "Get", "calls": 500, "seconds": 0.02}]
//	}
package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Version is the profile format's version; readers refuse other versions.
const Version = 1

// Profile is the traffic of one run of an app: one node instance's, or the
// merge of several.
type Profile struct {
	// Version is always Version.
	Version int `json:"molgen_profile"`
	// App is the placement's app name ("" for a monolith without one).
	App string `json:"app"`
	// PlacementFile names the placement the nodes ran with, for messages;
	// Placement is its YAML (empty: the monolith). Traffic is only
	// comparable under one placement, so Merge refuses to mix them.
	PlacementFile string `json:"placement_file,omitempty"`
	Placement     string `json:"placement,omitempty"`
	// Seconds is how long the recording covers: the length of the union of
	// the windows (concurrent windows overlap, later ones add up). Rates
	// are counts divided by it.
	Seconds float64 `json:"seconds"`
	// Windows lists the node instances that recorded, sorted.
	Windows []Window `json:"windows"`
	// Calls lists the traffic per caller and callee method, sorted.
	Calls []Call `json:"calls"`
	// Handlers lists the time spent serving each method, sorted.
	Handlers []Handler `json:"handlers"`
}

// Window is the recording of one node instance.
type Window struct {
	Node     string    `json:"node"`
	Instance string    `json:"instance"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	// CPUSeconds is the process's user+system CPU time over the window
	// (0 where the platform does not say).
	CPUSeconds float64 `json:"cpu_seconds"`
}

// Call is the traffic from one caller to one method, as the caller saw it.
type Call struct {
	// Caller is the service or main that made the calls ("" when unknown:
	// a call made with a context that no main or service marked).
	Caller  string `json:"caller"`
	Service string `json:"service"`
	Method  string `json:"method"`
	Oneway  bool   `json:"oneway,omitempty"`
	// Calls counts every call, Errors those that failed, Remote those that
	// went over Kafka.
	Calls  int64 `json:"calls"`
	Errors int64 `json:"errors"`
	Remote int64 `json:"remote"`
	// RequestBytes and ReplyBytes sum the encoded sizes of the remote
	// calls (local calls encode nothing).
	RequestBytes int64 `json:"request_bytes"`
	ReplyBytes   int64 `json:"reply_bytes"`
	// RemoteSeconds sums the caller-side duration of the remote calls
	// (for a oneway call: until the request was in Kafka); LocalSeconds
	// that of the direct calls.
	RemoteSeconds float64 `json:"remote_seconds"`
	LocalSeconds  float64 `json:"local_seconds"`
}

// Handler is the time one method's implementation ran, nested calls
// included, over every call it served (remote requests and direct calls).
type Handler struct {
	Service string  `json:"service"`
	Method  string  `json:"method"`
	Calls   int64   `json:"calls"`
	Errors  int64   `json:"errors"`
	Seconds float64 `json:"seconds"`
}

// Sort puts windows, calls and handlers in their canonical order.
func (p *Profile) Sort() {
	sort.Slice(p.Windows, func(i, j int) bool {
		a, b := p.Windows[i], p.Windows[j]
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		if a.Instance != b.Instance {
			return a.Instance < b.Instance
		}
		return a.Start.Before(b.Start)
	})
	sort.Slice(p.Calls, func(i, j int) bool {
		a, b := p.Calls[i], p.Calls[j]
		if a.Caller != b.Caller {
			return a.Caller < b.Caller
		}
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.Method < b.Method
	})
	sort.Slice(p.Handlers, func(i, j int) bool {
		a, b := p.Handlers[i], p.Handlers[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.Method < b.Method
	})
}

// Encode returns the profile as indented JSON, sorted.
func (p *Profile) Encode() ([]byte, error) {
	p.Sort()
	if p.Calls == nil {
		p.Calls = []Call{}
	}
	if p.Handlers == nil {
		p.Handlers = []Handler{}
	}
	if p.Windows == nil {
		p.Windows = []Window{}
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// WriteFile writes the profile to path atomically (a temporary file in the
// same directory, renamed), so a reader never sees half a profile.
func (p *Profile) WriteFile(path string) error {
	data, err := p.Encode()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// Decode reads a profile; file names it in errors.
func Decode(file string, data []byte) (*Profile, error) {
	var p Profile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se.Offset)
			return nil, fmt.Errorf("%s:%d:%d: not a molgen traffic profile: %v", file, line, col, err)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			line, col := position(data, te.Offset)
			return nil, fmt.Errorf("%s:%d:%d: not a molgen traffic profile: %v", file, line, col, err)
		}
		return nil, fmt.Errorf("%s: not a molgen traffic profile: %v", file, err)
	}
	if p.Version != Version {
		return nil, fmt.Errorf("%s: molgen_profile version %d, want %d (record it again with this molgen's node binaries)", file, p.Version, Version)
	}
	if p.Seconds < 0 {
		return nil, fmt.Errorf("%s: seconds is negative", file)
	}
	for _, c := range p.Calls {
		if c.Service == "" || c.Method == "" || c.Calls < 0 || c.Remote < 0 || c.Remote > c.Calls || c.Errors < 0 {
			return nil, fmt.Errorf("%s: call %s -> %s.%s: counts out of range or names missing", file, c.Caller, c.Service, c.Method)
		}
	}
	return &p, nil
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// ReadFile reads and checks a profile file.
func ReadFile(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Decode(path, data)
}

// Merge combines the profiles of the nodes and instances of one run: counts
// and times add up per caller and method, windows are kept, and Seconds is
// the length of the union of the windows. Profiles of different apps or
// recorded under different placements are refused.
func Merge(ps ...*Profile) (*Profile, error) {
	if len(ps) == 0 {
		return nil, errors.New("no profiles to merge")
	}
	out := &Profile{Version: Version, App: ps[0].App, PlacementFile: ps[0].PlacementFile, Placement: ps[0].Placement}
	type callKey struct{ caller, service, method string }
	type handlerKey struct{ service, method string }
	calls := map[callKey]*Call{}
	handlers := map[handlerKey]*Handler{}
	for i, p := range ps {
		if p.App != out.App {
			return nil, fmt.Errorf("profile %d is of app %q, profile 1 of app %q", i+1, p.App, out.App)
		}
		if p.Placement != out.Placement {
			return nil, fmt.Errorf("profile %d was recorded under placement %s, profile 1 under a different one (%s): merge only the profiles of one run", i+1, name(p.PlacementFile), name(out.PlacementFile))
		}
		out.Windows = append(out.Windows, p.Windows...)
		for _, c := range p.Calls {
			k := callKey{c.Caller, c.Service, c.Method}
			m := calls[k]
			if m == nil {
				m = &Call{Caller: c.Caller, Service: c.Service, Method: c.Method}
				calls[k] = m
			}
			m.Oneway = m.Oneway || c.Oneway
			m.Calls += c.Calls
			m.Errors += c.Errors
			m.Remote += c.Remote
			m.RequestBytes += c.RequestBytes
			m.ReplyBytes += c.ReplyBytes
			m.RemoteSeconds += c.RemoteSeconds
			m.LocalSeconds += c.LocalSeconds
		}
		for _, h := range p.Handlers {
			k := handlerKey{h.Service, h.Method}
			m := handlers[k]
			if m == nil {
				m = &Handler{Service: h.Service, Method: h.Method}
				handlers[k] = m
			}
			m.Calls += h.Calls
			m.Errors += h.Errors
			m.Seconds += h.Seconds
		}
	}
	for _, c := range calls {
		out.Calls = append(out.Calls, *c)
	}
	for _, h := range handlers {
		out.Handlers = append(out.Handlers, *h)
	}
	out.Seconds = unionSeconds(out.Windows)
	if out.Seconds == 0 { // profiles without windows (written by hand)
		for _, p := range ps {
			out.Seconds = max(out.Seconds, p.Seconds)
		}
	}
	out.Sort()
	return out, nil
}

func name(file string) string {
	if file == "" {
		return "(none: the monolith)"
	}
	return file
}

// unionSeconds is the total length covered by the windows.
func unionSeconds(ws []Window) float64 {
	type span struct{ a, b time.Time }
	var spans []span
	for _, w := range ws {
		if w.End.After(w.Start) {
			spans = append(spans, span{w.Start, w.End})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].a.Before(spans[j].a) })
	var total time.Duration
	var cur span
	for i, s := range spans {
		switch {
		case i == 0:
			cur = s
		case s.a.After(cur.b):
			total += cur.b.Sub(cur.a)
			cur = s
		case s.b.After(cur.b):
			cur.b = s.b
		}
	}
	if len(spans) > 0 {
		total += cur.b.Sub(cur.a)
	}
	return total.Seconds()
}

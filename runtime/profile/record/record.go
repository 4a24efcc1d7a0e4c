// Package record is the runtime.Observer that records a node's traffic
// into a profile.Profile: per caller and callee method, calls, errors,
// bytes and caller-side time; per method, handler time. Node binaries
// install it for -profile; library users can too:
//
//	rec := record.New()
//	n, err := runtime.NewNode(runtime.Options{Observer: rec, ...})
//	...
//	p := rec.Profile(record.Run{Node: n.Name(), Instance: n.Instance()})
//
// Recording costs a lock-free map lookup and a few atomic adds per call;
// counters are created once per caller and method.
package record

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/molgen/molgen/runtime"
	"github.com/molgen/molgen/runtime/profile"
)

// Recorder counts the calls a node makes and serves. Install it as
// Options.Observer (alone or through runtime.MultiObserver).
type Recorder struct {
	start    time.Time
	cpuStart time.Duration

	calls    sync.Map // callKey -> *callCounters
	handlers sync.Map // handlerKey -> *handlerCounters
}

type callKey struct{ caller, service, method string }
type handlerKey struct{ service, method string }

type callCounters struct {
	oneway                   bool
	calls, errors, remote    atomic.Int64
	requestBytes, replyBytes atomic.Int64
	remoteNanos, localNanos  atomic.Int64
}

type handlerCounters struct {
	calls, errors, nanos atomic.Int64
}

// New returns a Recorder whose window starts now.
func New() *Recorder {
	return &Recorder{
		start:    time.Now(),
		cpuStart: processCPU(),
	}
}

// Start implements runtime.Observer; recording happens in End.
func (r *Recorder) Start(ctx context.Context, _ *runtime.CallInfo) context.Context { return ctx }

// End implements runtime.Observer: it adds the finished call to the counters.
func (r *Recorder) End(_ context.Context, c *runtime.CallInfo, err error) {
	failed := int64(0)
	if err != nil {
		failed = 1
	}
	if c.Server {
		// A remote request served here: its handler's time. Caller is the
		// calling node instance, not a service; the caller's side records
		// the call itself.
		h := r.handler(handlerKey{c.Service, c.Method})
		h.calls.Add(1)
		h.errors.Add(failed)
		h.nanos.Add(int64(c.Duration))
		return
	}
	k := r.call(callKey{c.Caller, c.Service, c.Method}, c.Oneway)
	k.calls.Add(1)
	k.errors.Add(failed)
	if c.Remote {
		k.remote.Add(1)
		k.requestBytes.Add(int64(c.RequestBytes))
		k.replyBytes.Add(int64(c.ReplyBytes))
		k.remoteNanos.Add(int64(c.Duration))
		return
	}
	k.localNanos.Add(int64(c.Duration))
	// A direct call runs the handler on the caller's goroutine: its
	// duration is the handler's time.
	h := r.handler(handlerKey{c.Service, c.Method})
	h.calls.Add(1)
	h.errors.Add(failed)
	h.nanos.Add(int64(c.Duration))
}

func (r *Recorder) call(k callKey, oneway bool) *callCounters {
	if c, ok := r.calls.Load(k); ok {
		return c.(*callCounters)
	}
	c, _ := r.calls.LoadOrStore(k, &callCounters{oneway: oneway})
	return c.(*callCounters)
}

func (r *Recorder) handler(k handlerKey) *handlerCounters {
	if h, ok := r.handlers.Load(k); ok {
		return h.(*handlerCounters)
	}
	h, _ := r.handlers.LoadOrStore(k, &handlerCounters{})
	return h.(*handlerCounters)
}

// Run names what a profile was recorded on: a node instance of an app,
// under a placement.
type Run struct {
	Node, Instance string
	App            string
	// PlacementFile and Placement are the placement's file name and YAML
	// (both empty for the monolith).
	PlacementFile, Placement string
}

// Profile returns what was recorded so far as the profile of one node
// instance. The window runs from New to now; recording goes on.
func (r *Recorder) Profile(run Run) *profile.Profile {
	now := time.Now()
	p := &profile.Profile{
		Version: profile.Version, Seconds: now.Sub(r.start).Seconds(),
		App: run.App, PlacementFile: run.PlacementFile, Placement: run.Placement,
	}
	p.Windows = []profile.Window{{
		Node: run.Node, Instance: run.Instance, Start: r.start.UTC(), End: now.UTC(),
		CPUSeconds: (processCPU() - r.cpuStart).Seconds(),
	}}
	for key, value := range r.calls.Range {
		k, c := key.(callKey), value.(*callCounters)
		p.Calls = append(p.Calls, profile.Call{
			Caller: k.caller, Service: k.service, Method: k.method, Oneway: c.oneway,
			Calls: c.calls.Load(), Errors: c.errors.Load(), Remote: c.remote.Load(),
			RequestBytes: c.requestBytes.Load(), ReplyBytes: c.replyBytes.Load(),
			RemoteSeconds: time.Duration(c.remoteNanos.Load()).Seconds(),
			LocalSeconds:  time.Duration(c.localNanos.Load()).Seconds(),
		})
	}
	for key, value := range r.handlers.Range {
		k, h := key.(handlerKey), value.(*handlerCounters)
		p.Handlers = append(p.Handlers, profile.Handler{
			Service: k.service, Method: k.method,
			Calls: h.calls.Load(), Errors: h.errors.Load(),
			Seconds: time.Duration(h.nanos.Load()).Seconds(),
		})
	}
	p.Sort()
	return p
}

package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/molgen/molgen/internal/testsvc"
	molgen "github.com/molgen/molgen/runtime"
)

// Error kinds of a failed call, the columns of the table.
const (
	kindDeadline   = "deadline"
	kindNoInstance = "no instance"
	kindClosed     = "closed"
	kindTooLarge   = "too large"
	kindOther      = "other"
)

var kinds = []string{kindDeadline, kindNoInstance, kindClosed, kindTooLarge, kindOther}

// kindOf sorts a call's error into its kind.
func kindOf(err error) string {
	switch {
	case errors.Is(err, molgen.ErrNoInstance):
		return kindNoInstance
	case errors.Is(err, molgen.ErrTooLarge):
		return kindTooLarge
	case errors.Is(err, molgen.ErrClosed):
		return kindClosed
	case errors.Is(err, context.DeadlineExceeded):
		return kindDeadline
	default:
		return kindOther
	}
}

// whereBase is the duration every Where call of the load asks for; the
// call's id is added to it in nanoseconds, so that each Where request in
// Kafka names its call (its value is the duration).
const whereBase = 20 * time.Millisecond

// call is one call of the load (or of a warm-up).
type call struct {
	id         int
	method     string // "Concat" or "Where"
	start, end time.Time
	timeout    time.Duration
	err        error
	got        string // the result
	kind       string // "" when it succeeded
	wrong      string // a result that is not the one expected
	warmup     bool   // not counted in the table
	extra      bool   // a deliberate call of the scenario (e.g. oversized), reported apart
	label      string // what an extra call was
}

// concatArgs returns the arguments of Concat call id of scenario prefix:
// unique, so that a request read back from Kafka names its call.
func concatArgs(prefix string, id int) (a, b, c string) {
	s := prefix + "." + strconv.Itoa(id)
	return s + ".a", s + ".b", s + ".c"
}

// recorder keeps every call of a scenario.
type recorder struct {
	prefix string
	mu     sync.Mutex
	calls  map[int]*call
	nextID atomic.Int64
	// instances is the set of instance names Where may return.
	instMu    sync.Mutex
	instances map[string]bool
}

func newRecorder(prefix string) *recorder {
	return &recorder{prefix: prefix, calls: map[int]*call{}, instances: map[string]bool{}}
}

// allow adds an instance name Where may answer with.
func (r *recorder) allow(names ...string) {
	r.instMu.Lock()
	defer r.instMu.Unlock()
	for _, n := range names {
		r.instances[n] = true
	}
}

func (r *recorder) allowed(name string) bool {
	r.instMu.Lock()
	defer r.instMu.Unlock()
	return r.instances[name]
}

// do makes one call of method with timeout, checks its result and records it.
func (r *recorder) do(calc testsvc.Calc, method string, timeout time.Duration, warmup bool) (c *call) {
	c = &call{id: int(r.nextID.Add(1)), method: method, timeout: timeout, warmup: warmup}
	r.mu.Lock()
	r.calls[c.id] = c
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c.start = time.Now()
	defer func() {
		// A panic in the client is a failed call, not the end of the suite
		// (whose cleanup stops Kafka).
		if p := recover(); p != nil {
			c.end, c.err, c.kind = time.Now(), fmt.Errorf("panic in the call: %v", p), kindOther
		}
	}()
	switch method {
	case "Concat":
		a, b, x := concatArgs(r.prefix, c.id)
		got, err := calc.Concat(ctx, a, b, x)
		c.end, c.err, c.got = time.Now(), err, got
		if want := a + "|" + b + "|" + x; err == nil && got != want {
			c.wrong = fmt.Sprintf("Concat = %q, want %q", got, want)
		}
	case "Where":
		got, err := calc.Where(ctx, whereBase+time.Duration(c.id))
		c.end, c.err, c.got = time.Now(), err, got
		if err == nil && !r.allowed(got) {
			c.wrong = fmt.Sprintf("Where = %q: no such instance", got)
		}
	default:
		panic("unknown method " + method)
	}
	if c.err != nil {
		c.kind = kindOf(c.err)
	}
	return c
}

// record adds a call made elsewhere (an oversized call, say).
func (r *recorder) record(c *call) {
	c.id = int(r.nextID.Add(1))
	r.mu.Lock()
	r.calls[c.id] = c
	r.mu.Unlock()
}

// snapshot returns the calls recorded so far.
func (r *recorder) snapshot() []*call {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*call, 0, len(r.calls))
	for _, c := range r.calls {
		out = append(out, c)
	}
	return out
}

// loadGen runs workers that call Concat (three in four calls) and Where
// until stopped, each call with a deadline.
type loadGen struct {
	rec  *recorder
	stop chan struct{}
	wg   sync.WaitGroup
}

// maxCallsPerWorker bounds a worker's loop, whatever happens to time.
const maxCallsPerWorker = 1 << 20

func startLoad(rec *recorder, calc testsvc.Calc, workers int, timeout time.Duration) *loadGen {
	return startPacedLoad(rec, calc, workers, timeout, 0)
}

// startPacedLoad is startLoad whose workers start a call at most every
// every (0: at once after the previous one): a load that leaves the
// machine room, whose calls still wait for each other when they are slow.
func startPacedLoad(rec *recorder, calc testsvc.Calc, workers int, timeout, every time.Duration) *loadGen {
	l := &loadGen{rec: rec, stop: make(chan struct{})}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; i < maxCallsPerWorker; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				method := "Concat"
				if (i+w)%4 == 3 {
					method = "Where"
				}
				c := rec.do(calc, method, timeout, false)
				pause := every - c.end.Sub(c.start)
				if c.err != nil && c.end.Sub(c.start) < 50*time.Millisecond {
					// A call that fails at once would spin: pace it.
					pause = max(pause, 50*time.Millisecond)
				}
				if pause > 0 {
					select {
					case <-l.stop:
						return
					case <-time.After(pause):
					}
				}
			}
		}()
	}
	return l
}

// finish stops the workers and waits for their calls in flight (each has
// a deadline, so this is bounded).
func (l *loadGen) finish() {
	close(l.stop)
	l.wg.Wait()
}

// warmUp calls Where until every one of names has answered, within limit.
func warmUp(rec *recorder, calc testsvc.Calc, limit time.Duration, names ...string) error {
	seen := map[string]bool{}
	deadline := time.Now().Add(limit)
	var last error
	for i := 0; i < 10000 && time.Now().Before(deadline); i++ {
		c := rec.do(calc, "Where", 5*time.Second, true)
		if c.err != nil {
			last = c.err
			time.Sleep(50 * time.Millisecond)
			continue
		}
		seen[c.got] = true
		done := true
		for _, n := range names {
			done = done && seen[n]
		}
		if done {
			return nil
		}
	}
	return fmt.Errorf("within %v, only %v of %v answered (last error: %v)", limit, keys(seen), names, last)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

package testsvc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/molgen/molgen/runtime"
)

var (
	// ErrNegative is returned by Calc.Sqrt for negative input.
	ErrNegative = errors.New("testsvc: negative input")
	// ErrWrapped is returned wrapped by Calc.Fail.
	ErrWrapped = errors.New("testsvc: deep failure")
)

// Calc is a small service for benchmarks and runtime behaviour.
//
//molgen:service
type Calc interface {
	// Add is the benchmark method.
	Add(ctx context.Context, a, b int) (int, error)
	// Sqrt fails with ErrNegative.
	Sqrt(ctx context.Context, x int) (int, error)
	// Sleep waits for d or until ctx is done.
	//
	//molgen:timeout 50ms
	Sleep(ctx context.Context, d time.Duration) error
	// Panic panics with msg.
	Panic(ctx context.Context, msg string) error
	// Fail returns ErrWrapped wrapped depth times.
	Fail(ctx context.Context, depth int) error
	// Count adds one to a counter; callers do not wait.
	//
	//molgen:oneway
	Count(ctx context.Context) error
	// Total returns the counter.
	//
	//molgen:retry 2
	Total(ctx context.Context) (int64, error)
	// Where waits for d, then names the instance that ran it ($MOLGEN_INSTANCE).
	Where(ctx context.Context, d time.Duration) (string, error)
	// Runs returns how many Where calls this instance started.
	Runs(ctx context.Context) (int64, error)
	// Broken returns an error value whose Error method panics.
	Broken(ctx context.Context) error
	// Slow waits for d and returns s; callers resend it when no reply came.
	//
	//molgen:retry 3
	Slow(ctx context.Context, d time.Duration, s string) (string, error)
	// Concat joins its arguments in order: several arguments of one type,
	// so that a codec reading them in another order is caught.
	Concat(ctx context.Context, a, b, c string) (string, error)
	// Split returns the two halves of s around its first "|", in order.
	Split(ctx context.Context, s string) (before, after string, err error)
	// Deadline returns the deadline of the context the implementation ran
	// with (the zero time when it had none).
	Deadline(ctx context.Context) (time.Time, error)
	// Hold waits for d (or until ctx is done) before it counts; callers do
	// not wait for it.
	//
	//molgen:oneway
	Hold(ctx context.Context, d time.Duration) error
	// Echo returns f without a leading "reply:"; Fragile's codec panics on
	// chosen values.
	Echo(ctx context.Context, f Fragile) (Fragile, error)
	// Tally returns how many values it was given: a request of many
	// large structs (the hostile-input suite sends a million empty
	// ones).
	Tally(ctx context.Context, items []Kinds) (int, error)
	// Depth returns how deep t's Left chain goes (the hostile-input suite
	// sends chains far deeper than the codec takes).
	Depth(ctx context.Context, t *Tree) (int, error)
}

// Fragile is a BinaryMarshaler whose methods panic on chosen values, to
// test that panics in user codecs become errors on every side of a call.
type Fragile struct{ S string }

// Values of Fragile whose MarshalBinary or UnmarshalBinary panics.
const (
	PanicOnMarshal   = "panic-on-marshal"
	PanicOnUnmarshal = "panic-on-unmarshal"
)

// MarshalBinary panics when f.S is PanicOnMarshal.
func (f Fragile) MarshalBinary() ([]byte, error) {
	if f.S == PanicOnMarshal {
		panic("Fragile.MarshalBinary")
	}
	return []byte(f.S), nil
}

// UnmarshalBinary panics when the bytes are PanicOnUnmarshal.
func (f *Fragile) UnmarshalBinary(b []byte) error {
	if string(b) == PanicOnUnmarshal {
		panic("Fragile.UnmarshalBinary")
	}
	f.S = string(b)
	return nil
}

// CalcImpl is the Calc implementation; tests use its counters.
type CalcImpl struct {
	Counter atomic.Int64
	Sleeps  atomic.Int64 // Sleep calls that started
	Wheres  atomic.Int64 // Where calls that started
	Slows   atomic.Int64 // Slow calls that started
	Holds   atomic.Int64 // Hold calls that finished
	// Running and MaxRunning count Where calls running now and at most.
	Running, MaxRunning atomic.Int64
	Instance            string

	idsMu sync.Mutex
	ids   []string // runtime.CallID of each Where call, in order
}

// CallIDs returns runtime.CallID of each Where call this implementation
// ran, in order.
func (c *CalcImpl) CallIDs() []string {
	c.idsMu.Lock()
	defer c.idsMu.Unlock()
	return slices.Clone(c.ids)
}

// NewCalc returns a Calc.
//
//molgen:constructor
func NewCalc() Calc { return &CalcImpl{Instance: os.Getenv("MOLGEN_INSTANCE")} }

// Where waits for d, then returns the instance's name.
func (c *CalcImpl) Where(ctx context.Context, d time.Duration) (string, error) {
	c.idsMu.Lock()
	c.ids = append(c.ids, runtime.CallID(ctx))
	c.idsMu.Unlock()
	c.Wheres.Add(1)
	running := c.Running.Add(1)
	defer c.Running.Add(-1)
	for {
		max := c.MaxRunning.Load()
		if running <= max || c.MaxRunning.CompareAndSwap(max, running) {
			break
		}
	}
	select {
	case <-time.After(d):
		return c.Instance, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// brokenError is a nil *brokenError returned as an error: the classic mistake.
type brokenError struct{ msg string }

func (e *brokenError) Error() string { return e.msg }

// Broken returns a typed nil error.
func (c *CalcImpl) Broken(ctx context.Context) error {
	var e *brokenError
	return e
}

// Slow waits for d and returns s.
func (c *CalcImpl) Slow(ctx context.Context, d time.Duration, s string) (string, error) {
	c.Slows.Add(1)
	select {
	case <-time.After(d):
		return s, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Runs returns how many Where calls started here.
func (c *CalcImpl) Runs(ctx context.Context) (int64, error) { return c.Wheres.Load(), nil }

// Add returns a+b.
func (c *CalcImpl) Add(ctx context.Context, a, b int) (int, error) { return a + b, nil }

// Sqrt returns the integer square root of x.
func (c *CalcImpl) Sqrt(ctx context.Context, x int) (int, error) {
	if x < 0 {
		return 0, fmt.Errorf("sqrt(%d): %w", x, ErrNegative)
	}
	r := 0
	for (r+1)*(r+1) <= x {
		r++
	}
	return r, nil
}

// Sleep waits for d or until ctx is done.
func (c *CalcImpl) Sleep(ctx context.Context, d time.Duration) error {
	c.Sleeps.Add(1)
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Concat joins a, b and c with "|".
func (c *CalcImpl) Concat(ctx context.Context, a, b, x string) (string, error) {
	return a + "|" + b + "|" + x, nil
}

// Split cuts s at its first "|".
func (c *CalcImpl) Split(ctx context.Context, s string) (string, string, error) {
	before, after, _ := strings.Cut(s, "|")
	return before, after, nil
}

// Deadline returns ctx's deadline.
func (c *CalcImpl) Deadline(ctx context.Context) (time.Time, error) {
	d, _ := ctx.Deadline()
	return d, nil
}

// Hold waits for d, then counts in Holds.
func (c *CalcImpl) Hold(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	c.Holds.Add(1)
	return nil
}

// Echo returns f without a leading "reply:", so that a caller can choose a
// reply whose encoding or decoding panics.
func (c *CalcImpl) Echo(ctx context.Context, f Fragile) (Fragile, error) {
	return Fragile{S: strings.TrimPrefix(f.S, "reply:")}, nil
}

// Tally returns len(items).
func (c *CalcImpl) Tally(ctx context.Context, items []Kinds) (int, error) { return len(items), nil }

// Depth returns the length of t's Left chain.
func (c *CalcImpl) Depth(ctx context.Context, t *Tree) (int, error) {
	n := 0
	for ; t != nil; t = t.Left {
		n++
	}
	return n, nil
}

// Panic panics.
func (c *CalcImpl) Panic(ctx context.Context, msg string) error { panic(msg) }

// Fail returns ErrWrapped wrapped depth times.
func (c *CalcImpl) Fail(ctx context.Context, depth int) error {
	err := ErrWrapped
	for i := 0; i < depth; i++ {
		err = fmt.Errorf("layer %d: %w", i, err)
	}
	return err
}

// Count adds one.
func (c *CalcImpl) Count(ctx context.Context) error { c.Counter.Add(1); return nil }

// Total returns the count.
func (c *CalcImpl) Total(ctx context.Context) (int64, error) { return c.Counter.Load(), nil }

// Relay calls Calc, to test errors across several hops.
//
//molgen:service
type Relay interface {
	// Fail calls Calc.Fail and wraps its error.
	Fail(ctx context.Context, depth int) error
	// Sqrt calls Calc.Sqrt and wraps its error.
	Sqrt(ctx context.Context, x int) (int, error)
	// Later waits for d, then calls Calc.Sqrt.
	Later(ctx context.Context, d time.Duration, x int) (int, error)
}

type relay struct{ calc Calc }

// NewRelay returns a Relay in front of c.
//
//molgen:constructor
func NewRelay(c Calc) Relay { return relay{c} }

func (r relay) Fail(ctx context.Context, depth int) error {
	if err := r.calc.Fail(ctx, depth); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	return nil
}

func (r relay) Later(ctx context.Context, d time.Duration, x int) (int, error) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return r.calc.Sqrt(ctx, x)
}

func (r relay) Sqrt(ctx context.Context, x int) (int, error) {
	v, err := r.calc.Sqrt(ctx, x)
	if err != nil {
		return 0, fmt.Errorf("relay: %w", err)
	}
	return v, nil
}

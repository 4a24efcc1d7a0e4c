package testsvc

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/runtime"
)

// TestSamePlacementParity guards the promise of DESIGN.md §7, "Same
// behaviour on every placement": one scenario (plain results, service
// errors wrapped and not, a panic, a deadline that expires during a call,
// a method's timeout, calls made with an already canceled or expired
// context, oneway calls) is run through the generated clients on three
// placements, and the transcripts (results, error texts and the errors.Is
// identities that matter) must be the same line for line:
//
//   - all-local: a monolith (zero runtime.Options): every call is direct;
//   - all-remote: one node with prefer_local off: every call crosses Kafka;
//   - split: relay on node front, calc and codec on node back, the test
//     calling from front: test→relay is direct, relay→calc crosses Kafka.
//
// Each transcript is also held to the contract (parityContract): a
// deadline or cancellation reads "molgen: <service>.<Method>: <context
// error>" and matches the context error; a call with a context that is
// already done fails without running the implementation; a oneway call
// returns at once and never returns its implementation's error.
//
// Failures are reported per transcript line, naming each placement whose
// text differs from all-local's or from the contract.
func TestSamePlacementParity(t *testing.T) {
	placements := []struct {
		name  string
		start func(t *testing.T) parityClients
	}{
		{"all-local", parityAllLocal},
		{"all-remote", parityAllRemote},
		{"split", paritySplit},
	}
	transcripts := make([][]string, len(placements))
	// The placements run side by side: each has its own nodes, app name
	// (topics, groups) and implementation, and the scenario's timing
	// checks have wide margins.
	t.Run("placements", func(t *testing.T) {
		for i, p := range placements {
			t.Run(p.name, func(t *testing.T) {
				t.Parallel()
				transcripts[i] = parityScenario(t, p.start(t))
			})
		}
	})
	if t.Failed() {
		return // a node did not start; the transcripts are incomplete
	}

	want := parityContract()
	for i, p := range placements {
		if len(transcripts[i]) != len(want) {
			t.Fatalf("%s: the transcript has %d lines, the contract %d:\n%s", p.name, len(transcripts[i]), len(want), strings.Join(transcripts[i], "\n"))
		}
	}
	bad := 0
	for line := range want {
		label, wantOut := splitLine(want[line])
		local := transcripts[0][line]
		agree, keep := true, true
		for i := range placements {
			agree = agree && transcripts[i][line] == local
			keep = keep && transcripts[i][line] == want[line]
		}
		if agree && keep {
			continue
		}
		bad++
		var b strings.Builder
		fmt.Fprintf(&b, "line %d, %s:", line+1, label)
		for i, p := range placements {
			gotLabel, got := splitLine(transcripts[i][line])
			if gotLabel != label {
				got = transcripts[i][line] // another step: show it whole
			}
			var notes []string
			if i > 0 && transcripts[i][line] != local {
				notes = append(notes, "differs from all-local")
			}
			if transcripts[i][line] != want[line] {
				notes = append(notes, "breaks the contract")
			}
			note := ""
			if len(notes) > 0 {
				note = "   <- " + strings.Join(notes, ", ")
			}
			fmt.Fprintf(&b, "\n    %-10s  %s%s", p.name, got, note)
		}
		fmt.Fprintf(&b, "\n    %-10s  %s", "contract", wantOut)
		t.Error(b.String())
	}
	if bad > 0 {
		t.Logf("%d of %d transcript lines differ between placements or from the contract", bad, len(want))
	}
}

// parityClients are what the scenario calls through, and the
// implementation behind calc (for its counters).
type parityClients struct {
	calc  Calc
	relay Relay
	codec Codec
	impl  *CalcImpl
}

// errCountRefused is returned by the oneway Count of onewayFails.
var errCountRefused = errors.New("testsvc: count refused")

// onewayFails is a CalcImpl whose oneway Count counts and then fails: a
// oneway caller must never see that error.
type onewayFails struct{ *CalcImpl }

func (o onewayFails) Count(ctx context.Context) error {
	o.CalcImpl.Count(ctx)
	return errCountRefused
}

// parityHost registers on n the services of names ("calc", "relay",
// "codec"); calc is impl, with a oneway Count that fails.
func parityHost(impl *CalcImpl, names ...string) func(*runtime.Node) error {
	return func(n *runtime.Node) error {
		for _, name := range names {
			var err error
			switch name {
			case "calc":
				err = RegisterCalc(n, onewayFails{impl})
			case "relay":
				err = RegisterRelay(n, NewRelay(NewCalcClient(n)))
			case "codec":
				err = RegisterCodec(n, echo{})
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
}

func parityClientsOf(n *runtime.Node, impl *CalcImpl) parityClients {
	return parityClients{calc: NewCalcClient(n), relay: NewRelayClient(n), codec: NewCodecClient(n), impl: impl}
}

// parityAllLocal: a monolith hosting calc, relay and codec.
func parityAllLocal(t *testing.T) parityClients {
	n, err := runtime.NewNode(runtime.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	impl := &CalcImpl{}
	if err := parityHost(impl, "calc", "relay", "codec")(n); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return parityClientsOf(n, impl)
}

// parityAllRemote: one node hosting everything with prefer_local off.
func parityAllRemote(t *testing.T) parityClients {
	impl := &CalcImpl{}
	n := remoteNode(t, kafkatest.App("parity-remote"), allRemote, "all", parityHost(impl, "calc", "relay", "codec"))
	return parityClientsOf(n, impl)
}

// paritySplit: relay on front (where the test calls from), calc and codec
// on back.
func paritySplit(t *testing.T) parityClients {
	const yaml = `
app: APP
kafka:
  partitions: 2
nodes:
  front: [relay]
  back: [calc, codec]
`
	app := kafkatest.App("parity-split")
	impl := &CalcImpl{}
	remoteNode(t, app, yaml, "back", parityHost(impl, "calc", "codec"))
	front := remoteNode(t, app, yaml, "front", parityHost(nil, "relay"))
	return parityClientsOf(front, impl)
}

// parityContract is the transcript every placement must produce.
func parityContract() []string {
	return []string{
		`Calc.Add(20, 22) => 42, ok`,
		`Calc.Concat("a", "b", "c") => "a|b|c", ok`,
		`Calc.Split("left|right") => "left", "right", ok`,
		`Codec.Kinds(every kind) => the same value back: true, ok`,
		`Calc.Sqrt(-1) => 0, error "sqrt(-1): testsvc: negative input" is [ErrNegative]`,
		`Calc.Fail(2) => error "layer 1: layer 0: testsvc: deep failure" is [ErrWrapped]`,
		`Relay.Fail(2) => error "relay: layer 1: layer 0: testsvc: deep failure" is [ErrWrapped]`,
		`Relay.Sqrt(-1) => 0, error "relay: sqrt(-1): testsvc: negative input" is [ErrNegative]`,
		`Calc.Panic("kaboom") => error "molgen: calc.Panic panicked: kaboom" is [ErrPanic]`,
		`Calc.Add(1, 1) after the panic => 2, ok`,
		`Calc.Hold(500ms), oneway => ok; returned at once, before the implementation finished: true`,
		`Calc.Count(), oneway, its implementation fails => ok`,
		`Calc.Sleep(10s) under a 200ms deadline => error "molgen: calc.Sleep: context deadline exceeded" is [DeadlineExceeded]; returned within 3s: true`,
		`Calc.Sleep(10s) with no deadline (//molgen:timeout 50ms) => error "molgen: calc.Sleep: context deadline exceeded" is [DeadlineExceeded]; returned within 3s: true`,
		`Relay.Later(10s, 4) under a 200ms deadline => 0, error "molgen: relay.Later: context deadline exceeded" is [DeadlineExceeded]; returned within 3s: true`,
		`Calc.Add(1, 2) with a canceled context => 0, error "molgen: calc.Add: context canceled" is [Canceled]`,
		`Calc.Where(10ms) with a canceled context => "", error "molgen: calc.Where: context canceled" is [Canceled]; Where ran 0 times`,
		`Relay.Sqrt(4) with a canceled context => 0, error "molgen: relay.Sqrt: context canceled" is [Canceled]`,
		`Calc.Hold(0s), oneway, with a canceled context => error "molgen: calc.Hold: context canceled" is [Canceled]`,
		`Calc.Add(1, 2) with an expired deadline => 0, error "molgen: calc.Add: context deadline exceeded" is [DeadlineExceeded]`,
		`Calc.Where(10ms) with an expired deadline => "", error "molgen: calc.Where: context deadline exceeded" is [DeadlineExceeded]; Where ran 0 times`,
		`Relay.Sqrt(4) with an expired deadline => 0, error "molgen: relay.Sqrt: context deadline exceeded" is [DeadlineExceeded]`,
		`Calc.Hold(0s), oneway, with an expired deadline => error "molgen: calc.Hold: context deadline exceeded" is [DeadlineExceeded]`,
		`in the end, implementations run => Hold 1, Count 1, Where 0`,
	}
}

// parityScenario makes the same calls through c on any placement and
// returns their transcript: one line per step, "what was called => what
// came back", with no placement-dependent detail (no durations, no
// instance names).
func parityScenario(t *testing.T, c parityClients) []string {
	var lines []string
	step := func(label, format string, args ...any) {
		lines = append(lines, label+" => "+fmt.Sprintf(format, args...))
	}
	bg := context.Background()

	// Plain results.
	sum, err := c.calc.Add(bg, 20, 22)
	step("Calc.Add(20, 22)", "%d, %s", sum, outcome(err))
	s, err := c.calc.Concat(bg, "a", "b", "c")
	step(`Calc.Concat("a", "b", "c")`, "%q, %s", s, outcome(err))
	before, after, err := c.calc.Split(bg, "left|right")
	step(`Calc.Split("left|right")`, "%q, %q, %s", before, after, outcome(err))
	k := fullKinds()
	back, err := c.codec.Kinds(bg, k)
	step("Codec.Kinds(every kind)", "the same value back: %v, %s", reflect.DeepEqual(back, k), outcome(err))

	// The service's errors, wrapped or not, through one or two services.
	v, err := c.calc.Sqrt(bg, -1)
	step("Calc.Sqrt(-1)", "%d, %s", v, outcome(err))
	step("Calc.Fail(2)", "%s", outcome(c.calc.Fail(bg, 2)))
	step("Relay.Fail(2)", "%s", outcome(c.relay.Fail(bg, 2)))
	v, err = c.relay.Sqrt(bg, -1)
	step("Relay.Sqrt(-1)", "%d, %s", v, outcome(err))

	// A panic is an error, and the service goes on.
	step(`Calc.Panic("kaboom")`, "%s", outcome(c.calc.Panic(bg, "kaboom")))
	sum, err = c.calc.Add(bg, 1, 1)
	step("Calc.Add(1, 1) after the panic", "%d, %s", sum, outcome(err))

	// Oneway: the caller does not wait for the implementation, nor see its
	// error. Both are checked to have run at the end.
	holds := c.impl.Holds.Load()
	start := time.Now()
	err = c.calc.Hold(bg, 500*time.Millisecond)
	early := time.Since(start) < 500*time.Millisecond && c.impl.Holds.Load() == holds
	step("Calc.Hold(500ms), oneway", "%s; returned at once, before the implementation finished: %v", outcome(err), early)
	step("Calc.Count(), oneway, its implementation fails", "%s", outcome(c.calc.Count(bg)))

	// A deadline that passes during the call, from the caller's context or
	// from the method's //molgen:timeout.
	timed := func(label string, call func(ctx context.Context) string, d time.Duration) {
		ctx := bg
		if d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(bg, d)
			defer cancel()
		}
		start := time.Now()
		out := call(ctx)
		step(label, "%s; returned within 3s: %v", out, time.Since(start) < 3*time.Second)
	}
	timed("Calc.Sleep(10s) under a 200ms deadline", func(ctx context.Context) string {
		return outcome(c.calc.Sleep(ctx, 10*time.Second))
	}, 200*time.Millisecond)
	timed("Calc.Sleep(10s) with no deadline (//molgen:timeout 50ms)", func(ctx context.Context) string {
		return outcome(c.calc.Sleep(ctx, 10*time.Second))
	}, 0)
	timed("Relay.Later(10s, 4) under a 200ms deadline", func(ctx context.Context) string {
		v, err := c.relay.Later(ctx, 10*time.Second, 4)
		return fmt.Sprintf("%d, %s", v, outcome(err))
	}, 200*time.Millisecond)

	// A context that is done before the call: it fails at once, the same
	// way on every path, and no implementation runs.
	canceled, cancel := context.WithCancel(bg)
	cancel()
	expired, cancel2 := context.WithDeadline(bg, time.Now().Add(-time.Second))
	defer cancel2()
	for _, done := range []struct {
		name string
		ctx  context.Context
	}{{"a canceled context", canceled}, {"an expired deadline", expired}} {
		sum, err := c.calc.Add(done.ctx, 1, 2)
		step("Calc.Add(1, 2) with "+done.name, "%d, %s", sum, outcome(err))
		wheres := c.impl.Wheres.Load()
		where, err := c.calc.Where(done.ctx, 10*time.Millisecond)
		step("Calc.Where(10ms) with "+done.name, "%q, %s; Where ran %d times", where, outcome(err), c.impl.Wheres.Load()-wheres)
		v, err := c.relay.Sqrt(done.ctx, 4)
		step("Relay.Sqrt(4) with "+done.name, "%d, %s", v, outcome(err))
		step("Calc.Hold(0s), oneway, with "+done.name, "%s", outcome(c.calc.Hold(done.ctx, 0)))
	}

	// The oneway calls above ran (once each; none of the calls with a done
	// context did). Wait for them, then a little longer for strays.
	deadline := time.Now().Add(15 * time.Second)
	for (c.impl.Holds.Load() < 1 || c.impl.Counter.Load() < 1) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	step("in the end, implementations run", "Hold %d, Count %d, Where %d", c.impl.Holds.Load(), c.impl.Counter.Load(), c.impl.Wheres.Load())
	return lines
}

// outcome is "ok" for a nil error, else its text and the identities that
// matter that it matches with errors.Is.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	var is []string
	for _, id := range []struct {
		name string
		err  error
	}{
		{"ErrNegative", ErrNegative},
		{"ErrWrapped", ErrWrapped},
		{"ErrPanic", runtime.ErrPanic},
		{"DeadlineExceeded", context.DeadlineExceeded},
		{"Canceled", context.Canceled},
	} {
		if errors.Is(err, id.err) {
			is = append(is, id.name)
		}
	}
	return fmt.Sprintf("error %q is [%s]", err.Error(), strings.Join(is, " "))
}

// splitLine cuts a transcript line into what was called and what came back.
func splitLine(line string) (label, out string) {
	label, out, _ = strings.Cut(line, " => ")
	return label, out
}

package testsvc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/testsvc/calcnext"
	"github.com/molgen/molgen/runtime"
)

// compatPlacement puts the old Calc on one node and a caller of the new one
// on another, so that every call crosses Kafka.
const compatPlacement = `
app: APP
kafka:
  partitions: 2
nodes:
  server: [calc]
  client: [codec]
`

// TestCompatNewerClientAgainstOlderServer guards docs/WIRE.md's
// "Evolution" rules with a real generated client of another version
// (package calcnext, service "calc") calling testsvc's Calc over Kafka:
//   - a method unchanged in both versions (Sqrt) works;
//   - a method whose parameter types changed (Add: int → int64, the same
//     varints on the wire but another shape) is refused with ErrBadRequest
//     and a message naming both schemas, rather than decoded as the
//     wrong types and run;
//   - a method the old server does not have (Mul) fails with
//     ErrUnknownMethod.
//
// Each answer comes within a short deadline: none is left to time out.
func TestCompatNewerClientAgainstOlderServer(t *testing.T) {
	app := kafkatest.App("compat")
	remoteNode(t, app, compatPlacement, "server", func(n *runtime.Node) error {
		return RegisterCalc(n, &CalcImpl{})
	})
	// This node holds only the new version's client: a node keeps one
	// client per service name.
	client := remoteNode(t, app, compatPlacement, "client", func(n *runtime.Node) error {
		return RegisterCodec(n, echo{})
	})
	next := calcnext.NewCalcClient(client)

	// The first call may wait for the server's consumer group to settle.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	got, err := next.Sqrt(ctx, 49)
	cancel()
	if err != nil || got != 7 {
		t.Fatalf("Sqrt, unchanged in both versions: %d, %v; want 7, nil", got, err)
	}

	const short = 5 * time.Second
	notTimedOut := func(method string, err error, start time.Time) {
		t.Helper()
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			t.Fatalf("%s: %v: the server did not answer", method, err)
		}
		if el := time.Since(start); el > short {
			t.Fatalf("%s took %v", method, el)
		}
	}

	ctx, cancel = context.WithTimeout(context.Background(), short)
	start := time.Now()
	sum, err := next.Add(ctx, 40, 2)
	cancel()
	if err == nil {
		t.Fatalf("Add(int64, int64) on a server of Add(int, int) = %d, nil; want ErrBadRequest (schemas differ)", sum)
	}
	notTimedOut("Add", err, start)
	if !errors.Is(err, runtime.ErrBadRequest) || errors.Is(err, runtime.ErrUnknownMethod) {
		t.Fatalf("Add with changed types: %v; want ErrBadRequest", err)
	}
	newSchema, oldSchema := "(int64,int64)(int64)", "(int,int)(int)"
	if msg := err.Error(); !strings.Contains(msg, newSchema) || !strings.Contains(msg, oldSchema) {
		t.Fatalf("Add with changed types: %q; want a message naming the caller's schema %s and the server's %s", msg, newSchema, oldSchema)
	}
	if strings.Contains(err.Error(), runtime.ErrCorrupt.Error()) {
		t.Fatalf("Add with changed types was decoded: %v", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), short)
	start = time.Now()
	prod, err := next.Mul(ctx, 6, 7)
	cancel()
	if err == nil {
		t.Fatalf("Mul, which the old server does not have, = %d, nil", prod)
	}
	notTimedOut("Mul", err, start)
	if !errors.Is(err, runtime.ErrUnknownMethod) || errors.Is(err, runtime.ErrBadRequest) {
		t.Fatalf("Mul on an old server: %v; want ErrUnknownMethod", err)
	}
	if !strings.Contains(err.Error(), "Mul") {
		t.Fatalf("Mul on an old server: %q does not name the method", err)
	}

	// The refusals did not disturb the server.
	ctx, cancel = context.WithTimeout(context.Background(), short)
	got, err = next.Sqrt(ctx, 81)
	cancel()
	if err != nil || got != 9 {
		t.Fatalf("Sqrt after the refusals: %d, %v; want 9, nil", got, err)
	}
}

// Package short marks the tests that 'go test -short ./...' leaves out:
// those that build and run binaries, restart brokers, wait out rebalances
// or compile generated code, each taking seconds. The quick subset is for
// day-to-day work; the full 'go test ./...' (and CI) runs everything.
package short

import "testing"

// Skip skips t under -short, saying why it is slow.
func Skip(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("slow under -short (%s); the full go test ./... runs it", why)
	}
}

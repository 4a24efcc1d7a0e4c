package runtime

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// lateCtx is a context whose deadline has passed but whose timer has not
// fired yet: what a busy caller sees when a server's reply comes first.
type lateCtx struct{ context.Context }

func (lateCtx) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

// TestSettleTakesARemoteDeadlineAfterTheDeadline: a server's error that
// says the deadline passed, arriving once the call's deadline has passed
// but before the caller's context says so, reads as the call's own
// deadline ("molgen: calc.Sleep: context deadline exceeded"), as it does
// when the caller's timer fired first; before the deadline it is the
// server's error, unchanged.
func TestSettleTakesARemoteDeadlineAfterTheDeadline(t *testing.T) {
	c := &Client{desc: &ServiceDesc{Name: "calc", Methods: []MethodDesc{{Name: "Sleep"}}}}
	remote := fmt.Errorf("remote: %w", context.DeadlineExceeded)
	err := c.settle(lateCtx{context.Background()}, 0, remote)
	if got := err.Error(); got != "molgen: calc.Sleep: context deadline exceeded" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("after the deadline: %q", got)
	}
	early, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if err := c.settle(early, 0, remote); err != remote {
		t.Fatalf("before the deadline: %v, want the server's error unchanged", err)
	}
}

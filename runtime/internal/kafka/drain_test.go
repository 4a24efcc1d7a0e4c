package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestForgottenTellsABrokerThatForgotUsFromFailures: what a broker that
// lost its data answers to a drain's commit or leave is not a failure of
// the drain; anything else, alone or joined with it, is.
func TestForgottenTellsABrokerThatForgotUsFromFailures(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{kerr.UnknownMemberID, true},
		{kerr.IllegalGeneration, true},
		{kerr.UnknownTopicOrPartition, true},
		{kerr.CoordinatorNotAvailable, true},
		{fmt.Errorf("molgen: leaving consumer group g: %w", kerr.GroupIDNotFound), true},
		{errors.Join(kerr.UnknownMemberID, fmt.Errorf("commit: %w", kerr.IllegalGeneration)), true},
		{kerr.RebalanceInProgress, false},
		{kerr.RequestTimedOut, false},
		{context.DeadlineExceeded, false},
		{errors.New("molgen: leaving consumer group g took over 45s"), false},
		{errors.Join(kerr.UnknownMemberID, errors.New("dial tcp: connection refused")), false},
		{fmt.Errorf("wrapped: %w", errors.Join(kerr.UnknownMemberID, context.DeadlineExceeded)), false},
	}
	for _, c := range cases {
		if got := forgotten(c.err); got != c.want {
			t.Errorf("forgotten(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestFlattenSplitsJoinedErrors(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	got := flatten([]error{nil, errors.Join(a, errors.Join(b, nil)), c})
	if len(got) != 3 || got[0] != a || got[1] != b || got[2] != c {
		t.Fatalf("flatten = %v", got)
	}
}

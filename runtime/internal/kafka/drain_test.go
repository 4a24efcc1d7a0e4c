package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"

	kafkago "github.com/segmentio/kafka-go"
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
		{kafkago.UnknownMemberId, true},
		{kafkago.IllegalGeneration, true},
		{kafkago.UnknownTopicOrPartition, true},
		{kafkago.GroupCoordinatorNotAvailable, true},
		{fmt.Errorf("molgen: leaving consumer group g: %w", kafkago.GroupIdNotFound), true},
		{errors.Join(kafkago.UnknownMemberId, fmt.Errorf("commit: %w", kafkago.IllegalGeneration)), true},
		{kafkago.RebalanceInProgress, false},
		{kafkago.RequestTimedOut, false},
		{context.DeadlineExceeded, false},
		{errors.New("molgen: leaving consumer group g took over 45s"), false},
		{errors.Join(kafkago.UnknownMemberId, errors.New("dial tcp: connection refused")), false},
		{fmt.Errorf("wrapped: %w", errors.Join(kafkago.UnknownMemberId, context.DeadlineExceeded)), false},
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

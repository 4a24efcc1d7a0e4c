package kafka

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// forgottenCodes are the answers of a broker that no longer knows a
// member, its generation, its group or its topic: a broker that restarted
// without its data, or that evicted the member. A drain that gets them
// when it commits or leaves has still finished its requests and answered
// them; at worst (the commit did not take) another instance runs them
// again, which at-least-once allows. They are logged, not failures.
var forgottenCodes = []*kerr.Error{
	kerr.UnknownMemberID,
	kerr.IllegalGeneration,
	kerr.GroupIDNotFound,
	kerr.FencedInstanceID,
	kerr.UnknownTopicOrPartition,
	kerr.UnknownTopicID,
	// The group's coordinator is not (yet) there: a broker that lost its
	// data has no offsets topic until a group asks for it.
	kerr.CoordinatorNotAvailable,
	kerr.NotCoordinator,
}

// forgotten reports whether err says only that the broker forgot us:
// every error it joins or wraps ends in one of forgottenCodes. Anything
// else (a timeout, a broker that does not answer, a drain that could not
// finish its requests) is a real failure.
func forgotten(err error) bool {
	if err == nil {
		return false
	}
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			if inner != nil && !forgotten(inner) {
				return false
			}
		}
		return true
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			return forgotten(inner)
		}
	}
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return false
	}
	for _, c := range forgottenCodes {
		if ke == c {
			return true
		}
	}
	return false
}

// withoutForgotten logs the errors of a drain that only say the broker
// forgot us, and returns the others.
func (t *Transport) withoutForgotten(errs []error) []error {
	var out []error
	for _, err := range flatten(errs) {
		if forgotten(err) {
			t.log.Warn("draining: the broker no longer knows this consumer (it lost its data, or dropped the member); requests were served, another instance may run some again", "err", err)
			continue
		}
		out = append(out, err)
	}
	return out
}

// flatten splits joined errors (errors.Join) into their parts, dropping
// nils.
func flatten(errs []error) []error {
	var out []error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			out = append(out, flatten(j.Unwrap())...)
			continue
		}
		out = append(out, err)
	}
	return out
}

package runtime

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/molgen/molgen/runtime/internal/transport"
)

var (
	// ErrPanic is matched (errors.Is) by the error a caller gets when the
	// implementation panicked, locally or remotely.
	ErrPanic = errors.New("molgen: service panicked")
	// ErrBadRequest is matched by the error a caller gets when the server
	// could not decode its request (a version mismatch or corruption).
	ErrBadRequest = transport.ErrBadRequest
	// ErrNoRoute is matched when no instance can be reached for a service:
	// it is not hosted on this node and the node has no Kafka transport.
	ErrNoRoute = errors.New("molgen: no route to service")
	// ErrClosed is matched by calls made after the node was closed.
	ErrClosed = transport.ErrClosed
	// ErrUnknownMethod is matched when a server does not know the method a
	// request names (the caller's code is newer than the server's).
	ErrUnknownMethod = transport.ErrUnknownMethod
	// ErrTooLarge is matched when a request or its reply is over the size
	// limit of the transport (Kafka's message.max.bytes).
	ErrTooLarge = transport.ErrTooLarge
	// ErrNoInstance is matched when no running instance serves the
	// service called (its consumer group has no members). A call that
	// fails with it was never written and never runs.
	ErrNoInstance = transport.ErrNoInstance
	// ErrMayHaveRun is matched by a remote call that failed after its
	// request was written to Kafka (its deadline passed, its context was
	// canceled, its service lost its last instance meanwhile): the request
	// may have run, or may still run if an instance takes it before its
	// deadline. context.DeadlineExceeded and context.Canceled still match.
	ErrMayHaveRun = transport.ErrMayHaveRun
)

// errorRegistry maps exported error variables to stable identities
// ("import/path.ErrName") so they survive a trip through Kafka.
var errorRegistry = struct {
	sync.RWMutex
	byKey map[string]error
	keys  []string // sorted
}{byKey: map[string]error{}}

func init() {
	RegisterErrors("context", map[string]error{"DeadlineExceeded": context.DeadlineExceeded, "Canceled": context.Canceled})
	RegisterErrors("github.com/molgen/molgen/runtime", map[string]error{
		"ErrPanic": ErrPanic, "ErrBadRequest": ErrBadRequest, "ErrNoRoute": ErrNoRoute,
		"ErrClosed": ErrClosed, "ErrUnknownMethod": ErrUnknownMethod,
		"ErrTooLarge": ErrTooLarge, "ErrNoInstance": ErrNoInstance, "ErrMayHaveRun": ErrMayHaveRun,
	})
}

// RegisterErrors records a package's exported error variables. Generated
// code calls it for every package with molgen declarations; call it yourself
// for error variables of other packages that cross services.
func RegisterErrors(pkgPath string, vars map[string]error) {
	errorRegistry.Lock()
	defer errorRegistry.Unlock()
	for name, err := range vars {
		if err == nil {
			continue
		}
		key := pkgPath + "." + name
		if _, dup := errorRegistry.byKey[key]; !dup {
			errorRegistry.keys = append(errorRegistry.keys, key)
		}
		errorRegistry.byKey[key] = err
	}
	sort.Strings(errorRegistry.keys)
}

// errorIdentities lists the registered variables err matches with errors.Is.
func errorIdentities(err error) []string {
	errorRegistry.RLock()
	defer errorRegistry.RUnlock()
	var out []string
	for _, key := range errorRegistry.keys {
		if safeIs(err, errorRegistry.byKey[key]) {
			out = append(out, key)
		}
	}
	return out
}

// safeIs is errors.Is, false when a user Is or Unwrap method panics.
func safeIs(err, target error) (is bool) {
	defer func() {
		if recover() != nil {
			is = false
		}
	}()
	return errors.Is(err, target)
}

// RemoteError is an error returned by a service on another node. Its
// message is the original error's message, and errors.Is matches every
// registered error variable the original matched.
type RemoteError struct {
	Service, Method string
	Msg             string
	// Identities are the registry keys of the variables the original error
	// matched, e.g. "example.com/bank/accounts.ErrNoFunds".
	Identities []string
	sentinels  []error
}

func newRemoteError(service, method, msg string, ids []string) *RemoteError {
	e := &RemoteError{Service: service, Method: method, Msg: msg, Identities: ids}
	errorRegistry.RLock()
	for _, id := range ids {
		if s, ok := errorRegistry.byKey[id]; ok {
			e.sentinels = append(e.sentinels, s)
		}
	}
	errorRegistry.RUnlock()
	return e
}

// Error returns the original error's message.
func (e *RemoteError) Error() string { return e.Msg }

// Unwrap returns the registered error variables the original matched, so
// that errors.Is works across nodes.
func (e *RemoteError) Unwrap() []error { return e.sentinels }

// PanicError is the error a caller gets when the implementation panicked.
type PanicError struct {
	Service, Method string
	Value           any
	Stack           []byte
}

// Error names the service, the method and the panic value.
func (e *PanicError) Error() string {
	return fmt.Sprintf("molgen: %s.%s panicked: %v", e.Service, e.Method, e.Value)
}

// Unwrap returns ErrPanic.
func (e *PanicError) Unwrap() error { return ErrPanic }

// badRequest marks a request that could not be decoded.
type badRequest struct{ err error }

func (e *badRequest) Error() string   { return "molgen: bad request: " + e.err.Error() }
func (e *badRequest) Unwrap() []error { return []error{ErrBadRequest, e.err} }

// BadRequest wraps a decoding error of a request; generated handlers return
// it so the runtime can tell it from the service's own errors.
func BadRequest(err error) error { return &badRequest{err} }

// CallError describes a call that failed in the runtime rather than in the
// service: a deadline that passed, an unreachable broker.
type CallError struct {
	Service, Method string
	Err             error
}

// Error names the service and method and says what went wrong.
func (e *CallError) Error() string {
	return fmt.Sprintf("molgen: %s.%s: %v", e.Service, e.Method, e.Err)
}

// Unwrap returns the cause, e.g. context.DeadlineExceeded.
func (e *CallError) Unwrap() error { return e.Err }

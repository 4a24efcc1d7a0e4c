// Package calcnext models a newer version of testsvc's Calc, for
// compatibility tests: it keeps the service name "calc", changes the types
// of one method, keeps another unchanged and adds a method the old server
// does not have. Its generated client is a real caller of another version;
// testsvc's compat_test.go calls an old server with it over Kafka.
package calcnext

//go:generate go run github.com/molgen/molgen/cmd/molgen generate

import "context"

// Calc is the next version of testsvc.Calc.
//
//molgen:service name=calc
type Calc interface {
	// Add takes int64 where testsvc.Calc.Add takes int: the same varints on
	// the wire, but another shape (schema "(int64,int64)(int64)" instead of
	// "(int,int)(int)"), so an old server must refuse it rather than
	// decode it.
	Add(ctx context.Context, a, b int64) (int64, error)
	// Sqrt is unchanged from testsvc.Calc.Sqrt.
	Sqrt(ctx context.Context, x int) (int, error)
	// Mul is new: testsvc.Calc has no such method.
	Mul(ctx context.Context, a, b int) (int, error)
}

// Package greeter has a misspelt //molgen:service: the one error is the
// misspelling, not what would follow from the interface not being a service
// (its method directives misplaced, its constructor and the main that uses
// it rejected).
package greeter

import "context"

// Greeter says hello.
//
//molgen:servce
type Greeter interface {
	//molgen:timeout 2s
	Hello(ctx context.Context, name string) (string, error)
	//molgen:retry 2
	Bye(ctx context.Context, name string) (string, error)
}

type greeter struct{}

// New builds the service.
//
//molgen:constructor
func New() Greeter { return greeter{} }

func (greeter) Hello(ctx context.Context, name string) (string, error) { return "hello", nil }
func (greeter) Bye(ctx context.Context, name string) (string, error)   { return "bye", nil }

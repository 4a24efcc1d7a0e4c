package bad

import "context"

// Typo in the directive name.
//
//molgen:servce
type A interface {
	M(ctx context.Context) error
}

// Space after //.
//
// molgen:service
type B interface {
	M(ctx context.Context) error
}

// service on a struct.
//
//molgen:service
type C struct{}

// Method directives on a plain interface.
type D interface {
	//molgen:timeout 1s
	M(ctx context.Context) error
}

//molgen:service name=Bad_Name
type E interface {
	//molgen:timeout never
	M(ctx context.Context) error
}

//molgen:service
type F interface {
	//molgen:timeout soon
	A(ctx context.Context) error
	//molgen:timeout -1s
	B(ctx context.Context) error
	//molgen:retry many
	C(ctx context.Context) error
	//molgen:oneway
	D(ctx context.Context) (int, error)
	//molgen:oneway
	//molgen:retry 2
	E(ctx context.Context) error
	//molgen:timeout 1s
	//molgen:timeout 2s
	G(ctx context.Context) error
	//molgen:service
	H(ctx context.Context) error
}

//molgen:timeout 1s
func NotAMethod() {}

type T struct{}

//molgen:constructor
func (T) Method() F { return nil }

func body() {
	//molgen:oneway
	_ = 1
}

//molgen:main
//molgen:constructor
func Both(ctx context.Context) error { return nil }

package funcs

import "context"

//molgen:service
type Users interface {
	Get(ctx context.Context, id string) (string, error)
}

// Same name as Users.
//
//molgen:service name=users
type Members interface {
	Get(ctx context.Context, id string) (string, error)
}

// Plain is not a service.
type Plain interface {
	Get(ctx context.Context) error
}

//molgen:constructor
func NewUsers() Users { return nil }

//molgen:constructor
func NewUsersAgain() (Users, error) { return nil, nil }

//molgen:constructor
func BadResult() (string, error) { return "", nil }

//molgen:constructor
func BadDep(ctx context.Context, p Plain, n int) Users { return nil }

//molgen:constructor
func ThreeResults() (Users, error, int) { return nil, nil, 0 }

//molgen:main
func NoCtxMain(u Users) error { return nil }

//molgen:main
func NoErrMain(ctx context.Context, u Users) {}

//molgen:main name=users
func Dup(ctx context.Context) error { return nil }

//molgen:main
func lower(ctx context.Context) error { return nil }

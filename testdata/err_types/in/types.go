package types

import (
	"context"
	"sync"
	"unsafe"

	"example.com/err_types/other"
)

type AccountID string

type Money struct {
	cents int64
}

type Account struct {
	ID      AccountID
	Balance Money
	Hooks   []func()
}

type Locked struct {
	sync.Mutex
	N int
}

//molgen:service
type Bank interface {
	Open(ctx context.Context, owner string) (Money, error)
	Get(ctx context.Context, id AccountID) (Account, error)
	Watch(ctx context.Context, c chan int) error
	Raw(ctx context.Context, p unsafe.Pointer) error
	Any(ctx context.Context, v any) error
	Cplx(ctx context.Context) (complex128, error)
	Lock(ctx context.Context, l Locked) error
	Foreign(ctx context.Context, w other.Wrapper) error
	ErrFirst(ctx context.Context) (error, int)
	NoCtx(id AccountID) error
	NoErr(ctx context.Context) int
	Many(ctx context.Context, ids ...AccountID) error
	Keys(ctx context.Context, m map[AccountID][]Money) error
	unexported(ctx context.Context) error
}

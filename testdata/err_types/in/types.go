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
	PtrKeys(ctx context.Context, m map[*int]string, n map[Key]int) error
	Guard(ctx context.Context, g Guarded) error
	Phantom(ctx context.Context, id ID[chan int]) error
}

// Key holds a pointer: as a map key it compares by address.
type Key struct{ P *string }

// Guarded is copied by value, but has Lock and Unlock.
type Guarded struct{ N int }

func (*Guarded) Lock()   {}
func (*Guarded) Unlock() {}

// ID is a typed identifier.
type ID[T any] string

// Embeds embeds error, whose method breaks the rules.
//
//molgen:service
type Embeds interface {
	error
}

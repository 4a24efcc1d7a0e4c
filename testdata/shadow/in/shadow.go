// Package shadow declares names that generated code also uses: locals (d,
// v, m, e), imports (other, runtime), type aliases, and parameters named
// like the client's locals (Named), plus types that
// need care: pointers to pointers to structs, named pointers to
// BinaryMarshalers, phantom type parameters, types defined from time.Time,
// and structs whose fields are all empty.
package shadow

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"example.com/shadow/api"
	dd "example.com/shadow/d"
	o "example.com/shadow/other"
)

type d int8

type v struct{ Next *v }

type m map[string]int

type e struct{ S string }

type other struct{ Y int }

type runtime struct{}

// Inner and A: a struct field that embeds an alias is named after it.
type Inner struct{ X int }

type A = Inner

// AddrPtr is a named pointer to a BinaryMarshaler.
type AddrPtr *netip.Addr

// ID is a typed identifier; T is a phantom.
type ID[T any] string

// Account has unexported fields, but only appears as a phantom.
type Account struct {
	mu      sync.Mutex
	balance int
}

// Stamp is defined from time.Time.
type Stamp time.Time

// Hollow has only empty fields.
type Hollow struct {
	A struct{}
	B [0]int
}

// Odd uses all of them.
//
//molgen:service
type Odd interface {
	Locals(ctx context.Context, x d, y *v, z m, w e, t []dd.T) (d, error)
	Imports(ctx context.Context, a o.Thing, b other, c runtime) (other, error)
	Aliases(ctx context.Context, p api.Point, s struct{ A }) (api.Point, error)
	Pointers(ctx context.Context, pp **struct{ A int }, ap AddrPtr) (**struct{ A int }, error)
	Phantom(ctx context.Context, id ID[Account], s Stamp) (ID[*Account], error)
	Empty(ctx context.Context, h []Hollow, hm map[string]struct{ A [0]int }, ha [2]struct {
		B [0]string
		C struct{}
	}) error
}

// Named has parameters and results named like what a generated client
// method declares or refers to (its locals, an import, a predeclared
// identifier, a generated name, a generated fallback): those get generated
// names, the others keep theirs.
//
//molgen:service
type Named interface {
	Names(c context.Context, ctx string, req int, impl bool, p int8, a0 string, _ uint, context int, len int, molgenX int, x int, keep string) (resp string, r0 int, ok bool, _ int8, kept string, err error)
}

// Package sametypes has methods with several parameters and several results
// of one type, none of them commutative, and structs with several fields of
// one kind: a generator that puts two of them in each other's place (in the
// request, the response, a struct's codec, the handler or the client)
// produces code that compiles and passes the type checker. The round-trip
// test beside this file pins every value to its place.
package sametypes

import "context"

// Span has several fields of each kind it uses.
type Span struct {
	Start, End  int
	Label, Note string
	Open, Shut  bool
	Inner       Pair
}

// Pair is a nested struct of two strings.
type Pair struct {
	First, Second string
}

// Text operates on strings and numbers whose order matters.
//
//molgen:service
type Text interface {
	// Concat returns a+b+c.
	Concat(ctx context.Context, a, b, c string) (string, error)

	// Split cuts s at its first comma.
	Split(ctx context.Context, s string) (before, after string, err error)

	// Divmod returns a/b and a%b.
	Divmod(ctx context.Context, a, b int64) (quo, rem int64, err error)

	// Reorder returns its spans swapped, and one made of s's fields in
	// another order.
	Reorder(ctx context.Context, s, t Span) (Span, Span, Span, error)

	// Lookup returns m[k] for each k of keys.
	Lookup(ctx context.Context, m map[string]string, keys []string) ([]string, error)
}

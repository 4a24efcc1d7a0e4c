// Package testsvc holds services that exercise molgen end to end: every
// serializable kind (codec round trips and fuzzing), and a small service
// for benchmarks and runtime behaviour (timeouts, panics, errors).
package testsvc

//go:generate go run github.com/molgen/molgen/cmd/molgen generate

import (
	"context"
	"time"

	"github.com/molgen/molgen/internal/testsvc/ext"
)

// Level is a named integer.
type Level int8

// Blob is a named byte slice.
type Blob []byte

// Names is a named slice.
type Names []string

// Point is a comparable struct, used as a map key.
type Point struct{ X, Y int32 }

// Empty has no fields.
type Empty struct{}

// Tree is recursive through a pointer and a slice.
type Tree struct {
	Label    string
	Left     *Tree
	Children []Tree
}

// A and B are mutually recursive through a map.
type A struct {
	Name string
	Bs   map[string]*B
}

// B points back to A.
type B struct {
	Back *A
	N    uint16
}

// Page is generic.
type Page[T any] struct {
	Items []T
	Next  *string
}

// Base is embedded.
type Base struct {
	ID      uint64
	Created time.Time
}

// Event embeds a time.Time, whose MarshalBinary is promoted to Event: it
// must still encode as a struct, Name included.
type Event struct {
	time.Time
	Name string
}

// Kinds holds one field of every serializable kind.
type Kinds struct {
	Base
	Bool    bool
	Int     int
	Int8    int8
	Int16   int16
	Int32   int32
	Int64   int64
	Uint    uint
	Uint8   uint8
	Uint16  uint16
	Uint32  uint32
	Uint64  uint64
	Uintptr uintptr
	Float32 float32
	Float64 float64
	String  string
	Bytes   []byte
	Blob    Blob
	Level   Level
	Wait    time.Duration
	When    time.Time
	Hash    [4]byte
	Triple  [3]int16
	None    [0]int
	Names   Names
	Matrix  [][]float64
	ByPoint map[Point]string
	Nested  map[string][]*Point
	Ptr     *int
	PtrPtr  **string
	Anon    struct {
		A int
		B []string
	}
	Empty   Empty
	Money   ext.Money
	Version ext.Version
	Ver     *ext.Version
	Tree    *Tree
	A       A
	Page    Page[Point]
	Pages   []Page[ext.Money]
	Event   Event
	Set     map[Point]struct{}
	Units   []struct{}
	Tagged  struct {
		X int `json:"x,omitempty"`
	}
}

// Codec echoes values of every kind, for round-trip tests.
//
//molgen:service
type Codec interface {
	Kinds(ctx context.Context, k Kinds) (Kinds, error)
	Many(ctx context.Context, a int, b string, c []Kinds, d map[Level]Blob) (int, string, []Kinds, map[Level]Blob, error)
	Tree(ctx context.Context, t *Tree) (*Tree, error)
	Nothing(ctx context.Context) error
}

type echo struct{}

// NewCodec returns a Codec that returns its arguments.
//
//molgen:constructor
func NewCodec() Codec { return echo{} }

func (echo) Kinds(ctx context.Context, k Kinds) (Kinds, error) { return k, nil }
func (echo) Many(ctx context.Context, a int, b string, c []Kinds, d map[Level]Blob) (int, string, []Kinds, map[Level]Blob, error) {
	return a, b, c, d, nil
}
func (echo) Tree(ctx context.Context, t *Tree) (*Tree, error) { return t, nil }
func (echo) Nothing(ctx context.Context) error                { return nil }

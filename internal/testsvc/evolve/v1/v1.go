// Package v1 is the first version of a small app for the mixed-version
// test (testsvc's evolve_test.go): service "inventory". Package v2 beside
// it is the next version, changed only in the ways docs/WIRE.md calls
// compatible.
package v1

//go:generate go run github.com/molgen/molgen/cmd/molgen generate

import "context"

// Item is what the inventory stores.
type Item struct {
	SKU   string
	Count int
}

// Inventory is version 1 of service "inventory".
//
//molgen:service name=inventory
type Inventory interface {
	// Put returns it with Count incremented: which instance answers makes
	// no difference.
	Put(ctx context.Context, it Item) (Item, error)
}

// Leaf, Mid and Top nest structs three deep, through a slice, a map and
// a pointer: version 2 appends a field to each (evolve_test.go's
// TestEvolutionAtEveryDepth).
type Leaf struct {
	A string
}

// Mid holds leaves in a slice, a map and a pointer.
type Mid struct {
	Leaves []Leaf
	ByKey  map[string]Leaf
	Ptr    *Leaf
}

// Top holds mids in slices in a map, and one through a pointer.
type Top struct {
	ID   string
	Mids map[string][]Mid
	Head *Mid
}

// Deep is version 1 of service "deep".
//
//molgen:service name=deep
type Deep interface {
	// Echo returns t as this version reads it.
	Echo(ctx context.Context, t Top) (Top, error)
}

// NewDeep builds Deep.
//
//molgen:constructor
func NewDeep() Deep { return deep{} }

type deep struct{}

func (deep) Echo(ctx context.Context, t Top) (Top, error) { return t, nil }

// New builds Inventory.
//
//molgen:constructor
func New() Inventory { return inventory{} }

type inventory struct{}

func (inventory) Put(ctx context.Context, it Item) (Item, error) {
	it.Count++
	return it, nil
}

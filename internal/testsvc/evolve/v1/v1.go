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

// New builds Inventory.
//
//molgen:constructor
func New() Inventory { return inventory{} }

type inventory struct{}

func (inventory) Put(ctx context.Context, it Item) (Item, error) {
	it.Count++
	return it, nil
}

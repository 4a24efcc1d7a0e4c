// Package v2 is the next version of package v1: Item has two fields
// appended, Inventory a new method, and service "audit" is new. Its
// molgen_schema.txt began as v1's: molgen generate accepted the changes.
package v2

//go:generate go run github.com/molgen/molgen/cmd/molgen generate

import (
	"context"
	"fmt"
)

// Item is v1's Item with Note and Tags appended.
type Item struct {
	SKU   string
	Count int
	Note  string
	Tags  []string
}

// Inventory is version 2 of service "inventory".
//
//molgen:service name=inventory
type Inventory interface {
	// Put returns it with Count incremented and its Note marked as seen
	// by a version 2 server.
	Put(ctx context.Context, it Item) (Item, error)
	// Remove is new in version 2.
	Remove(ctx context.Context, sku string) error
}

// Audit is new in version 2.
//
//molgen:service name=audit
type Audit interface {
	// Log returns the length of msg.
	Log(ctx context.Context, msg string) (int, error)
}

// New builds Inventory.
//
//molgen:constructor
func New() Inventory { return inventory{} }

// NewAudit builds Audit.
//
//molgen:constructor
func NewAudit() Audit { return audit{} }

type inventory struct{}

func (inventory) Put(ctx context.Context, it Item) (Item, error) {
	it.Count++
	if it.Note != "" {
		it.Note = fmt.Sprintf("v2 saw %s", it.Note)
	}
	return it, nil
}

func (inventory) Remove(ctx context.Context, sku string) error { return nil }

type audit struct{}

func (audit) Log(ctx context.Context, msg string) (int, error) { return len(msg), nil }

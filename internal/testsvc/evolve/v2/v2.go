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

// Leaf is v1's Leaf with B appended.
type Leaf struct {
	A string
	B int
}

// Mid is v1's Mid with Note appended.
type Mid struct {
	Leaves []Leaf
	ByKey  map[string]Leaf
	Ptr    *Leaf
	Note   string
}

// Top is v1's Top with Extra appended.
type Top struct {
	ID    string
	Mids  map[string][]Mid
	Head  *Mid
	Extra []string
}

// Deep is version 2 of service "deep".
//
//molgen:service name=deep
type Deep interface {
	// Echo returns t with the fields version 2 appended marked at every
	// level: B incremented, Note and Extra given "v2" when empty.
	Echo(ctx context.Context, t Top) (Top, error)
}

// NewDeep builds Deep.
//
//molgen:constructor
func NewDeep() Deep { return deep{} }

type deep struct{}

func (deep) Echo(ctx context.Context, t Top) (Top, error) {
	leaf := func(l Leaf) Leaf { l.B++; return l }
	mid := func(m Mid) Mid {
		for i := range m.Leaves {
			m.Leaves[i] = leaf(m.Leaves[i])
		}
		for k, l := range m.ByKey {
			m.ByKey[k] = leaf(l)
		}
		if m.Ptr != nil {
			l := leaf(*m.Ptr)
			m.Ptr = &l
		}
		if m.Note == "" {
			m.Note = "v2"
		}
		return m
	}
	for _, ms := range t.Mids {
		for i := range ms {
			ms[i] = mid(ms[i])
		}
	}
	if t.Head != nil {
		h := mid(*t.Head)
		t.Head = &h
	}
	if t.Extra == nil {
		t.Extra = []string{"v2"}
	}
	return t, nil
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

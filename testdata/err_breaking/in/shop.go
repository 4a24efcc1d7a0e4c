// Package shop changes the first version of the service recorded in
// molgen_schema.txt in every way that breaks its wire schema: molgen
// generate refuses each change at its position (want/errors.txt).
package shop

import "context"

// Item is a line of an order: Note, its last field, was removed.
type Item struct {
	SKU   string
	Count int
}

// Order is what Orders keeps: Items and Total swapped places, and Paid
// became a string.
type Order struct {
	ID    string
	Total int64
	Items []Item
	Paid  string
}

// Orders keeps orders. Place takes one more parameter, Count returns an
// int64, Touch is no longer oneway, and Delete was removed.
//
//molgen:service
type Orders interface {
	Place(ctx context.Context, o Order, note string) (string, error)
	Get(ctx context.Context, id string) (Order, error)
	Count(ctx context.Context) (int64, error)
	Touch(ctx context.Context, id string) error
}

// New builds Orders.
//
//molgen:constructor
func New() Orders { return nil }

// Package shop changes the first version of the service recorded in
// molgen_schema.txt the other way round from err_breaking: each change
// below breaks the wire, and molgen generate refuses each at its position
// (want/errors.txt); appending Item.Weight does not.
package shop

import "context"

// Item is a line of an order: Note was inserted before SKU (SKU and
// Count move), and Weight, appended, is compatible.
type Item struct {
	Note   string
	SKU    string
	Count  int
	Weight int
}

// Order is what Orders keeps: Paid became a bool.
type Order struct {
	ID    string
	Items []Item
	Total int64
	Paid  bool
}

// Orders keeps orders. Place takes one parameter fewer, Count returns an
// int (narrowed from int64), and Touch is now oneway.
//
//molgen:service
type Orders interface {
	Place(ctx context.Context, o Order) (string, error)
	Get(ctx context.Context, id string) (Order, error)
	Count(ctx context.Context) (int, error)
	//molgen:oneway
	Touch(ctx context.Context, id string) error
}

// New builds Orders.
//
//molgen:constructor
func New() Orders { return nil }

// Package shop changes the first version of the service recorded in
// molgen_schema.txt only in ways that keep its wire compatible: fields
// appended to structs (one of a new struct type), a field renamed, a
// method and a service added. molgen generate accepts them and rewrites
// the record (want/molgen_schema.txt).
package shop

import "context"

// Item is a line of an order; Note was renamed Comment (names are not on
// the wire) and Gift appended.
type Item struct {
	SKU     string
	Count   int
	Comment string
	Gift    bool
}

// Order is what Orders keeps, with Address appended.
type Order struct {
	ID      string
	Items   []Item
	Total   int64
	Paid    bool
	Address Address
}

// Address is new.
type Address struct {
	Street, City string
}

// Orders keeps orders; Refund is new.
//
//molgen:service
type Orders interface {
	Place(ctx context.Context, o Order) (string, error)
	Get(ctx context.Context, id string) (Order, error)
	Count(ctx context.Context) (int, error)
	//molgen:oneway
	Touch(ctx context.Context, id string) error
	Delete(ctx context.Context, id string) error
	Refund(ctx context.Context, id string, cents int64) error
}

// Stock is a new service.
//
//molgen:service
type Stock interface {
	Level(ctx context.Context, sku string) (int, error)
}

// New builds Orders.
//
//molgen:constructor
func New() Orders { return nil }

// NewStock builds Stock.
//
//molgen:constructor
func NewStock() Stock { return nil }

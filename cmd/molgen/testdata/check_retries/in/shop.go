// Package shop has retries and deadlines that molgen check warns about
// (want/warnings.txt): Quote's timeout times its attempts is more than
// Checkout's timeout, Checkout is retried over Charge (not retried), and
// the retries of Checkout, Quote and Rate multiply along the path from
// main "buy".
package shop

import "context"

// Front takes orders.
//
//molgen:service
type Front interface {
	//molgen:timeout 1s
	//molgen:retry 2
	Checkout(ctx context.Context, cart string) (string, error)
}

// Pricing prices carts and charges them.
//
//molgen:service
type Pricing interface {
	//molgen:timeout 500ms
	//molgen:retry 2
	Quote(ctx context.Context, cart string) (int, error)
	Charge(ctx context.Context, cart string, amount int) error
}

// Rates gives exchange rates.
//
//molgen:service
type Rates interface {
	//molgen:timeout 100ms
	//molgen:retry 1
	Rate(ctx context.Context, currency string) (float64, error)
}

// NewFront builds Front.
//
//molgen:constructor
func NewFront(p Pricing) Front { return nil }

// NewPricing builds Pricing.
//
//molgen:constructor
func NewPricing(r Rates) Pricing { return nil }

// NewRates builds Rates.
//
//molgen:constructor
func NewRates() Rates { return nil }

// Buy buys.
//
//molgen:main
func Buy(ctx context.Context, f Front) error { return nil }

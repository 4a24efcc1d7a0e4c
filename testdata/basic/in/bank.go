// Package bank is the contract's example: one service with every method
// option, a constructor and a main.
package bank

import (
	"context"
	"errors"
)

// AccountID identifies an account.
type AccountID string

// Money is an amount in cents.
type Money struct {
	Cents int64
}

// ErrNoFunds means a balance is too low.
var ErrNoFunds = errors.New("bank: insufficient funds")

// Accounts keeps balances.
//
//molgen:service
type Accounts interface {
	// Open creates an account.
	Open(ctx context.Context, owner string) (AccountID, error)

	//molgen:timeout 2s
	Balance(ctx context.Context, id AccountID) (Money, error)

	//molgen:oneway
	Touch(ctx context.Context, id AccountID) error

	//molgen:retry 3
	Close(ctx context.Context, id AccountID) error
}

// NewAccounts builds the service.
//
//molgen:constructor
func NewAccounts(ctx context.Context) (Accounts, error) { return nil, nil }

// Teller is an entry point.
//
//molgen:main
func Teller(ctx context.Context, acc Accounts) error { return nil }

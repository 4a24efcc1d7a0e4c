// Package api declares the services.
package api

import (
	"context"
	"errors"
)

var ErrDenied = errors.New("api: denied")

//molgen:service
type Auth interface {
	Check(ctx context.Context, token string) (bool, error)
}

//molgen:service name=orders
type OrderBook interface {
	Place(ctx context.Context, token string, qty int) (int64, error)
}

// Package impl builds the services declared in api.
package impl

import (
	"context"

	"example.com/multipkg/api"
)

//molgen:constructor
func NewAuth() api.Auth { return nil }

//molgen:constructor
func NewOrders(ctx context.Context, a api.Auth) (api.OrderBook, error) { return nil, nil }

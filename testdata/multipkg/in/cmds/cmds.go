// Package cmds has the mains.
package cmds

import (
	"context"

	"example.com/multipkg/api"
)

//molgen:main name=batch-job
func Batch(ctx context.Context, o api.OrderBook, a api.Auth) error { return nil }

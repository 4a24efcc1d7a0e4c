// Package a embeds a service of another package: its methods keep their
// options whether or not b is among the packages generated.
package a

import (
	"context"

	"example.com/embedforeign/b"
)

// Full adds Pong.
//
//molgen:service
type Full interface {
	b.Base
	Pong(ctx context.Context) error
}

package svc

import (
	"context"

	amodel "example.com/collide/a/model"
	bmodel "example.com/collide/b/model"
)

//molgen:service
type Mixer interface {
	Mix(ctx context.Context, a amodel.Item, b bmodel.Item) ([]amodel.Item, map[string]bmodel.Item, error)
}

package res

import "context"

//molgen:service
type Users interface {
	Get(ctx context.Context, id string) (string, error)
}

// NewUsersClient clashes with the generated constructor.
func NewUsersClient() {}

var molgenState int

//molgen:service
type Alias = interface {
	M(ctx context.Context) error
}

// Package b declares a service with method options.
package b

import "context"

// Base pings.
//
//molgen:service
type Base interface {
	//molgen:timeout 2s
	//molgen:retry 3
	Ping(ctx context.Context) error
}

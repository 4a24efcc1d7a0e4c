// Package store has a service that embeds another, a struct that embeds a
// time.Time (a BinaryMarshaler, which must not swallow the other fields),
// and an anonymous struct with tags.
package store

import (
	"context"
	"time"
)

// Event embeds time.Time.
type Event struct {
	time.Time
	Name string
}

// Base has methods with options.
//
//molgen:service
type Base interface {
	//molgen:oneway
	Touch(ctx context.Context, key string) error

	//molgen:timeout 250ms
	//molgen:retry 2
	Ping(ctx context.Context) (time.Duration, error)
}

// Store embeds Base: its Touch and Ping keep their options.
//
//molgen:service
type Store interface {
	Base
	Put(ctx context.Context, e Event, meta struct {
		Owner string `json:"owner" db:"owner_id"`
		Size  int
	}) error
}

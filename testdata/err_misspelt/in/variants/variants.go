// Package variants holds lines near a directive: capitals, a space after
// //, both, a misspelt name. Each is reported once, at its position, with
// the directive meant.
package variants

import "context"

// Clock tells the time.
//
//Molgen:service
type Clock interface {
	//MOLGEN:timeout 2s
	Now(ctx context.Context) (int64, error)
	//molgen:TIMEOUT 1s
	Tick(ctx context.Context) error
	// Molgen:retry 2
	Again(ctx context.Context) error
	// molgen:onway
	Fire(ctx context.Context) error
	//Molgen:timeout never
	Slow(ctx context.Context) error
	//molgen:Oneway
	Ping(ctx context.Context) error
}

// Prose that mentions molgen: this is not a directive.
// molgen: the tool, not a directive either.
type Prose struct{}

//Molgen:timeout 1s
func NotAMethod() {}

//Molgen:frobnicate
type Unknown struct{}

// Package deep declares a method whose types nest deeper than molgen's
// wire schema allows (schema.MaxDepth): molgen generate refuses it at the
// method, rather than generate a server that refuses every request.
package deep

import "context"

// Cube nests 101 slices.
type Cube [][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][][]int

// Ok is a pointer chain well within the bounds.
type Ok ****int

// Deep has one method too deep for the wire schema.
//
//molgen:service
type Deep interface {
	Fine(ctx context.Context, v Ok) error
	TooDeep(ctx context.Context, c Cube) error
}

// Package api re-exports an internal type.
package api

import "example.com/shadow/api/internal/impl"

// Point is an alias of an internal type.
type Point = impl.Point

// Package impl is internal: other modules name its types through api's aliases.
package impl

// Point is re-exported by api.
type Point struct{ X, Y int }

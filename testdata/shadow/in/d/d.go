// Package d has the name of a generated local variable.
package d

// T is a plain struct.
type T struct{ N int }

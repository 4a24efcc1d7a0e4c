// Package other is imported under a name the service package also declares.
package other

// Thing is a plain struct.
type Thing struct{ Y int }

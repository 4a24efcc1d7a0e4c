// Package ext holds types from "another package" for molgen's codec tests.
package ext

import (
	"errors"
	"strconv"
	"strings"
)

// Money is an amount in cents; it encodes through its exported field.
type Money struct {
	Cents    int64
	Currency string
}

// Version implements encoding.BinaryMarshaler with a text form.
type Version struct{ major, minor int }

// NewVersion returns major.minor.
func NewVersion(major, minor int) Version { return Version{major, minor} }

// String returns "major.minor".
func (v Version) String() string { return strconv.Itoa(v.major) + "." + strconv.Itoa(v.minor) }

// MarshalBinary writes "major.minor".
func (v Version) MarshalBinary() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalBinary reads "major.minor".
func (v *Version) UnmarshalBinary(b []byte) error {
	a, c, ok := strings.Cut(string(b), ".")
	if !ok {
		return errors.New("ext: version needs a dot")
	}
	var err1, err2 error
	v.major, err1 = strconv.Atoi(a)
	v.minor, err2 = strconv.Atoi(c)
	return errors.Join(err1, err2)
}

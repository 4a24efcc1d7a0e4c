package runtime

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// The lengths where a uvarint gains a byte (and their neighbours): every
// length-prefixed value is checked at each, byte for byte against
// docs/WIRE.md's "Value encoding".
var boundaries = []int{0, 1, 2, 126, 127, 128, 129, 255, 256, 16382, 16383, 16384, 16385, 2097151, 2097152, 2097153}

func uvarint(n int) []byte { return binary.AppendUvarint(nil, uint64(n)) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func decoderOf(t *testing.T, b []byte) *Decoder {
	t.Helper()
	var d Decoder
	d.init(b, DecodeLimits{Max: 1 << 30})
	return &d
}

func finish(t *testing.T, what string, d *Decoder) {
	t.Helper()
	if err := d.Finish(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestStringsAndBytesAtLengthBoundaries: a string is its length then its
// bytes; a []byte is 0 for nil, else its length+1 then its bytes; both
// round trip at every boundary.
func TestStringsAndBytesAtLengthBoundaries(t *testing.T) {
	for _, n := range boundaries {
		s := strings.Repeat("x", n)
		e := NewEncoder(nil)
		e.String(s)
		if want := cat(uvarint(n), []byte(s)); !bytes.Equal(e.Data(), want) {
			t.Fatalf("string of %d bytes: %d bytes written, want %d (prefix % x, want % x)", n, len(e.Data()), len(want), head(e.Data()), head(want))
		}
		d := decoderOf(t, e.Data())
		if got := d.String(); got != s {
			t.Fatalf("string of %d bytes decoded as %d bytes", n, len(got))
		}
		finish(t, fmt.Sprintf("string of %d", n), d)

		b := []byte(s)
		e = NewEncoder(nil)
		e.Bytes(b)
		if want := cat(uvarint(n+1), b); !bytes.Equal(e.Data(), want) {
			t.Fatalf("[]byte of %d: prefix % x, want % x", n, head(e.Data()), head(want))
		}
		d = decoderOf(t, e.Data())
		if got := d.Bytes(); !bytes.Equal(got, b) || got == nil {
			t.Fatalf("[]byte of %d decoded as %d bytes (nil %t)", n, len(got), got == nil)
		}
		finish(t, fmt.Sprintf("[]byte of %d", n), d)
	}
	e := NewEncoder(nil)
	e.Bytes(nil)
	if !bytes.Equal(e.Data(), []byte{0}) {
		t.Fatalf("nil []byte: % x", e.Data())
	}
	if got := decoderOf(t, e.Data()).Bytes(); got != nil {
		t.Fatalf("nil []byte decoded as %v", got)
	}
}

// TestSlicesAndMapsAtLengthBoundaries: a slice or map is 0 for nil, else
// its length+1, then its elements (here bools, one byte each, so that the
// element bytes are known).
func TestSlicesAndMapsAtLengthBoundaries(t *testing.T) {
	for _, n := range boundaries {
		e := NewEncoder(nil)
		e.Len(n, false)
		for i := range n {
			e.Bool(i%2 == 1)
		}
		elems := make([]byte, n)
		for i := range elems {
			elems[i] = byte(i % 2)
		}
		if want := cat(uvarint(n+1), elems); !bytes.Equal(e.Data(), want) {
			t.Fatalf("slice of %d: prefix % x, want % x", n, head(e.Data()), head(want))
		}
		d := decoderOf(t, e.Data())
		if got := d.Len(1); got != n {
			t.Fatalf("slice of %d: length decoded as %d", n, got)
		}
		for i := range n {
			if d.Bool() != (i%2 == 1) {
				t.Fatalf("slice of %d: element %d wrong", n, i)
			}
		}
		finish(t, fmt.Sprintf("slice of %d", n), d)
	}
	e := NewEncoder(nil)
	e.Len(0, true)
	if !bytes.Equal(e.Data(), []byte{0}) {
		t.Fatalf("nil slice: % x", e.Data())
	}
	if got := decoderOf(t, e.Data()).Len(1); got != -1 {
		t.Fatalf("nil slice decoded as length %d, want -1", got)
	}
}

// fieldOf returns a string whose encoding (length, then bytes) is exactly
// size bytes, or false when no string has that size.
func fieldOf(size int) (string, bool) {
	for k := max(size-binary.MaxVarintLen64, 0); k <= size; k++ {
		if len(uvarint(k))+k == size {
			return strings.Repeat("f", k), true
		}
	}
	return "", false
}

// TestStructFramesAtLengthBoundaries: a struct is the length of its
// fields, then the fields, for every length around the boundaries,
// alone and nested in another struct (whose frame then grows by the
// inner frame's longer prefix).
func TestStructFramesAtLengthBoundaries(t *testing.T) {
	for _, n := range boundaries {
		if n == 0 {
			continue // a struct with no fields is Empty, not a frame
		}
		s, ok := fieldOf(n)
		if !ok {
			continue // no string encodes to exactly n bytes
		}
		field := cat(uvarint(len(s)), []byte(s))
		// One struct with one string field.
		e := NewEncoder(nil)
		e.Struct()
		e.String(s)
		e.EndStruct()
		if want := cat(uvarint(n), field); !bytes.Equal(e.Data(), want) {
			t.Fatalf("struct of %d bytes: prefix % x, want % x (%d bytes, want %d)", n, head(e.Data()), head(want), len(e.Data()), len(want))
		}
		d := decoderOf(t, e.Data())
		d.Struct()
		if got := d.String(); got != s {
			t.Fatalf("struct of %d bytes: field decoded as %d bytes", n, len(got))
		}
		d.EndStruct()
		finish(t, fmt.Sprintf("struct of %d", n), d)

		// Nested: outer{inner{s}, true}.
		e = NewEncoder(nil)
		e.Struct()
		e.Struct()
		e.String(s)
		e.EndStruct()
		e.Bool(true)
		e.EndStruct()
		inner := cat(uvarint(n), field)
		outer := cat(inner, []byte{1})
		if want := cat(uvarint(len(outer)), outer); !bytes.Equal(e.Data(), want) {
			t.Fatalf("struct of %d bytes in a struct: prefix % x, want % x", n, head(e.Data()), head(want))
		}
		d = decoderOf(t, e.Data())
		d.Struct()
		d.Struct()
		if got := d.String(); got != s {
			t.Fatalf("nested struct of %d bytes: field decoded as %d bytes", n, len(got))
		}
		d.EndStruct()
		if !d.Bool() {
			t.Fatalf("nested struct of %d bytes: the field after it decoded wrong", n)
		}
		d.EndStruct()
		finish(t, fmt.Sprintf("nested struct of %d", n), d)

		// An older reader that knows no fields skips the frame whole.
		d = decoderOf(t, e.Data())
		d.Struct()
		d.EndStruct()
		finish(t, fmt.Sprintf("struct of %d skipped by an older reader", len(outer)), d)
	}
}

func head(b []byte) []byte {
	if len(b) > 6 {
		return b[:6]
	}
	return b
}

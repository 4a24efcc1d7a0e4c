package runtime

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"
	"unsafe"
)

// ErrCorrupt is the error of a Decoder that met malformed input.
var ErrCorrupt = errors.New("molgen: corrupt message")

// maxDepth bounds the nesting of recursive values, so that a cyclic value
// or a hostile message cannot exhaust the stack.
const maxDepth = 10000

// Message is implemented by generated request and response types.
type Message interface {
	MolgenEncode(*Encoder)
	MolgenDecode(*Decoder)
}

// Encoder appends values in molgen's binary format (see docs/WIRE.md).
// Generated code calls it; its first error sticks and is returned by Err.
type Encoder struct {
	buf    []byte
	frames []int // where the fields of each struct being written start
	depth  int
	err    error
}

// NewEncoder returns an Encoder appending to buf.
func NewEncoder(buf []byte) *Encoder { return &Encoder{buf: buf} }

// Reset empties e for reuse, keeping its buffer.
func (e *Encoder) Reset() { e.buf, e.frames, e.depth, e.err = e.buf[:0], e.frames[:0], 0, nil }

// Data returns the encoded bytes.
func (e *Encoder) Data() []byte { return e.buf }

// Err returns the first error met while encoding.
func (e *Encoder) Err() error { return e.err }

// Bool writes 1 or 0.
func (e *Encoder) Bool(v bool) {
	if v {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
}

// Int64 writes a zig-zag varint.
func (e *Encoder) Int64(v int64) { e.buf = binary.AppendVarint(e.buf, v) }

// Uint64 writes a varint.
func (e *Encoder) Uint64(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }

// Float32 writes the IEEE 754 bits, little endian.
func (e *Encoder) Float32(v float32) {
	e.buf = binary.LittleEndian.AppendUint32(e.buf, math.Float32bits(v))
}

// Float64 writes the IEEE 754 bits, little endian.
func (e *Encoder) Float64(v float64) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(v))
}

// String writes a length and the bytes.
func (e *Encoder) String(v string) {
	e.buf = binary.AppendUvarint(e.buf, uint64(len(v)))
	e.buf = append(e.buf, v...)
}

// Bytes writes a nil-preserving length (0 for nil, len+1 otherwise) and the bytes.
func (e *Encoder) Bytes(v []byte) {
	if v == nil {
		e.buf = append(e.buf, 0)
		return
	}
	e.buf = binary.AppendUvarint(e.buf, uint64(len(v))+1)
	e.buf = append(e.buf, v...)
}

// Raw writes bytes of a length both sides know (byte arrays).
func (e *Encoder) Raw(v []byte) { e.buf = append(e.buf, v...) }

// Len writes a nil-preserving length for a slice or map.
func (e *Encoder) Len(n int, isNil bool) {
	if isNil {
		e.buf = append(e.buf, 0)
		return
	}
	e.buf = binary.AppendUvarint(e.buf, uint64(n)+1)
}

// Empty writes the single byte that stands for a value with no content
// (an empty struct or array), so that every value takes at least one byte.
func (e *Encoder) Empty() { e.buf = append(e.buf, 0) }

// Struct begins a struct value: its fields, written next, are prefixed by
// their length in bytes (a uvarint) when EndStruct ends it, so that a reader
// that knows fewer fields can skip the rest and one that knows more can
// tell that they are missing. Each Struct is paired with an EndStruct.
func (e *Encoder) Struct() {
	e.buf = append(e.buf, 0) // the length, when it is under 128 bytes
	e.frames = append(e.frames, len(e.buf))
}

// EndStruct ends the struct value begun by the matching Struct, writing its
// length in front of its fields.
func (e *Encoder) EndStruct() {
	top := len(e.frames) - 1
	start := e.frames[top]
	e.frames = e.frames[:top]
	if n := len(e.buf) - start; n < 0x80 {
		e.buf[start-1] = byte(n)
		return
	}
	e.longStruct(start)
}

// longStruct writes the length of a struct value of 128 bytes or more.
func (e *Encoder) longStruct(start int) {
	// A longer length takes more bytes: move the fields to make room.
	n := len(e.buf) - start
	var l [binary.MaxVarintLen64]byte
	size := binary.PutUvarint(l[:], uint64(n))
	e.buf = append(e.buf, l[:size-1]...)
	copy(e.buf[start+size-1:], e.buf[start:start+n])
	copy(e.buf[start-1:], l[:size])
}

// Time writes t as a length-prefixed time.Time binary form (instant and
// zone offset; the location name is not kept).
func (e *Encoder) Time(t time.Time) {
	b, err := t.AppendBinary(nil)
	if err != nil {
		e.fail(fmt.Errorf("molgen: encoding time %v: %w", t, err))
		b = nil
	}
	e.buf = binary.AppendUvarint(e.buf, uint64(len(b)))
	e.buf = append(e.buf, b...)
}

// Marshal writes a length-prefixed encoding.BinaryMarshaler value.
func (e *Encoder) Marshal(m encoding.BinaryMarshaler) {
	b, err := m.MarshalBinary()
	if err != nil {
		e.fail(fmt.Errorf("molgen: encoding %T: %w", m, err))
		b = nil
	}
	e.buf = binary.AppendUvarint(e.buf, uint64(len(b)))
	e.buf = append(e.buf, b...)
}

// Enter is called before encoding a value of a recursive type; it reports
// false (and records an error) when values nest too deeply, which usually
// means a cycle. Each successful Enter is paired with Leave.
func (e *Encoder) Enter() bool {
	if e.err != nil {
		return false // stop descending: with several self-references a cycle would otherwise take exponential time
	}
	if e.depth >= maxDepth {
		e.fail(fmt.Errorf("molgen: value nests deeper than %d levels (a cyclic value?)", maxDepth))
		return false
	}
	e.depth++
	return true
}

// Leave ends an Enter.
func (e *Encoder) Leave() { e.depth-- }

func (e *Encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// Decoder reads values written by an Encoder. It never panics on bad input:
// the first problem is recorded, later reads return zero values, and Finish
// reports it. Lengths are checked against the bytes left before anything is
// allocated, and so is the memory that decoding allocates: a message may
// make its reader allocate at most a budget (see DecodeLimits), so that a
// small message cannot ask for much memory (a million one-byte elements of
// a large struct, say).
type Decoder struct {
	buf    []byte
	off    int
	frames []int // where each struct being read ends
	depth  int
	err    error
	budget uint64 // bytes that decoding may still allocate
	small  [8]int // frames of the first levels, without an allocation
}

// DecodeLimits bound the memory that decoding one message may allocate:
// Factor bytes per byte of the message, plus a floor of 4 MiB, and never
// more than Max. The defaults (16 and 256 MiB) leave room for any message
// of the app's own types (the densest, slices of empty values, take 16
// bytes per byte; the floor pays for values nesting thousands of levels
// deep) and hold a hostile 1 MB request to 20 MB.
type DecodeLimits struct {
	Factor int
	Max    int64
}

// Default decode limits.
const (
	DefaultDecodeFactor = 16
	DefaultMaxDecode    = 256 << 20
	decodeFloor         = 4 << 20
)

// budget returns the bytes that decoding a message of size bytes may
// allocate under l (zero fields take their defaults).
func (l DecodeLimits) budget(size int) uint64 {
	factor, max := uint64(l.Factor), uint64(l.Max)
	if l.Factor <= 0 {
		factor = DefaultDecodeFactor
	}
	if l.Max <= 0 {
		max = DefaultMaxDecode
	}
	return min(uint64(size)*factor+decodeFloor, max)
}

// NewDecoder returns a Decoder reading buf, with the default DecodeLimits.
func NewDecoder(buf []byte) *Decoder {
	d := new(Decoder)
	d.init(buf, DecodeLimits{})
	return d
}

// init makes d a new Decoder reading buf within limits.
func (d *Decoder) init(buf []byte, limits DecodeLimits) {
	*d = Decoder{buf: buf, budget: limits.budget(len(buf))}
	d.frames = d.small[:0]
}

// charge takes n values of size bytes each from the budget, reporting
// false (and failing the decoder) when the budget cannot pay for them or
// the decoder has already failed: the caller then allocates nothing.
func (d *Decoder) charge(n uint64, size uintptr) bool {
	if d.err != nil {
		return false
	}
	hi, cost := bits.Mul64(n, uint64(size))
	if hi != 0 || cost > d.budget {
		d.fail("decoding would allocate over %d more bytes for %d bytes of message (the decode memory limit: see runtime.DecodeLimits)", d.budget, len(d.buf))
		return false
	}
	d.budget -= cost
	return true
}

// MakeSlice returns a slice of n elements for generated decoders, once
// the decoder's memory budget pays for it; an empty one when it cannot
// (the decoder has failed).
func MakeSlice[T any](d *Decoder, n int) []T {
	var zero T
	if n < 0 || !d.charge(uint64(n), unsafe.Sizeof(zero)) {
		return []T{}
	}
	return make([]T, n)
}

// MakeMap returns a map with room for n entries for generated decoders,
// once the decoder's memory budget pays for it; an empty one when it
// cannot (the decoder has failed).
func MakeMap[K comparable, V any](d *Decoder, n int) map[K]V {
	var k K
	var v V
	// A map takes about 8/7 of its slots' bytes (a control byte each), and
	// a little for its header.
	if n < 0 || !d.charge(uint64(n), (unsafe.Sizeof(k)+unsafe.Sizeof(v)+1)*8/7+1) || !d.charge(1, mapHeader) {
		return map[K]V{}
	}
	return make(map[K]V, n)
}

const mapHeader = 64

// New returns a new zero T for generated decoders of pointers, charging
// the decoder's memory budget for it.
func New[T any](d *Decoder) *T {
	var zero T
	d.charge(1, unsafe.Sizeof(zero))
	return new(T)
}

// Err returns the first error met while decoding.
func (d *Decoder) Err() error { return d.err }

// Finish returns the decoding error, or an error if bytes are left over.
func (d *Decoder) Finish() error {
	if d.err == nil && d.off != len(d.buf) {
		d.fail("%d unexpected trailing bytes", len(d.buf)-d.off)
	}
	return d.err
}

func (d *Decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at byte %d: %s", ErrCorrupt, d.off, fmt.Sprintf(format, args...))
	}
	d.off = len(d.buf)
}

func (d *Decoder) remaining() int { return len(d.buf) - d.off }

func (d *Decoder) byte1() byte {
	if d.off >= len(d.buf) {
		d.fail("unexpected end of data")
		return 0
	}
	b := d.buf[d.off]
	d.off++
	return b
}

// Bool reads a bool.
func (d *Decoder) Bool() bool {
	switch d.byte1() {
	case 0:
		return false
	case 1:
		return true
	}
	if d.err == nil {
		d.fail("invalid bool")
	}
	return false
}

// Int64 reads a zig-zag varint.
func (d *Decoder) Int64() int64 {
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		d.fail("invalid varint")
		return 0
	}
	d.off += n
	return v
}

func (d *Decoder) intN(bits uint) int64 {
	v := d.Int64()
	if bits < 64 && (v < -1<<(bits-1) || v >= 1<<(bits-1)) {
		d.fail("value %d overflows int%d", v, bits)
		return 0
	}
	return v
}

// Int reads an int.
func (d *Decoder) Int() int { return int(d.intN(strconvIntSize)) }

// Int8 reads an int8.
func (d *Decoder) Int8() int8 { return int8(d.intN(8)) }

// Int16 reads an int16.
func (d *Decoder) Int16() int16 { return int16(d.intN(16)) }

// Int32 reads an int32.
func (d *Decoder) Int32() int32 { return int32(d.intN(32)) }

// Uint64 reads a varint.
func (d *Decoder) Uint64() uint64 {
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.fail("invalid varint")
		return 0
	}
	d.off += n
	return v
}

func (d *Decoder) uintN(bits uint) uint64 {
	v := d.Uint64()
	if bits < 64 && v >= 1<<bits {
		d.fail("value %d overflows uint%d", v, bits)
		return 0
	}
	return v
}

// Uint reads a uint.
func (d *Decoder) Uint() uint { return uint(d.uintN(strconvIntSize)) }

// Uint8 reads a uint8.
func (d *Decoder) Uint8() uint8 { return uint8(d.uintN(8)) }

// Uint16 reads a uint16.
func (d *Decoder) Uint16() uint16 { return uint16(d.uintN(16)) }

// Uint32 reads a uint32.
func (d *Decoder) Uint32() uint32 { return uint32(d.uintN(32)) }

// Uintptr reads a uintptr.
func (d *Decoder) Uintptr() uintptr { return uintptr(d.uintN(strconvIntSize)) }

// Float32 reads a float32.
func (d *Decoder) Float32() float32 {
	if d.remaining() < 4 {
		d.fail("unexpected end of data")
		return 0
	}
	v := binary.LittleEndian.Uint32(d.buf[d.off:])
	d.off += 4
	return math.Float32frombits(v)
}

// Float64 reads a float64.
func (d *Decoder) Float64() float64 {
	if d.remaining() < 8 {
		d.fail("unexpected end of data")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.buf[d.off:])
	d.off += 8
	return math.Float64frombits(v)
}

// size reads a length and checks that n items of at least min bytes each
// fit in what is left.
func (d *Decoder) size(min int) int {
	n := d.Uint64()
	if d.err != nil {
		return 0
	}
	if min < 1 {
		min = 1
	}
	if n > uint64(d.remaining()/min) {
		d.fail("length %d exceeds the %d bytes left", n, d.remaining())
		return 0
	}
	return int(n)
}

// String reads a string.
func (d *Decoder) String() string {
	n := d.size(1)
	if n > 0 && !d.charge(uint64(n), 1) {
		return ""
	}
	s := string(d.buf[d.off : d.off+n])
	d.off += n
	return s
}

// Bytes reads a byte slice (nil kept); the result does not alias the input.
func (d *Decoder) Bytes() []byte {
	n := d.Len(1)
	if n < 0 {
		return nil
	}
	if !d.charge(uint64(n), 1) {
		return []byte{}
	}
	b := make([]byte, n)
	copy(b, d.buf[d.off:])
	d.off += n
	return b
}

// Raw fills v from the next len(v) bytes (byte arrays).
func (d *Decoder) Raw(v []byte) {
	if d.remaining() < len(v) {
		d.fail("unexpected end of data")
		return
	}
	d.off += copy(v, d.buf[d.off:])
}

// Len reads a nil-preserving length: -1 means nil. min is the smallest
// encoded size of one element, used to refuse lengths the input cannot hold.
func (d *Decoder) Len(min int) int {
	n := d.Uint64()
	if d.err != nil {
		return 0
	}
	if n == 0 {
		return -1
	}
	n--
	if min < 1 {
		min = 1
	}
	if n > uint64(d.remaining()/min) {
		d.fail("length %d exceeds the %d bytes left", n, d.remaining())
		return 0
	}
	return int(n)
}

// Empty reads the byte of a value with no content.
func (d *Decoder) Empty() {
	if d.byte1() != 0 && d.err == nil {
		d.fail("invalid empty value")
	}
}

// Struct begins reading a struct value written by Encoder.Struct: it reads
// the length of its fields. Generated code reads each field it knows while
// More reports that the value has more, leaves the others at their zero
// value, and calls EndStruct.
func (d *Decoder) Struct() {
	n := d.size(1)
	d.frames = append(d.frames, d.off+n)
}

// More reports whether the struct value being read has fields left: false
// once the fields its writer knew are read (a writer of an older version
// of the type sent fewer).
func (d *Decoder) More() bool { return d.off < d.frames[len(d.frames)-1] }

// EndStruct ends the struct value begun by the matching Struct, skipping
// the fields that its writer knew and this reader does not (a writer of a
// newer version of the type sent more).
func (d *Decoder) EndStruct() {
	top := len(d.frames) - 1
	end := d.frames[top]
	d.frames = d.frames[:top]
	if d.off > end {
		d.overrun(end)
		return
	}
	d.off = end
}

func (d *Decoder) overrun(end int) {
	d.fail("a struct's fields overrun its length by %d bytes", d.off-end)
}

// Time reads a time.Time.
func (d *Decoder) Time() time.Time {
	n := d.size(1)
	var t time.Time
	if d.err != nil {
		return t
	}
	if err := t.UnmarshalBinary(d.buf[d.off : d.off+n]); err != nil {
		d.fail("invalid time: %v", err)
		return time.Time{}
	}
	d.off += n
	return t
}

// Unmarshal reads a length-prefixed encoding.BinaryUnmarshaler value.
func (d *Decoder) Unmarshal(u encoding.BinaryUnmarshaler) {
	n := d.size(1)
	if !d.charge(uint64(n), 1) {
		return
	}
	b := make([]byte, n)
	copy(b, d.buf[d.off:])
	if err := u.UnmarshalBinary(b); err != nil {
		d.fail("%T: %v", u, err)
		return
	}
	d.off += n
}

// Enter is called before decoding a value of a recursive type; it reports
// false when values nest too deeply. Each successful Enter is paired with Leave.
func (d *Decoder) Enter() bool {
	if d.err != nil {
		return false
	}
	if d.depth >= maxDepth {
		d.fail("value nests deeper than %d levels", maxDepth)
		return false
	}
	// Each level grows the goroutine's stack by a few generated frames:
	// the budget pays for them as for memory on the heap.
	if !d.charge(1, stackPerLevel) {
		return false
	}
	d.depth++
	return true
}

// stackPerLevel is about the stack that a level of a recursive value takes
// in generated decoders (measured by TestDecodeStackPerLevel in
// internal/testsvc: about 115 bytes).
const stackPerLevel = 128

// Leave ends an Enter.
func (d *Decoder) Leave() { d.depth-- }

const strconvIntSize = 32 << (^uint(0) >> 63)

package testsvc

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/testsvc/ext"
	"github.com/molgen/molgen/runtime"
)

// The tests in this file pin molgen's wire format to docs/WIRE.md: every
// expected byte below is written by hand from the document's "Value
// encoding" table, never computed by the code under test. A change of the
// format that is symmetric (encoder and decoder changed alike, so that
// round trips still pass) changes these bytes and fails here.

// wireSeg is one value of a golden message: what it is, and its bytes in
// hex as docs/WIRE.md says to write them. A struct value lists its fields
// in fields instead: its bytes are the uvarint length of theirs, then
// theirs (docs/WIRE.md: a struct is framed by its length).
type wireSeg struct {
	what   string
	hex    string
	fields []wireSeg
}

// flatSegs replaces each struct value by its length and its fields.
func flatSegs(t *testing.T, segs []wireSeg) []wireSeg {
	t.Helper()
	var out []wireSeg
	for _, s := range segs {
		if s.fields == nil {
			out = append(out, s)
			continue
		}
		fields := flatSegs(t, s.fields)
		n := len(wireBytes(t, fields))
		out = append(out, wireSeg{what: fmt.Sprintf("%s: length %d", s.what, n), hex: hex.EncodeToString(binary.AppendUvarint(nil, uint64(n)))})
		for _, f := range fields {
			out = append(out, wireSeg{what: s.what + " > " + f.what, hex: f.hex})
		}
	}
	return out
}

// wireBytes concatenates the segments.
func wireBytes(t *testing.T, segs []wireSeg) []byte {
	t.Helper()
	var out []byte
	for _, s := range flatSegs(t, segs) {
		b, err := hex.DecodeString(strings.Join(strings.Fields(s.hex), ""))
		if err != nil {
			t.Fatalf("bad hex in the test for %s: %v", s.what, err)
		}
		out = append(out, b...)
	}
	return out
}

// wireDiff names the segment where got first differs from the golden bytes.
func wireDiff(t *testing.T, segs []wireSeg, got []byte) string {
	t.Helper()
	off := 0
	for _, s := range flatSegs(t, segs) {
		want := wireBytes(t, []wireSeg{s})
		end := off + len(want)
		if end > len(got) || !bytes.Equal(got[off:end], want) {
			g := got[min(off, len(got)):min(end, len(got))]
			return fmt.Sprintf("at byte %d, %s: got % x, want % x", off, s.what, g, want)
		}
		off = end
	}
	return fmt.Sprintf("%d trailing bytes % x", len(got)-off, got[off:])
}

// checkWire encodes in with its generated codec and compares the bytes with
// segs; then it decodes the hand-written bytes into out and compares the
// value with in (same, when non-nil, decides equality).
func checkWire[M runtime.Message](t *testing.T, in, out M, segs []wireSeg, same func(a, b M) bool) {
	t.Helper()
	want := wireBytes(t, segs)
	e := runtime.NewEncoder(nil)
	in.MolgenEncode(e)
	if err := e.Err(); err != nil {
		t.Fatalf("encoding %T: %v", in, err)
	}
	if got := e.Data(); !bytes.Equal(got, want) {
		t.Errorf("%T encodes other bytes than docs/WIRE.md says: %s\n got: % x\nwant: % x", in, wireDiff(t, segs, got), got, want)
	}
	d := runtime.NewDecoder(want)
	out.MolgenDecode(d)
	if err := d.Finish(); err != nil {
		t.Fatalf("decoding the hand-written bytes of %T: %v", in, err)
	}
	if same == nil {
		same = func(a, b M) bool { return reflect.DeepEqual(a, b) }
	}
	if !same(in, out) {
		t.Errorf("the hand-written bytes of %T decode to another value:\n got: %+v\nwant: %+v", in, out, in)
	}
}

// The time.Time values used below, as Time.MarshalBinary writes them (Go's
// documented version-1 form: version 1, seconds since January 1 of year 1
// as 8 bytes big endian, nanoseconds as 4 bytes big endian, zone offset in
// minutes as 2 bytes big endian, -1 for UTC), after docs/WIRE.md's uvarint
// length 15 = 0f.
const (
	// time.Time{}: second 0 of year 1, UTC.
	hexZeroTime = "0f  01  00 00 00 00 00 00 00 00  00 00 00 00  ff ff"
	// 1970-01-01T00:00:00Z: 62135596800 s = 0x0e7791f700 after year 1.
	hexUnixEpochUTC = "0f  01  00 00 00 0e 77 91 f7 00  00 00 00 00  ff ff"
	// 1970-01-01T01:00:00.000000005+01:00: the same second, 5 ns, +60 min.
	hexUnixEpochPlus1h = "0f  01  00 00 00 0e 77 91 f7 00  00 00 00 05  00 3c"
)

// wireKinds is a Kinds with small, distinct values, whose encoding is
// written by hand in wireKindsBytes.
func wireKinds() Kinds {
	k := Kinds{
		Base:    Base{ID: 300},
		Bool:    true,
		Int:     -300,
		Int8:    math.MinInt8,
		Int16:   1,
		Int32:   -2,
		Int64:   64,
		Uint:    1,
		Uint8:   255,
		Uint16:  128,
		Uint32:  2,
		Uint64:  math.MaxUint64,
		Uintptr: 3,
		Float32: 1.5,
		Float64: 0.1,
		String:  "hé",
		Bytes:   []byte{0xde, 0xad},
		Blob:    Blob{},
		Level:   -3,
		Wait:    time.Microsecond,
		When:    time.Date(1970, 1, 1, 1, 0, 0, 5, time.FixedZone("", 3600)),
		Hash:    [4]byte{1, 2, 3, 4},
		Triple:  [3]int16{-1, 0, 1},
		Names:   Names{"a"},
		Matrix:  [][]float64{nil, {}},
		ByPoint: map[Point]string{{X: 1, Y: -1}: "p"},
		Nested:  map[string][]*Point{"k": {nil, {X: 0, Y: 64}}},
		Ptr:     ptr(-1),
		PtrPtr:  new(*string),
		Money:   ext.Money{Cents: -1999, Currency: "EUR"},
		Version: ext.NewVersion(1, 22),
		Ver:     ptr(ext.NewVersion(0, 1)),
		Tree:    &Tree{Label: "r", Children: []Tree{{Label: "c"}}},
		A:       A{Name: "a", Bs: map[string]*B{"b": {N: 300}}},
		Page:    Page[Point]{Items: []Point{{X: 2, Y: 3}}, Next: ptr("n")},
		Pages:   []Page[ext.Money]{},
		Event:   Event{Name: "e"},
		Set:     map[Point]struct{}{{}: {}},
		Units:   []struct{}{{}},
	}
	k.Anon.A = 7
	k.Tagged.X = -64
	return k
}

// wireKindsBytes is wireKinds() encoded by hand, field by field in
// declaration order (docs/WIRE.md: a struct is the length of its fields,
// then its fields in order, with no tags).
var wireKindsBytes = []wireSeg{{what: "Kinds", fields: []wireSeg{
	{what: "Base", fields: []wireSeg{
		{what: "ID uint64 300: uvarint 0b10_0101100", hex: "ac 02"},
		{what: "Created time.Time{}", hex: hexZeroTime},
	}},
	{what: "Bool true", hex: "01"},
	{what: "Int -300: zig-zag 599 = 0x257, varint", hex: "d7 04"},
	{what: "Int8 -128: zig-zag 255", hex: "ff 01"},
	{what: "Int16 1: zig-zag 2", hex: "02"},
	{what: "Int32 -2: zig-zag 3", hex: "03"},
	{what: "Int64 64: zig-zag 128, two bytes", hex: "80 01"},
	{what: "Uint 1", hex: "01"},
	{what: "Uint8 255: uvarint", hex: "ff 01"},
	{what: "Uint16 128: uvarint", hex: "80 01"},
	{what: "Uint32 2", hex: "02"},
	{what: "Uint64 max: ten-byte uvarint", hex: "ff ff ff ff ff ff ff ff ff 01"},
	{what: "Uintptr 3", hex: "03"},
	{what: "Float32 1.5 = 0x3fc00000, little endian", hex: "00 00 c0 3f"},
	{what: "Float64 0.1 = 0x3fb999999999999a, little endian", hex: "9a 99 99 99 99 99 b9 3f"},
	{what: `String "hé": length 3, UTF-8`, hex: "03 68 c3 a9"},
	{what: "Bytes {de ad}: len+1 = 3", hex: "03 de ad"},
	{what: "Blob (named []byte) empty, not nil: len+1 = 1", hex: "01"},
	{what: "Level (named int8) -3: zig-zag 5", hex: "05"},
	{what: "Wait time.Duration 1µs = 1000 ns: zig-zag 2000 = 0x7d0", hex: "d0 0f"},
	{what: "When 1970-01-01T01:00:00.000000005+01:00", hex: hexUnixEpochPlus1h},
	{what: "Hash [4]byte: the 4 bytes", hex: "01 02 03 04"},
	{what: "Triple [3]int16{-1,0,1}: 3 varints, no length", hex: "01 00 02"},
	{what: "None [0]int: a single 0", hex: "00"},
	{what: `Names (named []string) {"a"}: len+1 = 2, "a"`, hex: "02 01 61"},
	{what: "Matrix [][]float64{nil, {}}: len+1 = 3, nil = 0, empty = 1", hex: "03 00 01"},
	{what: `ByPoint map[Point]string{{1,-1}: "p"}: len+1 = 2`, hex: "02"},
	{what: "key Point{1,-1}", fields: []wireSeg{{what: "X 1", hex: "02"}, {what: "Y -1", hex: "01"}}},
	{what: `value "p"`, hex: "01 70"},
	{what: `Nested map[string][]*Point{"k": {nil, &{0,64}}}: len+1, "k", len+1 = 3, nil, non-nil`, hex: "02 01 6b 03 00 01"},
	{what: "Point{0,64}", fields: []wireSeg{{what: "X 0", hex: "00"}, {what: "Y 64: zig-zag 128", hex: "80 01"}}},
	{what: "Ptr *int to -1: 1, zig-zag 1", hex: "01 01"},
	{what: "PtrPtr **string to a nil *string: 1, 0", hex: "01 00"},
	{what: "Anon struct{A int; B []string}{7, nil}", fields: []wireSeg{{what: "A 7: zig-zag 14", hex: "0e"}, {what: "B nil", hex: "00"}}},
	{what: "Empty struct{}: length 0", fields: []wireSeg{}},
	{what: `Money ext.Money{-1999, "EUR"}`, fields: []wireSeg{{what: "Cents -1999: zig-zag 3997 = 0xf9d", hex: "9d 1f"}, {what: `Currency "EUR"`, hex: "03 45 55 52"}}},
	{what: `Version ext.Version 1.22 (BinaryMarshaler): length 4, "1.22"`, hex: "04 31 2e 32 32"},
	{what: `Ver *ext.Version to 0.1: 1, length 3, "0.1"`, hex: "01 03 30 2e 31"},
	{what: "Tree *Tree: non-nil", hex: "01"},
	{what: `Tree{"r", nil, [{"c", nil, nil}]}`, fields: []wireSeg{
		{what: `Label "r"`, hex: "01 72"},
		{what: "Left nil", hex: "00"},
		{what: "Children: len+1 = 2", hex: "02"},
		{what: `Tree{"c", nil, nil}`, fields: []wireSeg{{what: `Label "c"`, hex: "01 63"}, {what: "Left nil", hex: "00"}, {what: "Children nil", hex: "00"}}},
	}},
	{what: `A{"a", {"b": &B{nil, 300}}}`, fields: []wireSeg{
		{what: `Name "a"`, hex: "01 61"},
		{what: `Bs: len+1 = 2, "b", non-nil`, hex: "02 01 62 01"},
		{what: "B{nil, 300}", fields: []wireSeg{{what: "Back nil", hex: "00"}, {what: "N uvarint 300", hex: "ac 02"}}},
	}},
	{what: `Page Page[Point]{[{2,3}], &"n"}`, fields: []wireSeg{
		{what: "Items: len+1 = 2", hex: "02"},
		{what: "Point{2,3}", fields: []wireSeg{{what: "X zig-zag 4", hex: "04"}, {what: "Y zig-zag 6", hex: "06"}}},
		{what: `Next: 1, "n"`, hex: "01 01 6e"},
	}},
	{what: "Pages []Page[ext.Money]{}: empty, len+1 = 1", hex: "01"},
	{what: `Event{time.Time{}, "e"}`, fields: []wireSeg{
		{what: "Time (embedded time.Time) time.Time{}", hex: hexZeroTime},
		{what: `Name "e"`, hex: "01 65"},
	}},
	{what: "Set map[Point]struct{}{{0,0}: {}}: len+1 = 2", hex: "02"},
	{what: "key Point{0,0}", fields: []wireSeg{{what: "X", hex: "00"}, {what: "Y", hex: "00"}}},
	{what: "value struct{}{}: length 0", fields: []wireSeg{}},
	{what: "Units []struct{}{{}}: len+1 = 2", hex: "02"},
	{what: "struct{}{}: length 0", fields: []wireSeg{}},
	{what: "Tagged", fields: []wireSeg{{what: "X -64: zig-zag 127", hex: "7f"}}},
}}}

// wireZeroKindsBytes is Kinds{} encoded by hand: nil slices, maps and
// pointers are 0, zero numbers are 0, fixed-size values keep their size.
var wireZeroKindsBytes = []wireSeg{{what: "Kinds", fields: []wireSeg{
	{what: "Base", fields: []wireSeg{{what: "ID 0", hex: "00"}, {what: "Created", hex: hexZeroTime}}},
	{what: "Bool false", hex: "00"},
	{what: "Int … Uintptr: 11 zero varints", hex: "00 00 00 00 00 00 00 00 00 00 00"},
	{what: "Float32 0", hex: "00 00 00 00"},
	{what: "Float64 0", hex: "00 00 00 00 00 00 00 00"},
	{what: `String ""`, hex: "00"},
	{what: "Bytes nil", hex: "00"},
	{what: "Blob nil", hex: "00"},
	{what: "Level 0", hex: "00"},
	{what: "Wait 0", hex: "00"},
	{what: "When", hex: hexZeroTime},
	{what: "Hash", hex: "00 00 00 00"},
	{what: "Triple", hex: "00 00 00"},
	{what: "None [0]int", hex: "00"},
	{what: "Names nil", hex: "00"},
	{what: "Matrix nil", hex: "00"},
	{what: "ByPoint nil", hex: "00"},
	{what: "Nested nil", hex: "00"},
	{what: "Ptr nil", hex: "00"},
	{what: "PtrPtr nil", hex: "00"},
	{what: "Anon {0, nil}", fields: []wireSeg{{what: "A", hex: "00"}, {what: "B", hex: "00"}}},
	{what: "Empty", fields: []wireSeg{}},
	{what: `Money {0, ""}`, fields: []wireSeg{{what: "Cents", hex: "00"}, {what: "Currency", hex: "00"}}},
	{what: `Version zero: MarshalBinary "0.0"`, hex: "03 30 2e 30"},
	{what: "Ver nil", hex: "00"},
	{what: "Tree nil", hex: "00"},
	{what: `A {"", nil}`, fields: []wireSeg{{what: "Name", hex: "00"}, {what: "Bs", hex: "00"}}},
	{what: "Page {nil, nil}", fields: []wireSeg{{what: "Items", hex: "00"}, {what: "Next", hex: "00"}}},
	{what: "Pages nil", hex: "00"},
	{what: "Event", fields: []wireSeg{{what: "Time", hex: hexZeroTime}, {what: `Name ""`, hex: "00"}}},
	{what: "Set nil", hex: "00"},
	{what: "Units nil", hex: "00"},
	{what: "Tagged", fields: []wireSeg{{what: "X 0", hex: "00"}}},
}}}

// sameKindsRequest compares two Kinds requests; time.Time fields compare as
// instants with their zone offset (decoding may pick time.Local for an
// offset that matches the local zone's).
func sameKindsRequest(a, b *molgenRequest_Codec_Kinds) bool {
	x, y := a.A0, b.A0
	_, ox := x.When.Zone()
	_, oy := y.When.Zone()
	if !x.When.Equal(y.When) || ox != oy {
		return false
	}
	x.When, y.When = time.Time{}, time.Time{}
	return reflect.DeepEqual(x, y)
}

// TestWireEveryKindMatchesDoc guards the value encoding of docs/WIRE.md for
// every kind of its table, as the generated codec of Codec.Kinds writes and
// reads it: a changed byte order, length form, field order, zig-zag, nil
// marker or time/BinaryMarshaler framing fails here even when encoder and
// decoder change alike.
func TestWireEveryKindMatchesDoc(t *testing.T) {
	t.Run("values", func(t *testing.T) {
		checkWire(t, &molgenRequest_Codec_Kinds{A0: wireKinds()}, &molgenRequest_Codec_Kinds{}, wireKindsBytes, sameKindsRequest)
	})
	t.Run("zero", func(t *testing.T) {
		checkWire(t, &molgenRequest_Codec_Kinds{}, &molgenRequest_Codec_Kinds{}, wireZeroKindsBytes, sameKindsRequest)
	})
}

// TestWireMessagesMatchDoc guards the encoding of whole requests and
// responses: the arguments after the context (results before the error),
// in order, with no framing, as docs/WIRE.md says.
func TestWireMessagesMatchDoc(t *testing.T) {
	t.Run("Calc.Add request", func(t *testing.T) {
		checkWire(t, &molgenRequest_Calc_Add{A0: -1, A1: 150}, &molgenRequest_Calc_Add{}, []wireSeg{
			{what: "a int -1: zig-zag 1", hex: "01"},
			{what: "b int 150: zig-zag 300", hex: "ac 02"},
		}, nil)
	})
	t.Run("Calc.Add response", func(t *testing.T) {
		checkWire(t, &molgenResponse_Calc_Add{R0: 149}, &molgenResponse_Calc_Add{}, []wireSeg{
			{what: "int 149: zig-zag 298 = 0x12a", hex: "aa 02"},
		}, nil)
	})
	t.Run("Calc.Sleep request", func(t *testing.T) {
		checkWire(t, &molgenRequest_Calc_Sleep{A0: -time.Nanosecond}, &molgenRequest_Calc_Sleep{}, []wireSeg{
			{what: "time.Duration -1ns: as int64, zig-zag 1", hex: "01"},
		}, nil)
	})
	t.Run("Calc.Deadline response", func(t *testing.T) {
		checkWire(t, &molgenResponse_Calc_Deadline{R0: time.Unix(0, 0).UTC()}, &molgenResponse_Calc_Deadline{}, []wireSeg{
			{what: "time.Time 1970-01-01T00:00:00Z", hex: hexUnixEpochUTC},
		}, nil)
	})
	t.Run("Calc.Echo request", func(t *testing.T) {
		checkWire(t, &molgenRequest_Calc_Echo{A0: Fragile{S: "hi"}}, &molgenRequest_Calc_Echo{}, []wireSeg{
			{what: `Fragile{"hi"} (BinaryMarshaler): length 2, "hi"`, hex: "02 68 69"},
		}, nil)
	})
	t.Run("Codec.Many request", func(t *testing.T) {
		checkWire(t, &molgenRequest_Codec_Many{A0: -1, A1: "b", A2: []Kinds{}, A3: map[Level]Blob{1: Blob("x")}}, &molgenRequest_Codec_Many{}, []wireSeg{
			{what: "a int -1", hex: "01"},
			{what: `b string "b"`, hex: "01 62"},
			{what: "c []Kinds empty: len+1 = 1", hex: "01"},
			{what: `d map[Level]Blob{1: "x"}: len+1 = 2, key zig-zag 2, value len+1 = 2, "x"`, hex: "02 02 02 78"},
		}, nil)
	})
	t.Run("Codec.Many response", func(t *testing.T) {
		checkWire(t, &molgenResponse_Codec_Many{R3: map[Level]Blob{-1: nil}}, &molgenResponse_Codec_Many{}, []wireSeg{
			{what: "int 0", hex: "00"},
			{what: `string ""`, hex: "00"},
			{what: "[]Kinds nil", hex: "00"},
			{what: "map[Level]Blob{-1: nil}: len+1 = 2, key zig-zag 1, nil value", hex: "02 01 00"},
		}, nil)
	})
	t.Run("Codec.Many nil map", func(t *testing.T) {
		checkWire(t, &molgenRequest_Codec_Many{}, &molgenRequest_Codec_Many{}, []wireSeg{
			{what: "a, b, c (nil), d (nil)", hex: "00 00 00 00"},
		}, nil)
	})
	t.Run("Codec.Tree request nil", func(t *testing.T) {
		checkWire(t, &molgenRequest_Codec_Tree{}, &molgenRequest_Codec_Tree{}, []wireSeg{
			{what: "*Tree nil", hex: "00"},
		}, nil)
	})
	t.Run("Codec.Nothing request", func(t *testing.T) {
		checkWire(t, &molgenRequest_Codec_Nothing{}, &molgenRequest_Codec_Nothing{}, nil, nil)
	})
}

// concatBytes is Calc.Concat("a", "bc", "def") as docs/WIRE.md writes it:
// three strings of one type, told apart only by their order.
var concatBytes = []wireSeg{
	{what: `a "a"`, hex: "01 61"},
	{what: `b "bc"`, hex: "02 62 63"},
	{what: `c "def"`, hex: "03 64 65 66"},
}

// splitBytes is the reply of Calc.Split: two strings, in order.
var splitBytes = []wireSeg{
	{what: `before "x"`, hex: "01 78"},
	{what: `after "yz"`, hex: "02 79 7a"},
}

// orderCalc records the arguments Concat and Split were called with.
type orderCalc struct {
	Calc     // nil: only Concat and Split are called
	concat   []string
	splitArg string
}

func (c *orderCalc) Concat(ctx context.Context, a, b, x string) (string, error) {
	c.concat = []string{a, b, x}
	return "ok", nil
}

func (c *orderCalc) Split(ctx context.Context, s string) (string, string, error) {
	c.splitArg = s
	return "x", "yz", nil
}

// TestWireSameTypedArgumentsKeepTheirOrder guards the order of arguments
// and results of one type (Calc.Concat's three strings, Calc.Split's two
// results): the bytes are the hand-written ones, and the generated handler
// gives each decoded value to the parameter it was sent for.
func TestWireSameTypedArgumentsKeepTheirOrder(t *testing.T) {
	checkWire(t, &molgenRequest_Calc_Concat{A0: "a", A1: "bc", A2: "def"}, &molgenRequest_Calc_Concat{}, concatBytes, nil)
	checkWire(t, &molgenRequest_Calc_Split{A0: "x|yz"}, &molgenRequest_Calc_Split{}, []wireSeg{{what: `s "x|yz"`, hex: "04 78 7c 79 7a"}}, nil)
	checkWire(t, &molgenResponse_Calc_Split{R0: "x", R1: "yz"}, &molgenResponse_Calc_Split{}, splitBytes, nil)

	impl := &orderCalc{}
	resp, err := molgenHandle_Calc_Concat(context.Background(), impl, runtime.NewDecoder(wireBytes(t, concatBytes)))
	if err != nil {
		t.Fatalf("Concat handler: %v", err)
	}
	if want := []string{"a", "bc", "def"}; !reflect.DeepEqual(impl.concat, want) {
		t.Errorf("Concat's handler called the implementation with %q, want %q", impl.concat, want)
	}
	if r, ok := resp.(*molgenResponse_Calc_Concat); !ok || r.R0 != "ok" {
		t.Errorf("Concat's handler answered %#v", resp)
	}

	resp, err = molgenHandle_Calc_Split(context.Background(), impl, runtime.NewDecoder(wireBytes(t, []wireSeg{{what: `"x|yz"`, hex: "04 78 7c 79 7a"}})))
	if err != nil {
		t.Fatalf("Split handler: %v", err)
	}
	if impl.splitArg != "x|yz" {
		t.Errorf("Split's handler called the implementation with %q", impl.splitArg)
	}
	e := runtime.NewEncoder(nil)
	resp.MolgenEncode(e)
	if want := wireBytes(t, splitBytes); !bytes.Equal(e.Data(), want) {
		t.Errorf("Split's handler answered % x, want % x (before, then after)", e.Data(), want)
	}
	var back molgenResponse_Calc_Split
	back.MolgenDecode(runtime.NewDecoder(wireBytes(t, splitBytes)))
	if back.R0 != "x" || back.R1 != "yz" {
		t.Errorf("Split's reply decodes to (%q, %q), want (\"x\", \"yz\")", back.R0, back.R1)
	}
}

// TestWireSchemasMatchDoc guards the molgen-schema header's value: each
// method's schema is its shape written as docs/WIRE.md says (basic kinds
// by name, defined types as their underlying type, time, bin(path.Name)
// for BinaryMarshalers, @k for recursion).
func TestWireSchemasMatchDoc(t *testing.T) {
	shapes := map[*runtime.ServiceDesc]map[string]string{
		&molgenDesc_Calc: {
			"Add":      "(int,int)(int)",
			"Sqrt":     "(int)(int)",
			"Sleep":    "(int64)()", // time.Duration is an int64
			"Count":    "()()",
			"Total":    "()(int64)",
			"Concat":   "(string,string,string)(string)",
			"Split":    "(string)(string,string)",
			"Deadline": "()(time)",
			"Echo":     "(bin(github.com/molgen/molgen/internal/testsvc.Fragile))(bin(github.com/molgen/molgen/internal/testsvc.Fragile))",
		},
		&molgenDesc_Codec: {
			"Tree":    "(*{string,*@1,[]@1})(*{string,*@1,[]@1})",
			"Nothing": "()()",
		},
	}
	for desc, methods := range shapes {
		for name, shape := range methods {
			var got string
			for _, m := range desc.Methods {
				if m.Name == name {
					got = m.Schema
				}
			}
			if got != shape {
				t.Errorf("%s.%s: schema %q, want %q", desc.Name, name, got, shape)
			}
		}
	}
}

// TestWireStructEvolution guards docs/WIRE.md's evolution rules for a
// struct, with bytes written by hand: a reader skips the fields a newer
// writer appended, and leaves at their zero value the fields an older
// writer did not know.
func TestWireStructEvolution(t *testing.T) {
	decode := func(segs []wireSeg) (*Tree, error) {
		var req molgenRequest_Codec_Tree
		d := runtime.NewDecoder(wireBytes(t, segs))
		req.MolgenDecode(d)
		return req.A0, d.Finish()
	}
	t.Run("newer writer", func(t *testing.T) {
		tr, err := decode([]wireSeg{{what: "non-nil", hex: "01"}, {what: "Tree of a newer version", fields: []wireSeg{
			{what: `Label "x"`, hex: "01 78"},
			{what: "Left nil", hex: "00"},
			{what: "Children: len+1 = 2", hex: "02"},
			{what: `Tree{"c"} with a field unknown here`, fields: []wireSeg{
				{what: `Label "c"`, hex: "01 63"}, {what: "Left nil", hex: "00"}, {what: "Children nil", hex: "00"},
				{what: "an appended struct field", fields: []wireSeg{{what: "a string", hex: "02 6e 6e"}}},
			}},
			{what: "an appended int field 300", hex: "d8 04"},
			{what: "an appended string field", hex: "01 7a"},
		}}})
		if err != nil {
			t.Fatalf("decoding a Tree with appended fields: %v", err)
		}
		if want := (&Tree{Label: "x", Children: []Tree{{Label: "c"}}}); !reflect.DeepEqual(tr, want) {
			t.Fatalf("decoded %+v, want %+v", tr, want)
		}
	})
	t.Run("older writer", func(t *testing.T) {
		tr, err := decode([]wireSeg{{what: "non-nil", hex: "01"}, {what: "Tree of an older version: Label only", fields: []wireSeg{
			{what: `Label "x"`, hex: "01 78"},
		}}})
		if err != nil {
			t.Fatalf("decoding a Tree without its last fields: %v", err)
		}
		if want := (&Tree{Label: "x"}); !reflect.DeepEqual(tr, want) {
			t.Fatalf("decoded %+v, want %+v", tr, want)
		}
		tr, err = decode([]wireSeg{{what: "non-nil", hex: "01"}, {what: "Tree with no fields", fields: []wireSeg{}}})
		if err != nil || !reflect.DeepEqual(tr, &Tree{}) {
			t.Fatalf("decoding a Tree with no fields: %+v, %v; want the zero Tree", tr, err)
		}
	})
	t.Run("overrun", func(t *testing.T) {
		// A length that ends inside a field is corrupt, not skipped.
		_, err := decode([]wireSeg{{what: "non-nil", hex: "01"}, {what: "length 1", hex: "01"}, {what: `Label "xy"`, hex: "02 78 79"}})
		if err == nil || !errors.Is(err, runtime.ErrCorrupt) || !strings.Contains(err.Error(), "overrun") {
			t.Fatalf("a field overrunning its struct: %v, want ErrCorrupt (overrun)", err)
		}
	})
}

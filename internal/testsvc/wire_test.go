package testsvc

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"hash/fnv"
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
// hex as docs/WIRE.md says to write them.
type wireSeg struct {
	what string
	hex  string
}

// wireBytes concatenates the segments.
func wireBytes(t *testing.T, segs []wireSeg) []byte {
	t.Helper()
	var out []byte
	for _, s := range segs {
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
	for _, s := range segs {
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
// declaration order (docs/WIRE.md: a struct is its fields in order, with no
// framing or tags).
var wireKindsBytes = []wireSeg{
	{"Base.ID uint64 300: uvarint 0b10_0101100", "ac 02"},
	{"Base.Created time.Time{}", hexZeroTime},
	{"Bool true", "01"},
	{"Int -300: zig-zag 599 = 0x257, varint", "d7 04"},
	{"Int8 -128: zig-zag 255", "ff 01"},
	{"Int16 1: zig-zag 2", "02"},
	{"Int32 -2: zig-zag 3", "03"},
	{"Int64 64: zig-zag 128, two bytes", "80 01"},
	{"Uint 1", "01"},
	{"Uint8 255: uvarint", "ff 01"},
	{"Uint16 128: uvarint", "80 01"},
	{"Uint32 2", "02"},
	{"Uint64 max: ten-byte uvarint", "ff ff ff ff ff ff ff ff ff 01"},
	{"Uintptr 3", "03"},
	{"Float32 1.5 = 0x3fc00000, little endian", "00 00 c0 3f"},
	{"Float64 0.1 = 0x3fb999999999999a, little endian", "9a 99 99 99 99 99 b9 3f"},
	{`String "hé": length 3, UTF-8`, "03 68 c3 a9"},
	{"Bytes {de ad}: len+1 = 3", "03 de ad"},
	{"Blob (named []byte) empty, not nil: len+1 = 1", "01"},
	{"Level (named int8) -3: zig-zag 5", "05"},
	{"Wait time.Duration 1µs = 1000 ns: zig-zag 2000 = 0x7d0", "d0 0f"},
	{"When 1970-01-01T01:00:00.000000005+01:00", hexUnixEpochPlus1h},
	{"Hash [4]byte: the 4 bytes", "01 02 03 04"},
	{"Triple [3]int16{-1,0,1}: 3 varints, no length", "01 00 02"},
	{"None [0]int: a single 0", "00"},
	{`Names (named []string) {"a"}: len+1 = 2, "a"`, "02 01 61"},
	{"Matrix [][]float64{nil, {}}: len+1 = 3, nil = 0, empty = 1", "03 00 01"},
	{`ByPoint map[Point]string{{1,-1}: "p"}: len+1 = 2, key {X 1 → 02, Y -1 → 01}, value "p"`, "02 02 01 01 70"},
	{`Nested map[string][]*Point{"k": {nil, &{0,64}}}: len+1, "k", len+1 = 3, nil, non-nil {0, zig-zag 128}`, "02 01 6b 03 00 01 00 80 01"},
	{"Ptr *int to -1: 1, zig-zag 1", "01 01"},
	{"PtrPtr **string to a nil *string: 1, 0", "01 00"},
	{"Anon struct{A int; B []string}{7, nil}: zig-zag 14, nil", "0e 00"},
	{"Empty struct{}: a single 0", "00"},
	{`Money ext.Money{-1999, "EUR"}: zig-zag 3997 = 0xf9d, "EUR"`, "9d 1f 03 45 55 52"},
	{`Version ext.Version 1.22 (BinaryMarshaler): length 4, "1.22"`, "04 31 2e 32 32"},
	{`Ver *ext.Version to 0.1: 1, length 3, "0.1"`, "01 03 30 2e 31"},
	{`Tree *Tree{"r", nil, [{"c", nil, nil}]}: 1, "r", nil Left, len+1 = 2, child "c", nil, nil`, "01 01 72 00 02 01 63 00 00"},
	{`A {"a", {"b": &B{nil, 300}}}: "a", len+1 = 2, "b", 1, nil Back, uvarint 300`, "01 61 02 01 62 01 00 ac 02"},
	{`Page Page[Point]{[{2,3}], &"n"}: len+1 = 2, {zig-zag 4, 6}, 1, "n"`, "02 04 06 01 01 6e"},
	{"Pages []Page[ext.Money]{}: empty, len+1 = 1", "01"},
	{"Event.Time (embedded time.Time) time.Time{}", hexZeroTime},
	{`Event.Name "e"`, "01 65"},
	{"Set map[Point]struct{}{{0,0}: {}}: len+1 = 2, {0, 0}, struct{} = 0", "02 00 00 00"},
	{"Units []struct{}{{}}: len+1 = 2, struct{} = 0", "02 00"},
	{"Tagged.X -64: zig-zag 127", "7f"},
}

// wireZeroKindsBytes is Kinds{} encoded by hand: nil slices, maps and
// pointers are 0, zero numbers are 0, fixed-size values keep their size.
var wireZeroKindsBytes = []wireSeg{
	{"Base.ID 0", "00"},
	{"Base.Created", hexZeroTime},
	{"Bool false", "00"},
	{"Int … Uintptr: 11 zero varints", "00 00 00 00 00 00 00 00 00 00 00"},
	{"Float32 0", "00 00 00 00"},
	{"Float64 0", "00 00 00 00 00 00 00 00"},
	{`String ""`, "00"},
	{"Bytes nil", "00"},
	{"Blob nil", "00"},
	{"Level 0", "00"},
	{"Wait 0", "00"},
	{"When", hexZeroTime},
	{"Hash", "00 00 00 00"},
	{"Triple", "00 00 00"},
	{"None [0]int", "00"},
	{"Names nil", "00"},
	{"Matrix nil", "00"},
	{"ByPoint nil", "00"},
	{"Nested nil", "00"},
	{"Ptr nil", "00"},
	{"PtrPtr nil", "00"},
	{`Anon {0, nil}`, "00 00"},
	{"Empty", "00"},
	{`Money {0, ""}`, "00 00"},
	{`Version zero: MarshalBinary "0.0"`, "03 30 2e 30"},
	{"Ver nil", "00"},
	{"Tree nil", "00"},
	{`A {"", nil}`, "00 00"},
	{"Page {nil, nil}", "00 00"},
	{"Pages nil", "00"},
	{"Event.Time", hexZeroTime},
	{`Event.Name ""`, "00"},
	{"Set nil", "00"},
	{"Units nil", "00"},
	{"Tagged.X 0", "00"},
}

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
			{"a int -1: zig-zag 1", "01"},
			{"b int 150: zig-zag 300", "ac 02"},
		}, nil)
	})
	t.Run("Calc.Add response", func(t *testing.T) {
		checkWire(t, &molgenResponse_Calc_Add{R0: 149}, &molgenResponse_Calc_Add{}, []wireSeg{
			{"int 149: zig-zag 298 = 0x12a", "aa 02"},
		}, nil)
	})
	t.Run("Calc.Sleep request", func(t *testing.T) {
		checkWire(t, &molgenRequest_Calc_Sleep{A0: -time.Nanosecond}, &molgenRequest_Calc_Sleep{}, []wireSeg{
			{"time.Duration -1ns: as int64, zig-zag 1", "01"},
		}, nil)
	})
	t.Run("Calc.Deadline response", func(t *testing.T) {
		checkWire(t, &molgenResponse_Calc_Deadline{R0: time.Unix(0, 0).UTC()}, &molgenResponse_Calc_Deadline{}, []wireSeg{
			{"time.Time 1970-01-01T00:00:00Z", hexUnixEpochUTC},
		}, nil)
	})
	t.Run("Calc.Echo request", func(t *testing.T) {
		checkWire(t, &molgenRequest_Calc_Echo{A0: Fragile{S: "hi"}}, &molgenRequest_Calc_Echo{}, []wireSeg{
			{`Fragile{"hi"} (BinaryMarshaler): length 2, "hi"`, "02 68 69"},
		}, nil)
	})
	t.Run("Codec.Many request", func(t *testing.T) {
		checkWire(t, &molgenRequest_Codec_Many{A0: -1, A1: "b", A2: []Kinds{}, A3: map[Level]Blob{1: Blob("x")}}, &molgenRequest_Codec_Many{}, []wireSeg{
			{"a int -1", "01"},
			{`b string "b"`, "01 62"},
			{"c []Kinds empty: len+1 = 1", "01"},
			{`d map[Level]Blob{1: "x"}: len+1 = 2, key zig-zag 2, value len+1 = 2, "x"`, "02 02 02 78"},
		}, nil)
	})
	t.Run("Codec.Many response", func(t *testing.T) {
		checkWire(t, &molgenResponse_Codec_Many{R3: map[Level]Blob{-1: nil}}, &molgenResponse_Codec_Many{}, []wireSeg{
			{"int 0", "00"},
			{`string ""`, "00"},
			{"[]Kinds nil", "00"},
			{"map[Level]Blob{-1: nil}: len+1 = 2, key zig-zag 1, nil value", "02 01 00"},
		}, nil)
	})
	t.Run("Codec.Many nil map", func(t *testing.T) {
		checkWire(t, &molgenRequest_Codec_Many{}, &molgenRequest_Codec_Many{}, []wireSeg{
			{"a, b, c (nil), d (nil)", "00 00 00 00"},
		}, nil)
	})
	t.Run("Codec.Tree request nil", func(t *testing.T) {
		checkWire(t, &molgenRequest_Codec_Tree{}, &molgenRequest_Codec_Tree{}, []wireSeg{
			{"*Tree nil", "00"},
		}, nil)
	})
	t.Run("Codec.Nothing request", func(t *testing.T) {
		checkWire(t, &molgenRequest_Codec_Nothing{}, &molgenRequest_Codec_Nothing{}, nil, nil)
	})
}

// concatBytes is Calc.Concat("a", "bc", "def") as docs/WIRE.md writes it:
// three strings of one type, told apart only by their order.
var concatBytes = []wireSeg{
	{`a "a"`, "01 61"},
	{`b "bc"`, "02 62 63"},
	{`c "def"`, "03 64 65 66"},
}

// splitBytes is the reply of Calc.Split: two strings, in order.
var splitBytes = []wireSeg{
	{`before "x"`, "01 78"},
	{`after "yz"`, "02 79 7a"},
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
	checkWire(t, &molgenRequest_Calc_Split{A0: "x|yz"}, &molgenRequest_Calc_Split{}, []wireSeg{{`s "x|yz"`, "04 78 7c 79 7a"}}, nil)
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

	resp, err = molgenHandle_Calc_Split(context.Background(), impl, runtime.NewDecoder(wireBytes(t, []wireSeg{{`"x|yz"`, "04 78 7c 79 7a"}})))
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

// shapeSchema is the fingerprint docs/WIRE.md defines for a method shape:
// FNV-1a 64 of the shape text, as 16 hex digits.
func shapeSchema(shape string) string {
	h := fnv.New64a()
	h.Write([]byte(shape))
	return fmt.Sprintf("%016x", h.Sum64())
}

// TestWireSchemaFingerprintsMatchDoc guards the molgen-schema header's
// value: each method's fingerprint is FNV-1a 64 of its shape written as
// docs/WIRE.md says (basic kinds by name, defined types as their
// underlying type, time, bin(path.Name) for BinaryMarshalers, @k for
// recursion).
func TestWireSchemaFingerprintsMatchDoc(t *testing.T) {
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
			if want := shapeSchema(shape); got != want {
				t.Errorf("%s.%s: schema %q, want %q = FNV-1a 64 of %q", desc.Name, name, got, want, shape)
			}
		}
	}
}

package testsvc

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/testsvc/ext"
	"github.com/molgen/molgen/runtime"
)

func ptr[T any](v T) *T { return &v }

// fullKinds returns a Kinds with every field set to a non-zero value.
func fullKinds() Kinds {
	s := "deep"
	k := Kinds{
		Base:    Base{ID: math.MaxUint64, Created: time.Date(2026, 11, 26, 15, 4, 5, 123456789, time.UTC)},
		Bool:    true,
		Int:     math.MinInt64,
		Int8:    math.MinInt8,
		Int16:   math.MaxInt16,
		Int32:   math.MinInt32,
		Int64:   math.MaxInt64,
		Uint:    math.MaxUint,
		Uint8:   math.MaxUint8,
		Uint16:  math.MaxUint16,
		Uint32:  math.MaxUint32,
		Uint64:  math.MaxUint64,
		Uintptr: 0xdeadbeef,
		Float32: -1.5e-7,
		Float64: math.Inf(-1),
		String:  "héllo\x00wörld",
		Bytes:   []byte{0, 1, 2, 255},
		Blob:    Blob("blob"),
		Level:   -3,
		Wait:    1500 * time.Millisecond,
		When:    time.Date(2000, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3600)),
		Hash:    [4]byte{9, 8, 7, 6},
		Triple:  [3]int16{-1, 0, 1},
		Names:   Names{"a", "", "c"},
		Matrix:  [][]float64{{1, 2}, nil, {}},
		ByPoint: map[Point]string{{1, 2}: "a", {-3, 4}: ""},
		Nested:  map[string][]*Point{"x": {{5, 6}, nil}, "empty": {}, "nil": nil},
		Ptr:     ptr(42),
		PtrPtr:  ptr(&s),
		Empty:   Empty{},
		Money:   ext.Money{Cents: 1999, Currency: "EUR"},
		Version: ext.NewVersion(1, 22),
		Ver:     ptr(ext.NewVersion(3, 4)),
		Tree: &Tree{Label: "root", Left: &Tree{Label: "left"}, Children: []Tree{
			{Label: "c1", Children: []Tree{{Label: "c1.1"}}}, {Label: "c2"},
		}},
		A:     A{Name: "a", Bs: map[string]*B{"b": {Back: &A{Name: "inner"}, N: 7}, "nil": nil}},
		Page:  Page[Point]{Items: []Point{{1, 1}}, Next: ptr("cursor")},
		Pages: []Page[ext.Money]{{Items: []ext.Money{{Cents: 1}}}, {}},
		Event: Event{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Name: "launch"},
		Set:   map[Point]struct{}{{1, 2}: {}, {3, 4}: {}},
		Units: []struct{}{{}, {}, {}},
	}
	k.Tagged.X = 9
	k.Anon.A = 7
	k.Anon.B = []string{"x"}
	return k
}

func roundTrip[M runtime.Message](t *testing.T, in M, out M) {
	t.Helper()
	e := runtime.NewEncoder(nil)
	in.MolgenEncode(e)
	if err := e.Err(); err != nil {
		t.Fatalf("encode: %v", err)
	}
	d := runtime.NewDecoder(e.Data())
	out.MolgenDecode(d)
	if err := d.Finish(); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the value:\n in: %+v\nout: %+v", in, out)
	}
}

func TestRoundTripEveryKind(t *testing.T) {
	cases := map[string]Kinds{
		"zero":          {},
		"full":          fullKinds(),
		"empty-not-nil": {Bytes: []byte{}, Names: Names{}, Matrix: [][]float64{}, ByPoint: map[Point]string{}, Blob: Blob{}},
	}
	for name, k := range cases {
		t.Run(name, func(t *testing.T) {
			roundTrip(t, &molgenRequest_Codec_Kinds{A0: k}, &molgenRequest_Codec_Kinds{})
		})
	}
}

func TestRoundTripKeepsNilAndEmptyApart(t *testing.T) {
	in := &molgenRequest_Codec_Kinds{A0: Kinds{Bytes: []byte{}, Names: nil, ByPoint: map[Point]string{}}}
	e := runtime.NewEncoder(nil)
	in.MolgenEncode(e)
	var out molgenRequest_Codec_Kinds
	out.MolgenDecode(runtime.NewDecoder(e.Data()))
	if out.A0.Bytes == nil || len(out.A0.Bytes) != 0 {
		t.Errorf("empty []byte came back as %#v", out.A0.Bytes)
	}
	if out.A0.Names != nil {
		t.Errorf("nil slice came back as %#v", out.A0.Names)
	}
	if out.A0.ByPoint == nil {
		t.Errorf("empty map came back nil")
	}
	if out.A0.Matrix != nil || out.A0.Tree != nil || out.A0.Ptr != nil {
		t.Errorf("nil values came back non-nil: %+v", out.A0)
	}
}

func TestRoundTripSeveralParamsAndResults(t *testing.T) {
	k := fullKinds()
	roundTrip(t, &molgenRequest_Codec_Many{A0: -5, A1: "b", A2: []Kinds{k, {}}, A3: map[Level]Blob{1: Blob("x"), -1: nil}},
		&molgenRequest_Codec_Many{})
	roundTrip(t, &molgenResponse_Codec_Many{R0: 1, R1: "", R2: nil, R3: nil}, &molgenResponse_Codec_Many{})
	roundTrip(t, &molgenRequest_Codec_Nothing{}, &molgenRequest_Codec_Nothing{})
}

func TestEncodeCyclicValueFailsCleanly(t *testing.T) {
	tr := &Tree{Label: "loop"}
	tr.Left = tr
	// Several ways back to the root: without care, exponential work.
	tr.Children = []Tree{{Left: tr}, {Left: tr}, {Left: tr}}
	start := time.Now()
	e := runtime.NewEncoder(nil)
	(&molgenRequest_Codec_Tree{A0: tr}).MolgenEncode(e)
	if err := e.Err(); err == nil || !strings.Contains(err.Error(), "cyclic") {
		t.Fatalf("encoding a cycle: err = %v, want a nesting error", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("encoding a cyclic value took %v", el)
	}
}

func TestDecodeDeepNestingFailsCleanly(t *testing.T) {
	// A chain of Left pointers far deeper than the limit, each level a
	// well-formed Tree: "present" (1), then the length of its fields, an
	// empty label (0), the next Left, nil Children (0). Lengths are
	// computed from the innermost level out.
	const levels = 20000
	sizes := make([]int, levels) // sizes[i]: the bytes of level i's fields
	sizes[levels-1] = 3          // "", nil Left, nil Children
	for i := levels - 2; i >= 0; i-- {
		inner := sizes[i+1]
		sizes[i] = 1 + 1 + len(binary.AppendUvarint(nil, uint64(inner))) + inner + 1
	}
	var b bytes.Buffer
	b.WriteByte(1)
	for i := 0; i < levels-1; i++ {
		b.Write(binary.AppendUvarint(nil, uint64(sizes[i])))
		b.Write([]byte{0, 1})
	}
	b.Write([]byte{3, 0, 0, 0})
	for i := 0; i < levels-1; i++ {
		b.WriteByte(0)
	}
	var out molgenRequest_Codec_Tree
	d := runtime.NewDecoder(b.Bytes())
	out.MolgenDecode(d)
	if err := d.Finish(); err == nil || !strings.Contains(err.Error(), "nests deeper") {
		t.Fatalf("err = %v, want a nesting error", err)
	}
}

func TestDecodeEveryTruncationFails(t *testing.T) {
	e := runtime.NewEncoder(nil)
	(&molgenRequest_Codec_Kinds{A0: fullKinds()}).MolgenEncode(e)
	data := e.Data()
	for n := 0; n < len(data); n++ {
		var out molgenRequest_Codec_Kinds
		d := runtime.NewDecoder(data[:n])
		out.MolgenDecode(d)
		if d.Finish() == nil {
			t.Fatalf("decoding the first %d of %d bytes succeeded", n, len(data))
		}
	}
	var out molgenRequest_Codec_Kinds
	d := runtime.NewDecoder(append(append([]byte{}, data...), 0))
	out.MolgenDecode(d)
	if err := d.Finish(); err == nil || !strings.Contains(err.Error(), "trailing") {
		t.Fatalf("trailing byte: err = %v", err)
	}
}

func TestDecodeRefusesHugeLengths(t *testing.T) {
	// A Names length of 2^40 in a 10-byte message must fail before allocating.
	var in molgenRequest_Codec_Kinds
	e := runtime.NewEncoder(nil)
	in.MolgenEncode(e)
	data := e.Data()
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	var out molgenRequest_Codec_Many
	d := runtime.NewDecoder([]byte{2, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	out.MolgenDecode(d)
	goruntime.ReadMemStats(&after)
	if d.Finish() == nil {
		t.Fatal("huge length accepted")
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("decoder allocated %d bytes for a %d-byte input", grew, len(data))
	}
}

// FuzzDecode checks that decoding arbitrary bytes returns an error or a
// value, never panics, and allocates in proportion to the input.
// Run it longer with: go test ./internal/testsvc -run '^$' -fuzz FuzzDecode -fuzztime 5m
func FuzzDecode(f *testing.F) {
	for _, k := range []Kinds{{}, fullKinds()} {
		e := runtime.NewEncoder(nil)
		(&molgenRequest_Codec_Kinds{A0: k}).MolgenEncode(e)
		f.Add(e.Data())
	}
	e := runtime.NewEncoder(nil)
	(&molgenRequest_Codec_Many{A0: 1, A1: "x", A2: []Kinds{fullKinds()}, A3: map[Level]Blob{2: {1}}}).MolgenEncode(e)
	f.Add(e.Data())
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after goruntime.MemStats
		goruntime.ReadMemStats(&before)
		var k molgenRequest_Codec_Kinds
		dk := runtime.NewDecoder(data)
		k.MolgenDecode(dk)
		var m molgenRequest_Codec_Many
		dm := runtime.NewDecoder(data)
		m.MolgenDecode(dm)
		var tr molgenRequest_Codec_Tree
		dt := runtime.NewDecoder(data)
		tr.MolgenDecode(dt)
		goruntime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > uint64(200*len(data))+(1<<20) {
			t.Fatalf("decoding %d bytes allocated %d bytes", len(data), grew)
		}
		if dk.Finish() == nil {
			// A value that decoded must encode and decode again.
			e := runtime.NewEncoder(nil)
			k.MolgenEncode(e)
			if e.Err() != nil {
				t.Fatalf("re-encoding a decoded value: %v", e.Err())
			}
			var again molgenRequest_Codec_Kinds
			d := runtime.NewDecoder(e.Data())
			again.MolgenDecode(d)
			if err := d.Finish(); err != nil {
				t.Fatalf("decoding a re-encoded value: %v", err)
			}
			// (The sizes may differ: the input may repeat map keys or use
			// longer varints than needed.)
		}
	})
}

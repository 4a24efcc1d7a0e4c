package runtime

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// wide is a struct of 560 bytes, as in the request that took 650 MB of
// heap before decoding had a budget.
type wide struct {
	A [70]int64
}

// wideSlice is a generated-style message: a []wide whose elements are
// struct frames.
type wideSlice struct{ v []wide }

func (m *wideSlice) MolgenEncode(e *Encoder) {
	e.Len(len(m.v), m.v == nil)
	for range m.v {
		e.Struct()
		e.EndStruct()
	}
}

func (m *wideSlice) MolgenDecode(d *Decoder) {
	if n := d.Len(1); n < 0 {
		m.v = nil
	} else {
		m.v = MakeSlice[wide](d, n)
		for i := range m.v {
			d.Struct()
			for d.More() {
				m.v[i].A[0] = d.Int64()
			}
			d.EndStruct()
		}
	}
}

// heapGrowth runs fn and returns the bytes it allocated.
func heapGrowth(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecodeBudgetRefusesAmplification: a 1 MB message of a million
// one-byte elements of a 560-byte struct would take 560 MB; decoding
// refuses it before allocating the slice, with ErrCorrupt saying why.
func TestDecodeBudgetRefusesAmplification(t *testing.T) {
	if unsafe.Sizeof(wide{}) != 560 {
		t.Fatalf("wide is %d bytes", unsafe.Sizeof(wide{}))
	}
	e := NewEncoder(nil)
	(&wideSlice{v: make([]wide, 1_000_000)}).MolgenEncode(e)
	payload := e.Data()
	if len(payload) > 1_000_010 {
		t.Fatalf("payload is %d bytes", len(payload))
	}
	var err error
	grew := heapGrowth(func() {
		d := NewDecoder(payload)
		var m wideSlice
		m.MolgenDecode(d)
		err = d.Finish()
	})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "decode memory limit") {
		t.Fatalf("decoding: %v, want the decode memory limit", err)
	}
	if grew > 8<<20 {
		t.Errorf("refusing the message allocated %d bytes", grew)
	}
	// The limit is a setting: 5.6 MB is over the default for 10 kB of
	// message, and decodes with room for it.
	e.Reset()
	(&wideSlice{v: make([]wide, 10_000)}).MolgenEncode(e)
	for _, c := range []struct {
		l  DecodeLimits
		ok bool
	}{{DecodeLimits{}, false}, {DecodeLimits{Factor: 600, Max: 1 << 20}, false}, {DecodeLimits{Factor: 600}, true}} {
		d := new(Decoder)
		d.init(e.Data(), c.l)
		var m wideSlice
		m.MolgenDecode(d)
		if err := d.Finish(); (err == nil) != c.ok || c.ok && len(m.v) != 10_000 {
			t.Errorf("10,000 elements (5.6 MB) with %+v: %v, %d elements", c.l, err, len(m.v))
		}
	}
}

// TestDecodeBudgetTakesDenseMessages: the densest values of the app's own
// types (a slice of empty strings: one byte each on the wire, 16 in
// memory) fit the default budget, however many there are.
func TestDecodeBudgetTakesDenseMessages(t *testing.T) {
	const n = 2_000_000
	e := NewEncoder(nil)
	e.Len(n, false)
	for range n {
		e.String("")
	}
	d := NewDecoder(e.Data())
	if got := MakeSlice[string](d, d.Len(1)); len(got) != n {
		t.Fatalf("got %d strings: %v", len(got), d.Err())
	}
	for range n {
		_ = d.String()
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeLimitsBudget(t *testing.T) {
	for _, c := range []struct {
		l    DecodeLimits
		size int
		want uint64
	}{
		{DecodeLimits{}, 0, 4 << 20},
		{DecodeLimits{}, 1000, 16000 + 4<<20},
		{DecodeLimits{}, 100 << 20, 256 << 20},
		{DecodeLimits{Factor: 2}, 1000, 2000 + 4<<20},
		{DecodeLimits{Max: 1 << 10}, 1000, 1 << 10},
	} {
		if got := c.l.budget(c.size); got != c.want {
			t.Errorf("%+v.budget(%d) = %d, want %d", c.l, c.size, got, c.want)
		}
	}
}

// TestDecodeBudgetCharges: every allocation a decoder makes for a message
// is paid from one budget: strings, byte slices, BinaryUnmarshaler copies,
// slices, maps, pointers and levels of recursion. Once it is spent,
// nothing more is allocated and the decoder has failed.
func TestDecodeBudgetCharges(t *testing.T) {
	bigString := func() *Decoder {
		e := NewEncoder(nil)
		e.String(strings.Repeat("x", 100))
		return e.decoderWith(50)
	}
	for name, c := range map[string]struct {
		d     func() *Decoder
		read  func(*Decoder)
		empty bool
	}{
		"String": {bigString, func(d *Decoder) { _ = d.String() }, false},
		"Bytes": {func() *Decoder {
			e := NewEncoder(nil)
			e.Bytes(bytes.Repeat([]byte("x"), 100))
			return e.decoderWith(50)
		}, func(d *Decoder) { d.Bytes() }, false},
		"Unmarshal": {func() *Decoder {
			e := NewEncoder(nil)
			e.String(strings.Repeat("x", 100))
			return e.decoderWith(50)
		}, func(d *Decoder) { d.Unmarshal(new(sink)) }, false},
		"MakeSlice": {func() *Decoder { return NewEncoder(nil).decoderWith(50) }, func(d *Decoder) { MakeSlice[int64](d, 7) }, false},
		"MakeMap":   {func() *Decoder { return NewEncoder(nil).decoderWith(100) }, func(d *Decoder) { MakeMap[int64, int64](d, 2) }, false},
		"New":       {func() *Decoder { return NewEncoder(nil).decoderWith(50) }, func(d *Decoder) { New[[64]byte](d) }, false},
		"Enter":     {func() *Decoder { return NewEncoder(nil).decoderWith(stackPerLevel - 1) }, func(d *Decoder) { d.Enter() }, false},
	} {
		d := c.d()
		c.read(d)
		if err := d.Err(); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "decode memory limit") {
			t.Errorf("%s over the budget: %v, want the decode memory limit", name, err)
		}
	}
	// Within the budget, each is charged what it allocates.
	d := NewEncoder(nil).decoderWith(1000)
	MakeSlice[int64](d, 10)
	New[[64]byte](d)
	if d.budget != 1000-80-64 || d.Err() != nil {
		t.Errorf("budget left %d (err %v), want %d", d.budget, d.Err(), 1000-80-64)
	}
}

// decoderWith returns a decoder of e's bytes with a budget of n bytes.
func (e *Encoder) decoderWith(n uint64) *Decoder {
	d := NewDecoder(e.Data())
	d.budget = n
	return d
}

type sink struct{ b []byte }

func (s *sink) UnmarshalBinary(b []byte) error { s.b = b; return nil }

// FuzzDecoder: whatever the bytes, decoding a message of every codec kind
// never panics, never allocates beyond its budget and always ends with
// Finish's verdict.
func FuzzDecoder(f *testing.F) {
	e := NewEncoder(nil)
	e.String("hello")
	e.Len(2, false)
	e.Struct()
	e.Int64(-5)
	e.EndStruct()
	e.Struct()
	e.EndStruct()
	f.Add(e.Data())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(b)
		budget := d.budget
		var m fuzzMsg
		m.MolgenDecode(d)
		_ = d.Finish()
		if d.budget > budget {
			t.Fatalf("the budget grew from %d to %d", budget, d.budget)
		}
	})
}

// fuzzMsg reads every kind the Decoder has, nesting through a recursive
// pointer.
type fuzzMsg struct {
	s    string
	b    []byte
	list []fuzzMsg
	m    map[int32]string
	next *fuzzMsg
}

func (m *fuzzMsg) MolgenEncode(*Encoder) {}

func (m *fuzzMsg) MolgenDecode(d *Decoder) {
	if !d.Enter() {
		return
	}
	defer d.Leave()
	d.Struct()
	if d.More() {
		m.s = d.String()
		m.b = d.Bytes()
		_ = d.Bool()
		_ = d.Float64()
		_ = d.Uint8()
		_ = d.Time()
	}
	if d.More() {
		if n := d.Len(1); n >= 0 {
			m.list = MakeSlice[fuzzMsg](d, n)
			for i := range m.list {
				m.list[i].MolgenDecode(d)
			}
		}
	}
	if d.More() {
		if n := d.Len(2); n >= 0 {
			m.m = MakeMap[int32, string](d, n)
			for range n {
				k := d.Int32()
				m.m[k] = d.String()
			}
		}
	}
	if d.More() && d.Bool() {
		m.next = New[fuzzMsg](d)
		m.next.MolgenDecode(d)
	}
	d.EndStruct()
}

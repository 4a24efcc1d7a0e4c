package sametypes

import (
	"context"
	"reflect"
	"strings"
	"testing"

	molgenruntime "github.com/molgen/molgen/runtime"
)

// The bytes below are written by hand from docs/WIRE.md, not produced by
// the generated code: values in argument (or result, or field) order, a
// string as its uvarint length and then its bytes, a signed integer as a
// zig-zag varint, a bool as one byte 0 or 1, a slice or map as uvarint
// len+1 and then its elements (a map's key before its value), a struct as
// the uvarint length of its fields and then its fields in declaration
// order (16 bytes for span1, 11 for span2, 5 and 3 for their Pair). A
// generator that swapped two values of
// one type both in an encoder and in its decoder would still round-trip;
// these bytes catch it.
const (
	// Span{Start: 1, End: 300, Label: "L", Note: "NN", Open: true, Inner: Pair{"f", "ss"}}
	span1Wire = "\x10" + "\x02" + "\xd8\x04" + "\x01L" + "\x02NN" + "\x01" + "\x00" + "\x05" + "\x01f" + "\x02ss"
	// Span{Start: -1, End: 2, Note: "n", Shut: true, Inner: Pair{Second: "t"}}
	span2Wire = "\x0b" + "\x01" + "\x04" + "\x00" + "\x01n" + "\x00" + "\x01" + "\x03" + "\x00" + "\x01t"
	// rotate(span1)
	span1RotWire = "\x10" + "\xd8\x04" + "\x02" + "\x02NN" + "\x01L" + "\x00" + "\x01" + "\x05" + "\x02ss" + "\x01f"
)

var (
	span1 = Span{Start: 1, End: 300, Label: "L", Note: "NN", Open: true, Inner: Pair{First: "f", Second: "ss"}}
	span2 = Span{Start: -1, End: 2, Note: "n", Shut: true, Inner: Pair{Second: "t"}}
)

// rotate gives every field of s the value of its same-typed neighbour.
func rotate(s Span) Span {
	return Span{Start: s.End, End: s.Start, Label: s.Note, Note: s.Label, Open: s.Shut, Shut: s.Open,
		Inner: Pair{First: s.Inner.Second, Second: s.Inner.First}}
}

// text is an implementation whose results depend on the order of its
// arguments.
type text struct{}

func (text) Concat(_ context.Context, a, b, c string) (string, error) { return a + b + c, nil }

func (text) Split(_ context.Context, s string) (string, string, error) {
	before, after, _ := strings.Cut(s, ",")
	return before, after, nil
}

func (text) Divmod(_ context.Context, a, b int64) (int64, int64, error) { return a / b, a % b, nil }

func (text) Reorder(_ context.Context, s, t Span) (Span, Span, Span, error) {
	return t, s, rotate(s), nil
}

func (text) Lookup(_ context.Context, m map[string]string, keys []string) ([]string, error) {
	out := []string{}
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out, nil
}

// A wire case: a message with distinct values of one type in each place,
// and its bytes.
type wireCase struct {
	name  string
	msg   molgenruntime.Message
	fresh func() molgenruntime.Message
	wire  string
}

var wireCases = []wireCase{
	{"Concat request", &molgenRequest_Text_Concat{A0: "a", A1: "bc", A2: "def"},
		func() molgenruntime.Message { return &molgenRequest_Text_Concat{} },
		"\x01a" + "\x02bc" + "\x03def"},
	{"Concat response", &molgenResponse_Text_Concat{R0: "abcdef"},
		func() molgenruntime.Message { return &molgenResponse_Text_Concat{} },
		"\x06abcdef"},
	{"Split request", &molgenRequest_Text_Split{A0: "ab,c"},
		func() molgenruntime.Message { return &molgenRequest_Text_Split{} },
		"\x04ab,c"},
	{"Split response", &molgenResponse_Text_Split{R0: "ab", R1: "c"},
		func() molgenruntime.Message { return &molgenResponse_Text_Split{} },
		"\x02ab" + "\x01c"},
	{"Divmod request", &molgenRequest_Text_Divmod{A0: 7, A1: -2},
		func() molgenruntime.Message { return &molgenRequest_Text_Divmod{} },
		"\x0e" + "\x03"},
	{"Divmod response", &molgenResponse_Text_Divmod{R0: -3, R1: 1},
		func() molgenruntime.Message { return &molgenResponse_Text_Divmod{} },
		"\x05" + "\x02"},
	{"Reorder request", &molgenRequest_Text_Reorder{A0: span1, A1: span2},
		func() molgenruntime.Message { return &molgenRequest_Text_Reorder{} },
		span1Wire + span2Wire},
	{"Reorder response", &molgenResponse_Text_Reorder{R0: span2, R1: span1, R2: rotate(span1)},
		func() molgenruntime.Message { return &molgenResponse_Text_Reorder{} },
		span2Wire + span1Wire + span1RotWire},
	{"Lookup request", &molgenRequest_Text_Lookup{A0: map[string]string{"k": "v"}, A1: []string{"k", "x"}},
		func() molgenruntime.Message { return &molgenRequest_Text_Lookup{} },
		"\x02" + "\x01k" + "\x01v" + "\x03" + "\x01k" + "\x01x"},
	{"Lookup response", &molgenResponse_Text_Lookup{R0: []string{"v", ""}},
		func() molgenruntime.Message { return &molgenResponse_Text_Lookup{} },
		"\x03" + "\x01v" + "\x00"},
}

// TestWireBytes guards the order of same-typed arguments, results and
// struct fields on the wire: each message encodes to the bytes of
// docs/WIRE.md, and those bytes decode back to each value in its own
// place.
func TestWireBytes(t *testing.T) {
	for _, c := range wireCases {
		enc := molgenruntime.NewEncoder(nil)
		c.msg.MolgenEncode(enc)
		if err := enc.Err(); err != nil {
			t.Fatalf("%s: encode: %v", c.name, err)
		}
		if got := string(enc.Data()); got != c.wire {
			t.Errorf("%s encodes to\n%q\nwant (docs/WIRE.md)\n%q", c.name, got, c.wire)
		}
		out := c.fresh()
		dec := molgenruntime.NewDecoder([]byte(c.wire))
		out.MolgenDecode(dec)
		if err := dec.Finish(); err != nil {
			t.Fatalf("%s: decode: %v", c.name, err)
		}
		if !reflect.DeepEqual(out, c.msg) {
			t.Errorf("%s: the bytes of docs/WIRE.md decode to\n%+v\nwant\n%+v", c.name, out, c.msg)
		}
	}
}

// TestRoundTrips guards that encoding then decoding keeps every
// same-typed value in its own place.
func TestRoundTrips(t *testing.T) {
	for _, c := range wireCases {
		enc := molgenruntime.NewEncoder(nil)
		c.msg.MolgenEncode(enc)
		out := c.fresh()
		dec := molgenruntime.NewDecoder(enc.Data())
		out.MolgenDecode(dec)
		if err := dec.Finish(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(out, c.msg) {
			t.Errorf("%s: round trip changed\n%+v\ninto\n%+v", c.name, c.msg, out)
		}
	}
}

// TestHandlers guards the server side: a request written by hand is
// decoded, passed to the implementation argument by argument in order, and
// its results come back as the response bytes of docs/WIRE.md.
func TestHandlers(t *testing.T) {
	for _, c := range []struct {
		name      string
		handler   molgenruntime.Handler
		req, resp string
	}{
		{"Concat", molgenHandle_Text_Concat, "\x01a\x02bc\x03def", "\x06abcdef"},
		{"Split", molgenHandle_Text_Split, "\x04ab,c", "\x02ab\x01c"},
		{"Divmod", molgenHandle_Text_Divmod, "\x0e\x03", "\x05\x02"},
		{"Reorder", molgenHandle_Text_Reorder, span1Wire + span2Wire, span2Wire + span1Wire + span1RotWire},
		{"Lookup", molgenHandle_Text_Lookup, "\x02\x01k\x01v\x03\x01k\x01x", "\x03\x01v\x00"},
	} {
		resp, err := c.handler(context.Background(), text{}, molgenruntime.NewDecoder([]byte(c.req)))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		enc := molgenruntime.NewEncoder(nil)
		resp.MolgenEncode(enc)
		if got := string(enc.Data()); got != c.resp {
			t.Errorf("%s: request %q answered with\n%q\nwant\n%q", c.name, c.req, got, c.resp)
		}
	}
}

// TestLocalCalls guards the client's direct path: arguments reach the
// implementation in order and results come back in order.
func TestLocalCalls(t *testing.T) {
	ctx := context.Background()
	n, err := molgenruntime.NewNode(molgenruntime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterText(n, text{}); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c := NewTextClient(n)
	if got, err := c.Concat(ctx, "a", "bc", "def"); got != "abcdef" || err != nil {
		t.Errorf("Concat: %q, %v", got, err)
	}
	if b, a, err := c.Split(ctx, "ab,c"); b != "ab" || a != "c" || err != nil {
		t.Errorf("Split: %q, %q, %v", b, a, err)
	}
	if q, r, err := c.Divmod(ctx, 7, -2); q != -3 || r != 1 || err != nil {
		t.Errorf("Divmod: %d, %d, %v", q, r, err)
	}
	if r0, r1, r2, err := c.Reorder(ctx, span1, span2); r0 != span2 || r1 != span1 || r2 != rotate(span1) || err != nil {
		t.Errorf("Reorder: %+v, %+v, %+v, %v", r0, r1, r2, err)
	}
	if got, err := c.Lookup(ctx, map[string]string{"k": "v"}, []string{"k", "x"}); !reflect.DeepEqual(got, []string{"v", ""}) || err != nil {
		t.Errorf("Lookup: %q, %v", got, err)
	}
}

package runtime

import (
	"errors"
	"strings"
	"testing"

	"github.com/molgen/molgen/runtime/internal/transport"
)

// TestCompatibleSchemas guards docs/WIRE.md's evolution rule as the
// runtime applies it to the schemas of requests and replies.
func TestCompatibleSchemas(t *testing.T) {
	ok := [][2]string{
		{"(string)({string,string})", "(string)({string,string})"},
		{"(string)({string,string})", "(string)({string,string,int})"},        // a field appended
		{"({string,[]{int}})()", "({string,[]{int,bool},map[string]time})()"}, // nested, both
		{"({int,{}})()", "({int,{string}})()"},                                // an empty struct grew
		{"(*{string,*@1})()", "(*{string,*@1,bytes})()"},                      // recursive
		{"(bin(example.com/x.V))([2]{int})", "(bin(example.com/x.V))([2]{int,int})"},
	}
	for _, c := range ok {
		for _, pair := range [][2]string{c, {c[1], c[0]}} {
			if err := compatibleSchemas(pair[0], pair[1]); err != nil {
				t.Errorf("%s and %s: %v, want compatible", pair[0], pair[1], err)
			}
		}
	}
	bad := []struct{ a, b, why string }{
		{"(int,int)(int)", "(int64,int64)(int64)", "parameter 0: int vs int64"},
		{"(string)()", "(string,string)()", "1 parameters vs 2"},
		{"()(int)", "()()", "1 results vs 0"},
		{"({string,int})()", "({int,string})()", "parameter 0: field 0: string vs int"},
		{"({string,{int}})()", "({string,{bool}})()", "parameter 0: field 1: field 0: int vs bool"},
		{"([]{int})()", "(map[int]{int})()", "parameter 0: []{int} vs map[int]{int}"},
		{"([2]int)()", "([3]int)()", "parameter 0: [2]int vs [3]int"},
		{"(@1)()", "(@2)()", "parameter 0: @1 vs @2"},
		{"(bin(a.B))()", "(bin(a.C))()", "parameter 0: bin(a.B) vs bin(a.C)"},
		{"(int)()", "(int", "invalid schema"},
	}
	for _, c := range bad {
		err := compatibleSchemas(c.a, c.b)
		if err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s and %s: %v, want an error saying %q", c.a, c.b, err, c.why)
		}
	}
}

// pointMsg is a result of one struct {X int64}, as generated code would
// encode it.
type pointMsg struct{ x int64 }

func (m *pointMsg) MolgenEncode(e *Encoder) { e.Struct(); e.Int64(m.x); e.EndStruct() }
func (m *pointMsg) MolgenDecode(d *Decoder) {
	d.Struct()
	if d.More() {
		m.x = d.Int64()
	}
	d.EndStruct()
}

// TestCallerChecksTheReplysSchema: a caller decodes a reply whose schema
// is its own ("=" or the same text) or compatible with it (a struct with a
// field appended), and refuses an incompatible one with ErrBadRequest
// without decoding it.
func TestCallerChecksTheReplysSchema(t *testing.T) {
	c := &Client{node: new(Node), desc: &ServiceDesc{Name: "s", Methods: []MethodDesc{{Name: "M", Schema: "()({int64})"}}}}
	m := &c.desc.Methods[0]
	own := []byte{1, 14}           // {X: 7}
	newer := []byte{3, 14, 1, 'z'} // {X: 7, and a string "z" appended}
	for _, r := range []struct {
		schema  string
		payload []byte
	}{{"", own}, {"=", own}, {"()({int64})", own}, {"()({int64,string})", newer}, {"()({})", []byte{0}}} {
		var got pointMsg
		err := c.readReply(m, transport.Reply{Status: transport.StatusOK, Payload: r.payload, Schema: r.schema}, &got, new(Decoder))
		want := int64(7)
		if r.schema == "()({})" {
			want = 0 // an older server's struct without the field
		}
		if err != nil || got.x != want {
			t.Errorf("reply of schema %q: %+v, %v; want x=%d", r.schema, got, err, want)
		}
	}
	var got pointMsg
	err := c.readReply(m, transport.Reply{Status: transport.StatusOK, Payload: []byte{1, 14}, Schema: "()({string})"}, &got, new(Decoder))
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "the reply was encoded with types incompatible with this caller's (result 0: field 0: int64 vs string") {
		t.Fatalf("incompatible reply: %v; want ErrBadRequest naming the difference", err)
	}
	if got.x != 0 {
		t.Fatalf("an incompatible reply was decoded: %+v", got)
	}
}

// TestSchemaVerdictsAreBounded: the cache of compatibility verdicts keeps
// at most verdictsMax pairs, and none longer than verdictTextMax, however
// many distinct schemas peers send (a hostile peer sent a hundred 4 MB
// ones, which the unbounded cache kept forever).
func TestSchemaVerdictsAreBounded(t *testing.T) {
	own := "(string)({string,string})"
	for i := range 3 * verdictsMax {
		other := "(string)({string," + strings.Repeat("int,", i%50) + "bool})"
		if i%2 == 0 {
			other += strings.Repeat(" ", i) // invalid, and distinct
		}
		_ = compatibleSchemas(other, own)
	}
	long := "(" + strings.Repeat("int,", verdictTextMax/4) + "int)()"
	if err := compatibleSchemas(long, own); err == nil {
		t.Fatal("a long schema is compatible")
	}
	// An invalid schema is a bad request; the cached verdict says the same.
	for range 2 {
		if err := compatibleSchemas("((", own); !errors.Is(err, ErrBadRequest) {
			t.Errorf("an invalid schema: %v, want ErrBadRequest", err)
		}
	}
	verdicts.RLock()
	defer verdicts.RUnlock()
	if len(verdicts.m) > verdictsMax {
		t.Errorf("%d verdicts kept, want at most %d", len(verdicts.m), verdictsMax)
	}
	if _, kept := verdicts.m[[2]string{long, own}]; kept {
		t.Errorf("the verdict on a %d-byte schema was kept", len(long))
	}
}

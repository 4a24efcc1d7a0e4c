package runtime

import (
	"strings"
	"testing"
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

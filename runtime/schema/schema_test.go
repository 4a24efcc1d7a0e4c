package schema

import (
	"errors"
	"strings"
	"testing"
)

// TestParseRoundTrips: every shape of the grammar parses and prints back
// as it was written.
func TestParseRoundTrips(t *testing.T) {
	for _, s := range []string{
		"()()",
		"(string)({string,string})",
		"({string,[]{int,bool},map[string]time})()",
		"(*{string,*@1,bytes})()",
		"(bin(example.com/x.V[map[string]int]))([2]{int})",
		"([0]{},[]bytes,map[int64]*[]uint8)(float32,float64,error)",
		"({})({{},{{}}})",
	} {
		m, err := Parse(s)
		if err != nil {
			t.Errorf("Parse(%q): %v", s, err)
			continue
		}
		if got := "(" + inner(m.Params) + ")(" + inner(m.Results) + ")"; got != s {
			t.Errorf("Parse(%q) prints as %q", s, got)
		}
	}
}

// inner is a list's form without its parentheses.
func inner(l *Shape) string { s := l.String(); return s[1 : len(s)-1] }

// TestParseRefuses: text outside the grammar is refused with ErrInvalid,
// saying where.
func TestParseRefuses(t *testing.T) {
	for _, c := range []struct{ s, why string }{
		{"(int", "want , or )"},
		{"int", "want ("},
		{"(int)()x", "trailing text"},
		{"([x]int)()", "invalid array length"},
		{"([3int]int)()", "invalid array length"},
		{"([", "unterminated array length"},
		{"(bin(a.B", "unterminated bin("},
		{"(map[int int)()", "want ]"},
		{"(,)()", "want a type"},
		{"(INT)()", "want a type"},
		{"()()" + strings.Repeat(" ", MaxLen), "over the limit"},
	} {
		_, err := Parse(c.s)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("Parse(%.40q): %v, want ErrInvalid saying %q", c.s, err, c.why)
		}
	}
}

// TestParseBoundsDepth: a shape nested MaxDepth levels parses, one level
// more is refused, and megabytes of nesting (a hostile header; the old
// recursive parser died of a stack overflow that recover cannot catch)
// are refused at once by their length.
func TestParseBoundsDepth(t *testing.T) {
	// A parameter is at level 1, so MaxDepth-1 pointers and a leaf fill the
	// allowed levels.
	deepest := "(" + strings.Repeat("*", MaxDepth-1) + "int)()"
	if _, err := Parse(deepest); err != nil {
		t.Fatalf("a shape %d levels deep: %v", MaxDepth, err)
	}
	for _, s := range []string{
		"(" + strings.Repeat("*", MaxDepth) + "int)()",
		"(" + strings.Repeat("[]", MaxDepth) + "int)()",
		"(" + strings.Repeat("{", MaxDepth+1) + strings.Repeat("}", MaxDepth+1) + ")()",
		"(" + strings.Repeat("map[int]", MaxDepth) + "int)()",
		"(" + strings.Repeat("map[", MaxDepth) + "int" + strings.Repeat("]int", MaxDepth) + ")()",
		"(" + strings.Repeat("[1]", MaxDepth) + "int)()",
	} {
		if _, err := Parse(s); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "deeper than") {
			t.Errorf("Parse(%.30q…) %d bytes: %v, want refused as too deep", s, len(s), err)
		}
	}
	huge := "(" + strings.Repeat("*", 8<<20) + "int)()"
	if _, err := Parse(huge); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("an 8 MB schema: %v, want refused by its length", err)
	}
	// Within the length limit, as deep as the text allows.
	wide := "(" + strings.Repeat("*", MaxLen-10) + "int)()"
	if _, err := Parse(wide); !errors.Is(err, ErrInvalid) {
		t.Errorf("%d nested pointers: %v, want refused", MaxLen-10, err)
	}
}

// TestCompatible guards docs/WIRE.md's evolution rule.
func TestCompatible(t *testing.T) {
	ok := [][2]string{
		{"(string)({string,string})", "(string)({string,string})"},
		{"(string)({string,string})", "(string)({string,string,int})"},
		{"({string,[]{int}})()", "({string,[]{int,bool},map[string]time})()"},
		{"({int,{}})()", "({int,{string}})()"},
		{"(*{string,*@1})()", "(*{string,*@1,bytes})()"},
		{"(map[{int}]{int})()", "(map[{int,int}]{int,string})()"},
	}
	for _, c := range ok {
		for _, pair := range [][2]string{c, {c[1], c[0]}} {
			if err := CompatibleText(pair[0], pair[1]); err != nil {
				t.Errorf("%s and %s: %v, want compatible", pair[0], pair[1], err)
			}
		}
	}
	bad := []struct{ a, b, why string }{
		{"(int,int)(int)", "(int64,int64)(int64)", "parameter 0: int vs int64"},
		{"(string)()", "(string,string)()", "1 parameters vs 2"},
		{"()(int)", "()()", "1 results vs 0"},
		{"()(int)", "()(string)", "result 0: int vs string"},
		{"({string,int})()", "({int,string})()", "parameter 0: field 0: string vs int"},
		{"({string,{int}})()", "({string,{bool}})()", "parameter 0: field 1: field 0: int vs bool"},
		{"([]{int})()", "(map[int]{int})()", "parameter 0: []{int} vs map[int]{int}"},
		{"([2]int)()", "([3]int)()", "parameter 0: [2]int vs [3]int"},
		{"(@1)()", "(@2)()", "parameter 0: @1 vs @2"},
		{"(bin(a.B))()", "(bin(a.C))()", "parameter 0: bin(a.B) vs bin(a.C)"},
		{"(map[int]{int})()", "(map[int]{string})()", "parameter 0: field 0: int vs string"},
		{"(int)()", "(int", "invalid schema"},
	}
	for _, c := range bad {
		for _, pair := range [][2]string{{c.a, c.b}, {c.b, c.a}} {
			err := CompatibleText(pair[0], pair[1])
			if err == nil {
				t.Errorf("%s and %s: compatible, want an error", pair[0], pair[1])
			}
		}
		if err := CompatibleText(c.a, c.b); err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s and %s: %v, want an error saying %q", c.a, c.b, err, c.why)
		}
	}
}

// TestMismatchMessageIsShort: the error that describes a difference
// quotes at most a short excerpt of each shape, however large and deep
// the schemas are (the old message embedded every level's text in the
// next, quadratic in the depth).
func TestMismatchMessageIsShort(t *testing.T) {
	depth := MaxDepth - 2
	a := "(" + strings.Repeat("{", depth) + strings.Repeat("int,", 3000) + "int" + strings.Repeat("}", depth) + ")()"
	b := "(" + strings.Repeat("{", depth) + strings.Repeat("int,", 3000) + "string" + strings.Repeat("}", depth) + ")()"
	err := CompatibleText(a, b)
	if err == nil {
		t.Fatal("compatible, want an error")
	}
	// "field 0: " per level, two shapes of at most about 80 bytes each.
	if max := len("parameter 0: ") + depth*len("field 00: ") + 2*(shortLen+len("…")) + len(" vs "); len(err.Error()) > max {
		t.Errorf("the message is %d bytes, want at most %d: %.200s…", len(err.Error()), max, err)
	}
	if !strings.Contains(err.Error(), "field 3000: int vs string") {
		t.Errorf("the message %.100s… does not say where the shapes differ", err)
	}
	big := "(" + strings.Repeat("{int,string},", 4000) + "int)()"
	err = CompatibleText(big, "(string)()")
	if err == nil || len(err.Error()) > 400 {
		t.Errorf("mismatch of a long list: %v (want a short error)", err)
	}
}

func TestShort(t *testing.T) {
	m, err := Parse("({" + strings.Repeat("int,", 100) + "int})()")
	if err != nil {
		t.Fatal(err)
	}
	got := m.Params.Elems[0].Short()
	if len(got) != shortLen+len("…") || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "{int,int") {
		t.Errorf("Short() = %q", got)
	}
	if s := (&Shape{Kind: Slice, Elems: []*Shape{{Text: "int"}}}).Short(); s != "[]int" {
		t.Errorf("Short() of []int = %q", s)
	}
}

// FuzzParse: no input makes Parse panic or overflow the stack; what it
// accepts prints back as the same text, and is compatible with itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"()()", "(string)({string,string})", "(*{string,*@1,bytes})()",
		"(bin(a.B[x]))(map[[2]int]{})", "({{{", "([99999999999999999999]int)()", "(" + strings.Repeat("*", 200) + "int)()"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q): %v, not ErrInvalid", s, err)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("Parse(%q): a %d-byte error", s, len(err.Error()))
			}
			return
		}
		if got := "(" + inner(m.Params) + ")(" + inner(m.Results) + ")"; got != s {
			t.Fatalf("Parse(%q) prints as %q", s, got)
		}
		if err := Compatible(m, m); err != nil {
			t.Fatalf("%q is not compatible with itself: %v", s, err)
		}
	})
}

// FuzzCompatible: comparing any two texts never panics, and the verdict
// does not depend on the order.
func FuzzCompatible(f *testing.F) {
	f.Add("(string)({string,string})", "(string)({string,string,int})")
	f.Add("({int,{}})()", "({int,{string}})()")
	f.Add("(@1)()", "(@2)()")
	f.Fuzz(func(t *testing.T, a, b string) {
		e1, e2 := CompatibleText(a, b), CompatibleText(b, a)
		if (e1 == nil) != (e2 == nil) {
			t.Fatalf("%q vs %q: %v, but the other way round %v", a, b, e1, e2)
		}
	})
}

func BenchmarkCompatibleMismatch(b *testing.B) {
	a := "(" + strings.Repeat("{", 90) + strings.Repeat("int,", 5000) + "int" + strings.Repeat("}", 90) + ")()"
	c := "(" + strings.Repeat("{", 90) + strings.Repeat("int,", 5000) + "string" + strings.Repeat("}", 90) + ")()"
	b.SetBytes(int64(len(a) + len(c)))
	for b.Loop() {
		if CompatibleText(a, c) == nil {
			b.Fatal("compatible")
		}
	}
}

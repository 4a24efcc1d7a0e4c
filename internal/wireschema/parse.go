package wireschema

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/molgen/molgen/internal/diag"
)

// Parse reads a record file written by Record.Text. path is the file's
// name, for errors.
func Parse(path string, data []byte) (*Record, error) {
	r := &Record{byName: map[string]*TypeDef{}}
	var svc *Service
	var typ *TypeDef
	for i, line := range strings.Split(string(data), "\n") {
		pos := diag.Pos{File: path, Line: i + 1, Col: 1}
		fail := func(format string, args ...any) error {
			return diag.Errors{{Pos: pos, Msg: fmt.Sprintf("invalid wire schema record: "+format+"; restore it from version control, or delete it to record the code as it is", args...)}}
		}
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "//") {
			continue
		}
		word, rest, _ := strings.Cut(strings.TrimPrefix(line, "\t"), " ")
		indented := strings.HasPrefix(line, "\t")
		switch {
		case !indented && word == "service":
			name, iface, ok := strings.Cut(rest, " ")
			if !ok {
				return nil, fail("want 'service NAME INTERFACE'")
			}
			svc, typ = &Service{Name: name, Iface: iface}, nil
			r.Services = append(r.Services, svc)
		case !indented && word == "type":
			name, def, ok := strings.Cut(rest, " ")
			if !ok {
				return nil, fail("want 'type NAME DEFINITION'")
			}
			svc, typ = nil, &TypeDef{Name: name}
			if def == "struct" {
				typ.Def = &Expr{Kind: Struct}
			} else {
				e, err := parseExpr(def)
				if err != nil {
					return nil, fail("%v", err)
				}
				typ.Def = e
			}
			r.Types = append(r.Types, typ)
			r.byName[name] = typ
		case indented && word == "method" && svc != nil:
			m, err := parseMethod(rest)
			if err != nil {
				return nil, fail("%v", err)
			}
			svc.Methods = append(svc.Methods, m)
		case indented && typ != nil && typ.Def.Kind == Struct:
			e, err := parseExpr(rest)
			if err != nil {
				return nil, fail("field %s: %v", word, err)
			}
			typ.Def.Fields = append(typ.Def.Fields, &Field{Name: word, Type: e})
		default:
			return nil, fail("unexpected line %q", line)
		}
	}
	return r, nil
}

// parseMethod reads "Name(P1, P2) (R1)[ oneway]".
func parseMethod(s string) (*Method, error) {
	open := strings.IndexByte(s, '(')
	if open < 1 {
		return nil, fmt.Errorf("want 'method Name(params) (results)'")
	}
	m := &Method{Name: s[:open]}
	p := &exprParser{s: s, off: open}
	m.Params = p.list()
	if !p.eat(" ") {
		p.fail("want a space before the results")
	}
	m.Results = p.list()
	if p.eat(" oneway") {
		m.Oneway = true
	}
	if p.err == nil && p.off != len(s) {
		p.fail("unexpected %q", s[p.off:])
	}
	return m, p.err
}

func parseExpr(s string) (*Expr, error) {
	p := &exprParser{s: s}
	e := p.expr()
	if p.err == nil && p.off != len(s) {
		p.fail("unexpected %q", s[p.off:])
	}
	return e, p.err
}

type exprParser struct {
	s   string
	off int
	err error
}

func (p *exprParser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("at %q: %s", p.s[min(p.off, len(p.s)):], fmt.Sprintf(format, args...))
	}
	p.off = len(p.s)
}

func (p *exprParser) eat(prefix string) bool {
	if strings.HasPrefix(p.s[p.off:], prefix) {
		p.off += len(prefix)
		return true
	}
	return false
}

// list reads "(E1, E2, …)".
func (p *exprParser) list() []*Expr {
	var out []*Expr
	if !p.eat("(") {
		p.fail("want (")
		return nil
	}
	if p.eat(")") {
		return out
	}
	for p.err == nil {
		out = append(out, p.expr())
		if p.eat(")") {
			return out
		}
		if !p.eat(", ") {
			p.fail("want , or )")
		}
	}
	return out
}

func (p *exprParser) expr() *Expr {
	if p.err != nil {
		return &Expr{}
	}
	switch {
	case p.eat("[]"):
		return &Expr{Kind: Slice, Elem: p.expr()}
	case p.eat("["):
		end := strings.IndexByte(p.s[p.off:], ']')
		n, err := strconv.ParseInt(p.s[p.off:p.off+max(end, 0)], 10, 64)
		if end < 0 || err != nil {
			p.fail("want an array length")
			return &Expr{}
		}
		p.off += end + 1
		return &Expr{Kind: Array, Len: n, Elem: p.expr()}
	case p.eat("map["):
		k := p.expr()
		if !p.eat("]") {
			p.fail("want ]")
		}
		return &Expr{Kind: Map, Key: k, Elem: p.expr()}
	case p.eat("*"):
		return &Expr{Kind: Pointer, Elem: p.expr()}
	case p.eat("struct{"):
		e := &Expr{Kind: Struct}
		if p.eat("}") {
			return e
		}
		for p.err == nil {
			name := p.name()
			if !p.eat(" ") {
				p.fail("want a field's type")
			}
			e.Fields = append(e.Fields, &Field{Name: name, Type: p.expr()})
			if p.eat("}") {
				return e
			}
			if !p.eat("; ") {
				p.fail("want ; or }")
			}
		}
		return e
	case p.eat("bin("):
		start, depth := p.off, 1
		for ; depth > 0 && p.off < len(p.s); p.off++ {
			switch p.s[p.off] {
			case '(':
				depth++
			case ')':
				depth--
			}
		}
		if depth > 0 {
			p.fail("unterminated bin(")
		}
		return &Expr{Kind: Leaf, Text: "bin(" + p.s[start:p.off]}
	}
	name := p.name()
	if name == "" {
		p.fail("want a type")
		return &Expr{}
	}
	switch name {
	case "bool", "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64",
		"uintptr", "float32", "float64", "string", "bytes", "time":
		return &Expr{Kind: Leaf, Text: name}
	}
	return &Expr{Kind: Ref, Text: name}
}

// name reads a type or field name: an import path and identifier, with
// type arguments in brackets.
func (p *exprParser) name() string {
	start := p.off
	for p.off < len(p.s) && !strings.ContainsRune(" ,;()[]{}", rune(p.s[p.off])) {
		p.off++
	}
	if p.off > start && p.off < len(p.s) && p.s[p.off] == '[' {
		for depth := 0; p.off < len(p.s); {
			switch p.s[p.off] {
			case '[':
				depth++
			case ']':
				depth--
			}
			p.off++
			if depth == 0 {
				break
			}
		}
	}
	return p.s[start:p.off]
}

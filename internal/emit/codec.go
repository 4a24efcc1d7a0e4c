package emit

import (
	"fmt"
	"strconv"

	"github.com/dave/jennifer/jen"
	"github.com/molgen/molgen/internal/model"
)

// codec emits encoders and decoders for the types of one package's service
// methods. Values of defined composite types get a function pair each
// (needed for recursive types); everything else is encoded inline.
type codec struct {
	sc      *scope
	pkgPath string
	names   map[*model.Type]string // defined composite types -> name fragment
	// aliases names defined types that were reached through an alias by
	// it: the alias may be the only name this package can use (a type of
	// an internal package re-exported by an alias).
	aliases map[*model.Type]*model.Type
	order   []*model.Type
}

// hasFunc reports whether t gets its own encode/decode functions.
func hasFunc(t *model.Type) bool {
	if t.Kind != model.Named {
		return false
	}
	switch t.Underlying.Kind {
	case model.Struct, model.Slice, model.Array, model.Map, model.Pointer, model.Named:
		return true
	}
	return false
}

func newCodec(pkgPath string, methods []*model.Method, sc *scope) *codec {
	c := &codec{pkgPath: pkgPath, sc: sc, aliases: map[*model.Type]*model.Type{}}
	var funcs []*model.Type
	var roots []*model.Type
	for _, m := range methods {
		roots = append(roots, model.Types(m.Params, m.Results)...)
	}
	// Type arguments are not walked: only what values encode needs a codec.
	model.Walk(roots, false, func(t *model.Type) {
		if hasFunc(t) {
			funcs = append(funcs, t)
		}
		if t.Kind == model.Alias && c.aliases[t.Underlying] == nil {
			c.aliases[t.Underlying] = t
		}
	})
	c.names = codecNames(funcs, pkgPath)
	c.order = funcs // sorted by codecNames
	return c
}

// typeExpr is the Go expression of t.
func typeExpr(t *model.Type) jen.Code {
	switch t.Kind {
	case model.Alias:
		return jen.Qual(t.Pkg, t.Name)
	case model.Named, model.Marshaler:
		q := jen.Qual(t.Pkg, t.Name)
		if len(t.TypeArgs) > 0 {
			args := make([]jen.Code, len(t.TypeArgs))
			for i, a := range t.TypeArgs {
				args[i] = typeExpr(a)
			}
			q = q.Types(args...)
		}
		return q
	case model.Bytes:
		return jen.Index().Byte()
	case model.Time:
		return jen.Qual("time", "Time")
	case model.Array:
		return jen.Index(jen.Lit(int(t.Len))).Add(typeExpr(t.Elem))
	case model.Slice:
		return jen.Index().Add(typeExpr(t.Elem))
	case model.Map:
		return jen.Map(typeExpr(t.Key)).Add(typeExpr(t.Elem))
	case model.Pointer:
		return jen.Op("*").Add(typeExpr(t.Elem))
	case model.Struct:
		fields := make([]jen.Code, len(t.Fields))
		for i, f := range t.Fields {
			var field *jen.Statement
			if f.Embedded {
				field = jen.Add(typeExpr(f.Type))
			} else {
				field = jen.Id(f.Name).Add(typeExpr(f.Type))
			}
			if f.Tag != "" {
				// Written verbatim: tags are part of the type's identity,
				// and jen's Tag would reorder them.
				field = field.Op(strconv.Quote(f.Tag))
			}
			fields[i] = field
		}
		return jen.Struct(fields...)
	}
	return jen.Id(t.Kind.BasicName())
}

// minSize is the fewest bytes any value of t encodes to (at least 1), used
// by decoders to refuse lengths the input cannot hold.
func minSize(t *model.Type) int {
	switch t.Kind {
	case model.Float32:
		return 4
	case model.Float64:
		return 8
	case model.Named, model.Alias:
		return minSize(t.Underlying)
	case model.Array:
		if t.Len == 0 {
			return 1
		}
		return int(min(t.Len*int64(minSize(t.Elem)), 1<<20))
	}
	// A struct takes at least its length byte: a writer of an older
	// version of the type may have sent none of its fields.
	return 1
}

var basicMethod = map[model.Kind]string{
	model.Bool: "Bool", model.Int: "Int", model.Int8: "Int8", model.Int16: "Int16",
	model.Int32: "Int32", model.Int64: "Int64", model.Uint: "Uint", model.Uint8: "Uint8",
	model.Uint16: "Uint16", model.Uint32: "Uint32", model.Uint64: "Uint64",
	model.Uintptr: "Uintptr", model.Float32: "Float32", model.Float64: "Float64",
	model.String: "String",
}

// encoderArg converts v to the argument type of the Encoder method for a
// basic kind: int kinds widen to int64, uint kinds to uint64.
func (c *codec) encoderCall(k model.Kind, v jen.Code, named bool) jen.Code {
	e := func() *jen.Statement { return jen.Id(c.id("e")) }
	switch k {
	case model.Int, model.Int8, model.Int16, model.Int32, model.Int64:
		if k == model.Int64 && !named {
			return e().Dot("Int64").Call(v)
		}
		return e().Dot("Int64").Call(jen.Int64().Parens(v))
	case model.Uint, model.Uint8, model.Uint16, model.Uint32, model.Uint64, model.Uintptr:
		if k == model.Uint64 && !named {
			return e().Dot("Uint64").Call(v)
		}
		return e().Dot("Uint64").Call(jen.Uint64().Parens(v))
	}
	if named {
		v = jen.Id(k.BasicName()).Parens(v)
	}
	return e().Dot(basicMethod[k]).Call(v)
}

// deref is the expression for the value pointer p points to, an element of
// type elem: p itself for structs (selectors dereference), *p for values
// used whole, (*p) where an index or selector follows.
func deref(elem *model.Type, p *jen.Statement) *jen.Statement {
	elem = model.Resolve(elem)
	k := elem.Kind
	if k == model.Named && !hasFunc(elem) {
		k = elem.Underlying.Kind
	}
	switch {
	case k == model.Struct:
		return p.Clone() // p is a pointer, maybe (*q): p.F reads the field
	case k.IsBasic(), k == model.Bytes, k == model.Time, k == model.Named, k == model.Marshaler:
		return jen.Op("*").Add(p.Clone())
	}
	// A pointer (read with a selector or dereferenced next), or anything
	// indexed next: parenthesized.
	return jen.Parens(jen.Op("*").Add(p.Clone()))
}

// usesValue reports whether encoding or decoding a value of t refers to it:
// an empty struct or array is written as a constant byte, so a loop over
// them must not declare a variable it does not use.
func usesValue(t *model.Type) bool {
	t = model.Resolve(t)
	switch t.Kind {
	case model.Struct:
		for _, f := range t.Fields {
			if usesValue(f.Type) {
				return true
			}
		}
		return false
	case model.Array:
		return t.Len > 0 && usesValue(t.Elem)
	case model.Named:
		return hasFunc(t) || usesValue(t.Underlying)
	}
	return true
}

// rangeOver is "for i := range x", or "for range x" when i is not used.
func rangeOver(i *jen.Statement, x *jen.Statement, elem *model.Type) *jen.Statement {
	if usesValue(elem) {
		return jen.For(i.Clone().Op(":=").Range().Add(x.Clone()))
	}
	return jen.For(jen.Range().Add(x.Clone()))
}

// isByte reports whether t is the unnamed byte type.
func isByte(t *model.Type) bool { return model.Resolve(t).Kind == model.Uint8 }

// enc returns statements encoding the addressable expression v of type t
// with the Encoder e. depth keeps loop variables apart.
//
//	e.Struct()
//	e.String(v.Name)
//	e.Len(len(v.Tags), v.Tags == nil)
//	for i0 := range v.Tags { e.String(v.Tags[i0]) }
//	e.EndStruct()
func (c *codec) enc(t *model.Type, v *jen.Statement, depth int, named bool) []jen.Code {
	return c.encAt(t, v, nil, depth, named)
}

// encAt is enc with the address of v when it is known (the pointer v was
// read through), to avoid writing &(*p).
func (c *codec) encAt(t *model.Type, v, addr *jen.Statement, depth int, named bool) []jen.Code {
	if addr == nil {
		addr = jen.Op("&").Add(v)
	}
	e := func() *jen.Statement { return jen.Id(c.id("e")) }
	if t.Kind == model.Alias {
		return c.encAt(t.Underlying, v, addr, depth, named)
	}
	switch {
	case t.Kind.IsBasic():
		return []jen.Code{c.encoderCall(t.Kind, v, named)}
	}
	switch t.Kind {
	case model.Bytes:
		if named {
			return []jen.Code{e().Dot("Bytes").Call(jen.Index().Byte().Parens(v))}
		}
		return []jen.Code{e().Dot("Bytes").Call(v)}
	case model.Time:
		if named {
			return []jen.Code{e().Dot("Time").Call(jen.Qual("time", "Time").Parens(v))}
		}
		return []jen.Code{e().Dot("Time").Call(v)}
	case model.Marshaler:
		return []jen.Code{e().Dot("Marshal").Call(addr)}
	case model.Named:
		if hasFunc(t) {
			return []jen.Code{jen.Id(encFunc(c.names[t])).Call(e(), addr)}
		}
		return c.encAt(t.Underlying, v, addr, depth, true)
	case model.Pointer:
		// A defined pointer type has no methods: convert it to the plain
		// pointer before using the pointee's (e.g. MarshalBinary).
		ptr := v.Clone()
		if named {
			ptr = jen.Parens(jen.Op("*").Add(typeExpr(t.Elem))).Parens(v.Clone())
		}
		return []jen.Code{jen.If(v.Clone().Op("==").Nil()).Block(
			e().Dot("Bool").Call(jen.False()),
		).Else().Block(append([]jen.Code{e().Dot("Bool").Call(jen.True())},
			c.encAt(t.Elem, deref(t.Elem, ptr), ptr, depth+1, false)...)...)}
	case model.Slice:
		i := jen.Id(c.id(fmt.Sprintf("i%d", depth)))
		return []jen.Code{
			e().Dot("Len").Call(jen.Len(v.Clone()), v.Clone().Op("==").Nil()),
			rangeOver(i, v, t.Elem).Block(
				c.enc(t.Elem, v.Clone().Index(i.Clone()), depth+1, false)...),
		}
	case model.Array:
		if t.Len == 0 {
			return []jen.Code{e().Dot("Empty").Call()}
		}
		if isByte(t.Elem) {
			return []jen.Code{e().Dot("Raw").Call(v.Clone().Index(jen.Op(":")))}
		}
		i := jen.Id(c.id(fmt.Sprintf("i%d", depth)))
		return []jen.Code{rangeOver(i, v, t.Elem).Block(
			c.enc(t.Elem, v.Clone().Index(i.Clone()), depth+1, false)...)}
	case model.Map:
		k := jen.Id(c.id(fmt.Sprintf("k%d", depth)))
		val := jen.Id(c.id(fmt.Sprintf("v%d", depth)))
		body := append(c.enc(t.Key, k.Clone(), depth+1, false), c.enc(t.Elem, val.Clone(), depth+1, false)...)
		kv := []jen.Code{jen.Id("_"), jen.Id("_")}
		if usesValue(t.Key) {
			kv[0] = k.Clone()
		}
		if usesValue(t.Elem) {
			kv[1] = val.Clone()
		}
		loop := jen.For(jen.List(kv...).Op(":=").Range().Add(v.Clone()))
		if !usesValue(t.Key) && !usesValue(t.Elem) {
			loop = jen.For(jen.Range().Add(v.Clone()))
		} else if !usesValue(t.Elem) {
			loop = jen.For(k.Clone().Op(":=").Range().Add(v.Clone()))
		}
		return []jen.Code{
			e().Dot("Len").Call(jen.Len(v.Clone()), v.Clone().Op("==").Nil()),
			loop.Block(body...),
		}
	case model.Struct:
		// Framed by its length, so that fields may be appended (docs/WIRE.md).
		out := []jen.Code{e().Dot("Struct").Call()}
		for _, f := range t.Fields {
			out = append(out, c.enc(f.Type, v.Clone().Dot(f.Name), depth, false)...)
		}
		return append(out, e().Dot("EndStruct").Call())
	}
	panic(fmt.Sprintf("molgen: no encoder for kind %d", t.Kind))
}

// dec returns statements decoding into the addressable expression v of type
// t with the Decoder d. conv, when set, is the defined type to convert basic
// values to.
//
//	d.Struct()
//	if d.More() { v.Name = d.String() }
//	if d.More() {
//		if n0 := d.Len(1); n0 < 0 { v.Tags = nil } else {
//			v.Tags = runtime.MakeSlice[string](d, n0) // charged to d's memory budget
//			for i0 := range v.Tags { v.Tags[i0] = d.String() }
//		}
//	}
//	d.EndStruct()
func (c *codec) dec(t *model.Type, v *jen.Statement, depth int, conv jen.Code) []jen.Code {
	return c.decAt(t, v, nil, depth, conv)
}

// decAt is dec with the address of v when it is known.
func (c *codec) decAt(t *model.Type, v, addr *jen.Statement, depth int, conv jen.Code) []jen.Code {
	if addr == nil {
		addr = jen.Op("&").Add(v)
	}
	d := func() *jen.Statement { return jen.Id(c.id("d")) }
	if t.Kind == model.Alias {
		if u := t.Underlying; u.Kind == model.Named && !hasFunc(u) {
			return c.decAt(u.Underlying, v, addr, depth, typeExpr(t)) // convert to the alias's name
		}
		return c.decAt(t.Underlying, v, addr, depth, conv)
	}
	if t.Kind.IsBasic() {
		call := d().Dot(basicMethod[t.Kind]).Call()
		if conv != nil {
			call = jen.Add(conv).Parens(call)
		}
		return []jen.Code{v.Clone().Op("=").Add(call)}
	}
	switch t.Kind {
	case model.Bytes:
		return []jen.Code{v.Clone().Op("=").Add(d().Dot("Bytes").Call())}
	case model.Time:
		if conv != nil {
			return []jen.Code{v.Clone().Op("=").Add(conv).Parens(d().Dot("Time").Call())}
		}
		return []jen.Code{v.Clone().Op("=").Add(d().Dot("Time").Call())}
	case model.Marshaler:
		return []jen.Code{d().Dot("Unmarshal").Call(addr)}
	case model.Named:
		if hasFunc(t) {
			return []jen.Code{jen.Id(decFunc(c.names[t])).Call(d(), addr)}
		}
		return c.decAt(t.Underlying, v, addr, depth, typeExpr(t))
	case model.Pointer:
		ptr := v.Clone()
		if conv != nil { // a defined pointer type, as in encAt
			ptr = jen.Parens(jen.Op("*").Add(typeExpr(t.Elem))).Parens(v.Clone())
		}
		return []jen.Code{jen.If(d().Dot("Bool").Call()).Block(append(
			[]jen.Code{v.Clone().Op("=").Add(rt("New").Types(typeExpr(t.Elem)).Call(d()))},
			c.decAt(t.Elem, deref(t.Elem, ptr), ptr, depth+1, nil)...)...,
		).Else().Block(v.Clone().Op("=").Nil())}
	case model.Slice:
		n := jen.Id(c.id(fmt.Sprintf("n%d", depth)))
		i := jen.Id(c.id(fmt.Sprintf("i%d", depth)))
		return []jen.Code{jen.If(
			n.Clone().Op(":=").Add(d().Dot("Len").Call(jen.Lit(minSize(t.Elem)))),
			n.Clone().Op("<").Lit(0),
		).Block(v.Clone().Op("=").Nil()).Else().Block(
			v.Clone().Op("=").Add(rt("MakeSlice").Types(typeExpr(t.Elem)).Call(d(), n.Clone())),
			rangeOver(i, v, t.Elem).Block(
				c.dec(t.Elem, v.Clone().Index(i.Clone()), depth+1, nil)...),
		)}
	case model.Array:
		if t.Len == 0 {
			return []jen.Code{d().Dot("Empty").Call()}
		}
		if isByte(t.Elem) {
			return []jen.Code{d().Dot("Raw").Call(v.Clone().Index(jen.Op(":")))}
		}
		i := jen.Id(c.id(fmt.Sprintf("i%d", depth)))
		return []jen.Code{rangeOver(i, v, t.Elem).Block(
			c.dec(t.Elem, v.Clone().Index(i.Clone()), depth+1, nil)...)}
	case model.Map:
		n := jen.Id(c.id(fmt.Sprintf("n%d", depth)))
		i := jen.Id(c.id(fmt.Sprintf("i%d", depth)))
		k := jen.Id(c.id(fmt.Sprintf("k%d", depth)))
		val := jen.Id(c.id(fmt.Sprintf("v%d", depth)))
		body := []jen.Code{
			jen.Var().Add(k.Clone()).Add(typeExpr(t.Key)),
			jen.Var().Add(val.Clone()).Add(typeExpr(t.Elem)),
		}
		body = append(body, c.dec(t.Key, k.Clone(), depth+1, nil)...)
		body = append(body, c.dec(t.Elem, val.Clone(), depth+1, nil)...)
		body = append(body, v.Clone().Index(k.Clone()).Op("=").Add(val.Clone()))
		return []jen.Code{jen.If(
			n.Clone().Op(":=").Add(d().Dot("Len").Call(jen.Lit(min(minSize(t.Key)+minSize(t.Elem), 1<<20)))),
			n.Clone().Op("<").Lit(0),
		).Block(v.Clone().Op("=").Nil()).Else().Block(
			v.Clone().Op("=").Add(rt("MakeMap").Types(typeExpr(t.Key), typeExpr(t.Elem)).Call(d(), n.Clone())),
			jen.For(jen.Add(i.Clone()).Op(":=").Lit(0), i.Clone().Op("<").Add(n.Clone()), i.Clone().Op("++")).Block(body...),
		)}
	case model.Struct:
		// A field the writer did not send keeps its zero value; fields it
		// sent beyond those known here are skipped by EndStruct.
		out := []jen.Code{d().Dot("Struct").Call()}
		for _, f := range t.Fields {
			out = append(out, jen.If(d().Dot("More").Call()).Block(c.dec(f.Type, v.Clone().Dot(f.Name), depth, nil)...))
		}
		return append(out, d().Dot("EndStruct").Call())
	}
	panic(fmt.Sprintf("molgen: no decoder for kind %d", t.Kind))
}

// funcs emits the encode/decode function pair of every defined composite type.
//
//	func molgenEnc_User(e *runtime.Encoder, v *User) { e.Struct(); e.String(v.Name); e.EndStruct() }
//	func molgenDec_User(d *runtime.Decoder, v *User) { d.Struct(); if d.More() { v.Name = d.String() }; d.EndStruct() }
func (c *codec) funcs(f *jen.File) {
	e, d, v := c.id("e"), c.id("d"), c.id("v")
	for _, t := range c.order {
		name := c.names[t]
		typ := c.typeName(t)
		// Struct fields read through the pointer; other kinds through *v.
		val := jen.Parens(jen.Op("*").Id(v))
		if t.Underlying.Kind == model.Struct {
			val = jen.Id(v)
		}
		encBody := c.enc(t.Underlying, val.Clone(), 0, true)
		decBody := c.dec(t.Underlying, val.Clone(), 0, typ)
		if t.Recursive {
			encBody = guard(e, encBody)
			decBody = guard(d, decBody)
		}
		f.Func().Id(encFunc(name)).Params(
			jen.Id(e).Op("*").Qual(runtimePath, "Encoder"), jen.Id(v).Op("*").Add(typ),
		).Block(encBody...)
		f.Line()
		f.Func().Id(decFunc(name)).Params(
			jen.Id(d).Op("*").Qual(runtimePath, "Decoder"), jen.Id(v).Op("*").Add(typ),
		).Block(decBody...)
		f.Line()
	}
}

// typeName is how generated code names the defined type t: by an alias
// when one led to it, else by its own name.
func (c *codec) typeName(t *model.Type) jen.Code {
	if a := c.aliases[t]; a != nil {
		return typeExpr(a)
	}
	return typeExpr(t)
}

// id is the scope's name for a local variable.
func (c *codec) id(name string) string { return c.sc.id(name) }

// guard wraps the body of a recursive type's codec in a depth check.
func guard(x string, body []jen.Code) []jen.Code {
	out := []jen.Code{jen.If(jen.Op("!").Id(x).Dot("Enter").Call()).Block(jen.Return())}
	out = append(out, body...)
	return append(out, jen.Id(x).Dot("Leave").Call())
}

package emit

import (
	"time"

	"github.com/dave/jennifer/jen"
)

// The small expressions every part of the emitter writes.

// rt names a declaration of package runtime: rt("Node") is runtime.Node.
func rt(name string) *jen.Statement { return jen.Qual(runtimePath, name) }

// ctxType is context.Context.
func ctxType() *jen.Statement { return jen.Qual("context", "Context") }

// multi is a composite literal body with one item per line.
func multi(items ...jen.Code) *jen.Statement {
	return jen.Custom(jen.Options{Open: "{", Close: "}", Separator: ",", Multi: true}, items...)
}

// field is "name: value" in a composite literal.
func field(name string, value jen.Code) *jen.Statement { return jen.Id(name).Op(":").Add(value) }

// durationExpr writes d as a readable constant expression.
func durationExpr(d time.Duration) jen.Code {
	units := []struct {
		unit time.Duration
		name string
	}{{time.Hour, "Hour"}, {time.Minute, "Minute"}, {time.Second, "Second"}, {time.Millisecond, "Millisecond"}, {time.Microsecond, "Microsecond"}}
	for _, u := range units {
		if d%u.unit == 0 {
			return jen.Lit(int(d/u.unit)).Op("*").Qual("time", u.name)
		}
	}
	return jen.Qual("time", "Duration").Parens(jen.Lit(int(d)))
}

// stringSlice is a []string literal of ss, on one line.
func stringSlice(ss []string) jen.Code {
	items := make([]jen.Code, len(ss))
	for i, s := range ss {
		items[i] = jen.Lit(s)
	}
	return jen.Index().String().Values(items...)
}

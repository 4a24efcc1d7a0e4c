// Package model is molgen's description of an application: the services,
// constructors and mains found in annotated Go packages, with Go names,
// positions and doc comments precomputed. It is plain data: the loader
// fills it from go/types, the emitter reads it, and neither side needs the
// other's libraries.
package model

import (
	"time"

	"github.com/molgen/molgen/internal/diag"
)

// Program is everything molgen found in one run.
type Program struct {
	// Packages lists the packages that declare services, constructors or
	// mains, sorted by import path.
	Packages []*Package
	// Stale lists generated files (absolute paths) in loaded packages that
	// declare nothing any more.
	Stale []string
	// Module is the main module's path and Dir its root directory.
	Module, ModuleDir string
}

// Package is one Go package with molgen declarations.
type Package struct {
	Path string // import path
	Name string // package name
	Dir  string // absolute directory

	Services     []*Service
	Constructors []*Constructor
	Mains        []*Main
	// Scope lists the package-level names the package declares (outside
	// generated code), which generated imports must not take.
	Scope []string
	// Errors lists the package's exported package-level variables of type
	// error, whose identity survives remote calls.
	Errors []string
}

// Ref names a service interface from wherever it is used.
type Ref struct {
	Pkg     string // import path of the interface's package
	PkgName string // that package's name
	Iface   string // interface type name
	Name    string // service name
}

// Service is an interface annotated with //molgen:service.
type Service struct {
	Name    string // service name, unique in the app
	Iface   string // Go type name
	Pkg     string // import path
	PkgName string
	Doc     string
	Pos     diag.Pos
	Methods []*Method
}

// Ref returns a reference to s.
func (s *Service) Ref() Ref {
	return Ref{Pkg: s.Pkg, PkgName: s.PkgName, Iface: s.Iface, Name: s.Name}
}

// Method is one method of a service.
type Method struct {
	Name    string
	Doc     string
	Pos     diag.Pos
	Params  []Var // after the leading context.Context
	Results []Var // before the final error
	Timeout time.Duration
	Retry   int
	Oneway  bool
}

// Var is a parameter or result.
type Var struct {
	Name string // as declared; may be empty
	Type *Type
}

// Constructor is a func annotated with //molgen:constructor.
type Constructor struct {
	Func    string // Go function name
	Pkg     string // import path of the function's package
	PkgName string
	Pos     diag.Pos
	Service Ref   // the service it builds
	HasCtx  bool  // takes a leading context.Context
	HasErr  bool  // returns a trailing error
	Deps    []Ref // injected services, in parameter order
}

// Main is a func annotated with //molgen:main.
type Main struct {
	Name    string // unique in the app, like service names
	Func    string
	Pkg     string
	PkgName string
	Pos     diag.Pos
	Deps    []Ref // injected services, in parameter order
}

// Kind classifies a serializable type.
type Kind int

// The kinds of serializable types.
const (
	Invalid Kind = iota
	Bool
	Int
	Int8
	Int16
	Int32
	Int64
	Uint
	Uint8
	Uint16
	Uint32
	Uint64
	Uintptr
	Float32
	Float64
	String
	Bytes // []byte with an unnamed byte element
	Time  // time.Time
	Array // [Len]Elem
	Slice // []Elem
	Map   // map[Key]Elem
	Pointer
	Struct
	// Named is a defined type; Underlying says how it is encoded.
	Named
	// Marshaler is a defined type whose pointer implements
	// encoding.BinaryMarshaler and encoding.BinaryUnmarshaler.
	Marshaler
	// Alias is a type alias, kept so that generated code names the type as
	// the user did (an alias may be the only nameable route to a type of
	// an internal package); Underlying is the aliased type.
	Alias
)

var basicNames = [...]string{
	Bool: "bool", Int: "int", Int8: "int8", Int16: "int16", Int32: "int32",
	Int64: "int64", Uint: "uint", Uint8: "uint8", Uint16: "uint16",
	Uint32: "uint32", Uint64: "uint64", Uintptr: "uintptr",
	Float32: "float32", Float64: "float64", String: "string",
}

// IsBasic reports whether k is a predeclared boolean, numeric or string kind.
func (k Kind) IsBasic() bool { return k >= Bool && k <= String }

// BasicName returns the Go name of a basic kind.
func (k Kind) BasicName() string {
	if !k.IsBasic() {
		return ""
	}
	return basicNames[k]
}

// Type is a serializable Go type. Named types are shared: every use of the
// same defined type points at the same *Type, so recursive types form
// cycles through Underlying.
type Type struct {
	Kind Kind

	// Named, Marshaler and Alias: the type's package and name, its type
	// arguments when it is an instance of a generic type, and (Named and
	// Alias) what it is defined as or stands for.
	Pkg, PkgName, Name string
	TypeArgs           []*Type
	Underlying         *Type
	// Recursive is set on Named types that can contain themselves.
	Recursive bool
	// Pos is where a Named or Marshaler type is declared (may be unset).
	Pos diag.Pos

	Elem   *Type   // Array, Slice, Map (value), Pointer
	Key    *Type   // Map
	Len    int64   // Array
	Fields []Field // Struct
}

// Field is a struct field.
type Field struct {
	Name     string
	Embedded bool
	Type     *Type
	Tag      string   // raw tag; part of an unnamed struct type's identity
	Pos      diag.Pos // where the field is declared (may be unset)
}

// Walk calls visit once for each distinct type in roots and the types they
// are made of: what their values encode (underlying, elements, keys, field
// types) and, with typeArgs, the type arguments of generic instances.
func Walk(roots []*Type, typeArgs bool, visit func(*Type)) {
	seen := map[*Type]bool{}
	var walk func(t *Type)
	walk = func(t *Type) {
		if t == nil || seen[t] {
			return
		}
		seen[t] = true
		visit(t)
		if typeArgs {
			for _, a := range t.TypeArgs {
				walk(a)
			}
		}
		walk(t.Underlying)
		walk(t.Elem)
		walk(t.Key)
		for _, f := range t.Fields {
			walk(f.Type)
		}
	}
	for _, t := range roots {
		walk(t)
	}
}

// Types returns the types of vars.
func Types(vars ...[]Var) []*Type {
	var out []*Type
	for _, vs := range vars {
		for _, v := range vs {
			out = append(out, v.Type)
		}
	}
	return out
}

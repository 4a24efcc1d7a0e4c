package emit

import (
	"fmt"

	"github.com/dave/jennifer/jen"
	"github.com/molgen/molgen/internal/model"
	"github.com/molgen/molgen/internal/wireschema"
)

// service emits everything for one service: its descriptor, client,
// server shim, request/response types and compile-time checks.
func service(f *jen.File, c *codec, s *model.Service) {
	n := namesOf(s)
	f.Comment("---------------------------------------------------------------- " + s.Iface)
	f.Line()
	descriptor(f, s, n)
	clientCtor(f, c, s, n)
	register(f, c, s, n)
	checks(f, s, n)
	f.Commentf("%s is the client side of %s: each method calls the implementation", n.client, s.Iface)
	f.Comment("directly when it is hosted on the same node, and sends a request otherwise.")
	f.Type().Id(n.client).Struct(jen.Id("c").Op("*").Add(rt("Client")))
	f.Line()
	for i, m := range s.Methods {
		clientMethod(f, c, s, n, i, m)
	}
	for _, m := range s.Methods {
		handler(f, c, s, m)
		messages(f, c, s, m)
	}
}

// descriptor emits the service's runtime description.
//
//	var molgenDesc_Users = runtime.ServiceDesc{Name: "users", Methods: []runtime.MethodDesc{{Name: "Get"}}}
func descriptor(f *jen.File, s *model.Service, n svcNames) {
	methods := make([]jen.Code, len(s.Methods))
	for i, m := range s.Methods {
		fields := []jen.Code{field("Name", jen.Lit(m.Name)), field("Schema", jen.Lit(wireschema.MethodSchema(m)))}
		if m.Timeout > 0 {
			fields = append(fields, field("Timeout", durationExpr(m.Timeout)))
		}
		if m.Retry > 0 {
			fields = append(fields, field("Retry", jen.Lit(m.Retry)))
		}
		if m.Oneway {
			fields = append(fields, field("Oneway", jen.True()))
		}
		methods[i] = jen.Values(fields...)
	}
	f.Commentf("%s describes service %q to the runtime.", n.desc, s.Name)
	f.Var().Id(n.desc).Op("=").Add(rt("ServiceDesc")).Add(multi(
		field("Name", jen.Lit(s.Name)),
		field("Interface", jen.Lit(s.Pkg+"."+s.Iface)),
		field("Methods", jen.Index().Add(rt("MethodDesc")).Add(multi(methods...))),
	))
	f.Line()
}

// clientCtor emits NewXClient.
//
//	func NewUsersClient(n *runtime.Node) Users { return &molgenClient_Users{c: n.Client(&molgenDesc_Users)} }
func clientCtor(f *jen.File, c *codec, s *model.Service, n svcNames) {
	node := c.id("n")
	f.Commentf("%s returns %s that routes each call by n's placement: a direct", n.newClient, withArticle(s.Iface))
	f.Commentf("call when service %q is hosted on n, a request over Kafka otherwise.", s.Name)
	f.Func().Id(n.newClient).Params(jen.Id(node).Op("*").Add(rt("Node"))).Id(s.Iface).Block(
		jen.Return(jen.Op("&").Id(n.client).Values(jen.Dict{
			jen.Id("c"): jen.Id(node).Dot("Client").Call(jen.Op("&").Id(n.desc)),
		})),
	)
	f.Line()
}

// register emits RegisterX, the server shim.
//
//	func RegisterUsers(n *runtime.Node, impl Users) error {
//		return n.Register(&molgenDesc_Users, impl, []runtime.Handler{molgenHandle_Users_Get})
//	}
func register(f *jen.File, c *codec, s *model.Service, n svcNames) {
	node, impl := c.id("n"), c.id("impl")
	handlers := make([]jen.Code, len(s.Methods))
	for i, m := range s.Methods {
		handlers[i] = jen.Id(handlerName(s, m))
	}
	f.Commentf("%s hosts impl as service %q on n: local clients call it directly and,", n.register, s.Name)
	f.Comment("once n is started with Kafka, it serves requests from other nodes.")
	f.Func().Id(n.register).Params(jen.Id(node).Op("*").Add(rt("Node")), jen.Id(impl).Id(s.Iface)).Error().Block(
		jen.If(jen.Id(impl).Op("==").Nil()).Block(
			jen.Return(jen.Qual("fmt", "Errorf").Call(jen.Lit(fmt.Sprintf("molgen: %s called with a nil %s", n.register, s.Iface)))),
		),
		jen.Return(jen.Id(node).Dot("Register").Call(jen.Op("&").Id(n.desc), jen.Id(impl),
			jen.Index().Add(rt("Handler")).Values(handlers...))),
	)
	f.Line()
}

// methodSig returns a method's signature as it appears in the interface.
func methodSig(m *model.Method) *jen.Statement {
	params := []jen.Code{ctxType()}
	for _, p := range m.Params {
		params = append(params, typeExpr(p.Type))
	}
	var results []jen.Code
	for _, r := range m.Results {
		results = append(results, typeExpr(r.Type))
	}
	results = append(results, jen.Error())
	return jen.Id(m.Name).Params(params...).Params(results...)
}

// checks emits compile-time checks that the interface and the generated
// client still match.
func checks(f *jen.File, s *model.Service, n svcNames) {
	sigs := make([]jen.Code, len(s.Methods))
	for i, m := range s.Methods {
		sigs[i] = methodSig(m)
	}
	f.Commentf("Compile-time checks that %s has the methods this file was generated for.", s.Iface)
	f.Comment("If they fail to compile, re-run 'molgen generate'.")
	f.Var().Defs(
		jen.Id("_").Id(s.Iface).Op("=").Parens(jen.Op("*").Id(n.client)).Parens(jen.Nil()),
		jen.Id("_").Interface(sigs...).Op("=").Id(s.Iface).Parens(jen.Nil()),
	)
	f.Line()
}

// clientLocals are the names clientMethod declares besides its parameters
// and results (before scope renaming): a parameter or result never takes
// one of them. A local added to clientMethod must be added here.
var clientLocals = []string{"ctx", "x", "impl", "ok", "has", "cancel", "req", "resp", "err"}

// clientMethod emits one client method. Parameters and results keep the
// names the user gave them where that is safe (see scope.varNames). A call
// to a local implementation goes through the client's Begin and End (the
// runtime's one call path: context checks, panics, errors, observers), a
// oneway one through Go, and a remote one through Call.
//
//	func (x *molgenClient_Users) Get(ctx context.Context, id UserID) (r0 User, err error) {
//		if impl, ok := x.c.Local().(Users); ok {
//			if err = ctx.Err(); err != nil || x.c.Observed() {
//				if ctx, err = x.c.Begin(ctx, 0, err); err != nil {
//					return r0, err
//				}
//			}
//			defer x.c.End(ctx, 0, &err)
//			return impl.Get(ctx, id)
//		}
//		req := molgenRequest_Users_Get{A0: id}
//		var resp molgenResponse_Users_Get
//		err = x.c.Call(ctx, 0, &req, &resp)
//		return resp.R0, err
//	}
//
// and for a oneway method, locally:
//
//	return x.c.Go(ctx, 2, func(ctx context.Context) error { return impl.Touch(ctx, id) })
func clientMethod(f *jen.File, c *codec, s *model.Service, n svcNames, index int, m *model.Method) {
	id := func(name string) *jen.Statement { return jen.Id(c.id(name)) }
	paramNames, resultNames := c.sc.varNames(m.Params, m.Results, clientLocals)
	params := []jen.Code{id("ctx").Add(ctxType())}
	args := []jen.Code{id("ctx")}
	reqFields := jen.Dict{}
	for i, p := range m.Params {
		a := paramNames[i]
		params = append(params, jen.Id(a).Add(typeExpr(p.Type)))
		args = append(args, jen.Id(a))
		reqFields[jen.Id(fmt.Sprintf("A%d", i))] = jen.Id(a)
	}
	var results, respVals []jen.Code
	for i, r := range m.Results {
		results = append(results, jen.Id(resultNames[i]).Add(typeExpr(r.Type)))
		respVals = append(respVals, id("resp").Dot(fmt.Sprintf("R%d", i)))
	}
	results = append(results, id("err").Error())
	respVals = append(respVals, id("err"))

	local := []jen.Code{}
	if m.Oneway {
		// The runtime applies the method's timeout to oneway calls itself.
		local = append(local, jen.Return(id("x").Dot("c").Dot("Go").Call(id("ctx"), jen.Lit(index),
			jen.Func().Params(id("ctx").Add(ctxType())).Error().Block(jen.Return(id("impl").Dot(m.Name).Call(args...))))))
	}
	if m.Timeout > 0 && !m.Oneway {
		local = append(local, jen.If(jen.List(jen.Id("_"), id("has")).Op(":=").Add(id("ctx")).Dot("Deadline").Call(), jen.Op("!").Add(id("has"))).Block(
			jen.Var().Add(id("cancel")).Qual("context", "CancelFunc"),
			jen.List(id("ctx"), id("cancel")).Op("=").Qual("context", "WithTimeout").Call(id("ctx"), durationExpr(m.Timeout)),
			jen.Defer().Add(id("cancel")).Call(),
		))
	}
	if !m.Oneway {
		zero := make([]jen.Code, 0, len(m.Results)+1)
		for _, r := range resultNames {
			zero = append(zero, jen.Id(r))
		}
		zero = append(zero, id("err"))
		local = append(local,
			jen.If(id("err").Op("=").Add(id("ctx")).Dot("Err").Call(), id("err").Op("!=").Nil().Op("||").Add(id("x")).Dot("c").Dot("Observed").Call()).Block(
				jen.If(jen.List(id("ctx"), id("err")).Op("=").Add(id("x")).Dot("c").Dot("Begin").Call(id("ctx"), jen.Lit(index), id("err")), id("err").Op("!=").Nil()).Block(
					jen.Return(zero...),
				),
			),
			jen.Defer().Add(id("x")).Dot("c").Dot("End").Call(id("ctx"), jen.Lit(index), jen.Op("&").Add(id("err"))),
			jen.Return(id("impl").Dot(m.Name).Call(args...)),
		)
	}
	if m.Doc != "" {
		f.Comment(m.Doc)
	}
	f.Func().Params(id("x").Op("*").Id(n.client)).Id(m.Name).Params(params...).Params(results...).Block(
		jen.If(jen.List(id("impl"), id("ok")).Op(":=").Add(id("x")).Dot("c").Dot("Local").Call().Assert(jen.Id(s.Iface)), id("ok")).Block(local...),
		id("req").Op(":=").Id(requestType(s, m)).Values(reqFields),
		jen.Var().Add(id("resp")).Id(responseType(s, m)),
		id("err").Op("=").Add(id("x")).Dot("c").Dot("Call").Call(id("ctx"), jen.Lit(index), jen.Op("&").Add(id("req")), jen.Op("&").Add(id("resp"))),
		jen.Return(respVals...),
	)
	f.Line()
}

// handler emits the server-side function that decodes a request, calls the
// implementation and returns the response.
//
//	func molgenHandle_Users_Get(ctx context.Context, impl any, d *runtime.Decoder) (runtime.Message, error) {
//		var req molgenRequest_Users_Get
//		req.MolgenDecode(d)
//		if err := d.Finish(); err != nil { return nil, runtime.BadRequest(err) }
//		var resp molgenResponse_Users_Get
//		var err error
//		resp.R0, err = impl.(Users).Get(ctx, req.A0)
//		return &resp, err
//	}
func handler(f *jen.File, c *codec, s *model.Service, m *model.Method) {
	id := func(name string) *jen.Statement { return jen.Id(c.id(name)) }
	args := []jen.Code{id("ctx")}
	for i := range m.Params {
		args = append(args, id("req").Dot(fmt.Sprintf("A%d", i)))
	}
	var lhs []jen.Code
	for i := range m.Results {
		lhs = append(lhs, id("resp").Dot(fmt.Sprintf("R%d", i)))
	}
	lhs = append(lhs, id("err"))
	f.Commentf("%s serves %s.%s requests.", handlerName(s, m), s.Iface, m.Name)
	f.Func().Id(handlerName(s, m)).Params(
		id("ctx").Add(ctxType()), id("impl").Any(), id("d").Op("*").Add(rt("Decoder")),
	).Params(rt("Message"), jen.Error()).Block(
		jen.Var().Add(id("req")).Id(requestType(s, m)),
		id("req").Dot("MolgenDecode").Call(id("d")),
		jen.If(id("err").Op(":=").Add(id("d")).Dot("Finish").Call(), id("err").Op("!=").Nil()).Block(
			jen.Return(jen.Nil(), rt("BadRequest").Call(id("err"))),
		),
		jen.Var().Add(id("resp")).Id(responseType(s, m)),
		jen.Var().Add(id("err")).Error(),
		jen.List(lhs...).Op("=").Add(id("impl")).Assert(jen.Id(s.Iface)).Dot(m.Name).Call(args...),
		jen.Return(jen.Op("&").Add(id("resp")), id("err")),
	)
	f.Line()
}

// messages emits the request and response types of a method with their
// generated codecs.
//
//	type molgenRequest_Users_Get struct{ A0 UserID }
//	func (m *molgenRequest_Users_Get) MolgenEncode(e *runtime.Encoder) { e.String(string(m.A0)) }
//	func (m *molgenRequest_Users_Get) MolgenDecode(d *runtime.Decoder) { m.A0 = UserID(d.String()) }
func messages(f *jen.File, c *codec, s *model.Service, m *model.Method) {
	message(f, c, requestType(s, m), fmt.Sprintf("the arguments of %s.%s", s.Iface, m.Name), "A", m.Params)
	message(f, c, responseType(s, m), fmt.Sprintf("the results of %s.%s", s.Iface, m.Name), "R", m.Results)
}

func message(f *jen.File, c *codec, name, what, prefix string, vars []model.Var) {
	recv, e, d := c.id("m"), c.id("e"), c.id("d")
	var fields, enc, dec []jen.Code
	for i, v := range vars {
		field := fmt.Sprintf("%s%d", prefix, i)
		decl := jen.Id(field).Add(typeExpr(v.Type))
		if v.Name != "" && v.Name != "_" {
			decl = decl.Comment(v.Name)
		}
		fields = append(fields, decl)
		enc = append(enc, c.enc(v.Type, jen.Id(recv).Dot(field), 0, false)...)
		dec = append(dec, c.dec(v.Type, jen.Id(recv).Dot(field), 0, nil)...)
	}
	f.Commentf("%s holds %s.", name, what)
	f.Type().Id(name).Struct(fields...)
	f.Line()
	f.Commentf("MolgenEncode appends %s to %s.", recv, e)
	f.Func().Params(jen.Id(recv).Op("*").Id(name)).Id("MolgenEncode").Params(jen.Id(e).Op("*").Add(rt("Encoder"))).Block(enc...)
	f.Line()
	f.Commentf("MolgenDecode reads %s from %s.", recv, d)
	f.Func().Params(jen.Id(recv).Op("*").Id(name)).Id("MolgenDecode").Params(jen.Id(d).Op("*").Add(rt("Decoder"))).Block(dec...)
	f.Line()
}

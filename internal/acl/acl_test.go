package acl_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/molgen/molgen/internal/acl"
	"github.com/molgen/molgen/internal/app"
	"github.com/molgen/molgen/internal/load"
	"github.com/molgen/molgen/internal/model"
	"github.com/molgen/molgen/runtime/placement"
)

// blogDir is the example app: posts calls users; the mains gateway and
// demo call both.
var blogDir = filepath.Join("..", "..", "examples", "blog")

// blogPlan derives the ACLs of the blog under one of its placement files.
func blogPlan(t *testing.T, name string) *acl.Plan {
	t.Helper()
	a, pl, err := app.Analyze(load.Config{Dir: blogDir, Patterns: []string{"./..."}}, filepath.Join(blogDir, "placements", name+".yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := acl.Derive(app.NewLayout(a, pl), acl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkPlan compares every ACL of p, as Plan.Describe writes them, with
// want (leading tabs and blank lines of the literal are ignored).
func checkPlan(t *testing.T, p *acl.Plan, want string) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(want, "\n") {
		if l = strings.TrimLeft(l, "\t"); l != "" {
			lines = append(lines, l)
		}
	}
	want = strings.Join(lines, "\n") + "\n"
	if got := p.Describe(); got != want {
		t.Errorf("ACLs differ.\ngot:\n%s\nwant:\n%s", got, want)
	}
}

// The rules for a node, in the words of the package doc, as Describe
// writes them for the blog's app.
const (
	cluster = "  cluster: IdempotentWrite"
	server  = "  topic molgen.blog.reply. (prefixed): Write,Describe,DescribeConfigs"
)

func ownReplies(node string) string {
	return "  topic molgen.blog.reply." + node + ". (prefixed): Read,Write,Create,Delete,Describe,DescribeConfigs"
}

// TestBlogMicroservices: one node per service and main. users calls
// nothing, so it may write no request topic; posts writes only users'
// requests (not its own topic's, which it only reads); the mains write the
// request topics of posts and users and may not answer anyone.
func TestBlogMicroservices(t *testing.T) {
	p := blogPlan(t, "microservices")
	checkPlan(t, p, `
		users User:molgen-blog-users
		`+cluster+`
		`+server+`
		`+ownReplies("users")+`
		  topic molgen.blog.req.users (literal): Read,Create,Describe,DescribeConfigs
		  group molgen.blog.users (literal): Read,Describe
		posts User:molgen-blog-posts
		`+cluster+`
		`+server+`
		`+ownReplies("posts")+`
		  topic molgen.blog.req.posts (literal): Read,Create,Describe,DescribeConfigs
		  topic molgen.blog.req.users (literal): Write,Create,Describe,DescribeConfigs
		  group molgen.blog.posts (literal): Read,Describe
		  group molgen.blog.users (literal): Describe
		gateway User:molgen-blog-gateway
		`+cluster+`
		`+ownReplies("gateway")+`
		  topic molgen.blog.req.posts (literal): Write,Create,Describe,DescribeConfigs
		  topic molgen.blog.req.users (literal): Write,Create,Describe,DescribeConfigs
		  group molgen.blog.posts (literal): Describe
		  group molgen.blog.users (literal): Describe
		demo User:molgen-blog-demo
		`+cluster+`
		`+ownReplies("demo")+`
		  topic molgen.blog.req.posts (literal): Write,Create,Describe,DescribeConfigs
		  topic molgen.blog.req.users (literal): Write,Create,Describe,DescribeConfigs
		  group molgen.blog.posts (literal): Describe
		  group molgen.blog.users (literal): Describe
	`)
	if len(p.Warnings) != 0 {
		t.Errorf("warnings: %q", p.Warnings)
	}
	for _, n := range p.Nodes {
		if !n.Kafka {
			t.Errorf("node %s uses Kafka", n.Name)
		}
	}
}

// TestBlogMixed: posts -> users is a direct call on node content (prefer_local
// on), so content writes no request topic at all.
func TestBlogMixed(t *testing.T) {
	checkPlan(t, blogPlan(t, "mixed"), `
		content User:molgen-blog-content
		`+cluster+`
		`+server+`
		`+ownReplies("content")+`
		  topic molgen.blog.req.posts (literal): Read,Create,Describe,DescribeConfigs
		  topic molgen.blog.req.users (literal): Read,Create,Describe,DescribeConfigs
		  group molgen.blog.posts (literal): Read,Describe
		  group molgen.blog.users (literal): Read,Describe
		edge User:molgen-blog-edge
		`+cluster+`
		`+ownReplies("edge")+`
		  topic molgen.blog.req.posts (literal): Write,Create,Describe,DescribeConfigs
		  topic molgen.blog.req.users (literal): Write,Create,Describe,DescribeConfigs
		  group molgen.blog.posts (literal): Describe
		  group molgen.blog.users (literal): Describe
	`)
}

// TestBlogAllRemote: the mixed layout with prefer_local off. posts -> users
// now crosses Kafka although both are on content, so content may also write
// users' requests and describe its group; still not posts' requests, which
// nothing on content calls.
func TestBlogAllRemote(t *testing.T) {
	checkPlan(t, blogPlan(t, "all-remote"), `
		content User:molgen-blog-content
		`+cluster+`
		`+server+`
		`+ownReplies("content")+`
		  topic molgen.blog.req.posts (literal): Read,Create,Describe,DescribeConfigs
		  topic molgen.blog.req.users (literal): Read,Write,Create,Describe,DescribeConfigs
		  group molgen.blog.posts (literal): Read,Describe
		  group molgen.blog.users (literal): Read,Describe
		edge User:molgen-blog-edge
		`+cluster+`
		`+ownReplies("edge")+`
		  topic molgen.blog.req.posts (literal): Write,Create,Describe,DescribeConfigs
		  topic molgen.blog.req.users (literal): Write,Create,Describe,DescribeConfigs
		  group molgen.blog.posts (literal): Describe
		  group molgen.blog.users (literal): Describe
	`)
}

// TestBlogMonolith: one node with prefer_local on never talks to Kafka,
// so it gets no ACL.
func TestBlogMonolith(t *testing.T) {
	p := blogPlan(t, "monolith")
	checkPlan(t, p, "all User:molgen-blog-all")
	if len(p.Nodes) != 1 || p.Nodes[0].Kafka {
		t.Errorf("nodes %+v: want one that does not use Kafka", p.Nodes)
	}
}

// shop is a hand-made app with more shapes than the blog: orders calls
// stock and pay; stock calls nothing; pay calls audit; the main web calls
// orders; the main report calls audit.
func shop() *app.App {
	ref := func(n string) model.Ref { return model.Ref{Name: n} }
	a := &app.App{Services: map[string]*model.Service{}, Constructors: map[string]*model.Constructor{}, Mains: map[string]*model.Main{}}
	for name, deps := range map[string][]string{"orders": {"stock", "pay"}, "stock": nil, "pay": {"audit"}, "audit": nil} {
		a.Services[name] = &model.Service{Name: name}
		c := &model.Constructor{Service: ref(name)}
		for _, d := range deps {
			c.Deps = append(c.Deps, ref(d))
		}
		a.Constructors[name] = c
	}
	a.Mains["web"] = &model.Main{Name: "web", Deps: []model.Ref{ref("orders")}}
	a.Mains["report"] = &model.Main{Name: "report", Deps: []model.Ref{ref("audit")}}
	return a
}

func shopPlan(t *testing.T, src string, opts acl.Options) (*acl.Plan, error) {
	t.Helper()
	a := shop()
	pl, err := placement.Check("shop.yaml", []byte(src), a.ServiceNames(), a.MainNames())
	if err != nil {
		t.Fatal(err)
	}
	return acl.Derive(app.NewLayout(a, pl), opts)
}

// rulesOf returns node's rules as Describe writes them, one per line.
func rulesOf(t *testing.T, p *acl.Plan, node string) []string {
	t.Helper()
	for _, n := range p.Nodes {
		if n.Name == node {
			one := &acl.Plan{Nodes: []acl.Node{n}}
			return strings.Split(strings.TrimSpace(one.Describe()), "\n")[1:]
		}
	}
	t.Fatalf("no node %s", node)
	return nil
}

// TestNoWriteOnServicesNotCalled: a node gets Write on the request topic of
// exactly the services its code calls over Kafka. Node back hosts orders
// and stock (orders -> stock is direct), calls pay elsewhere, and hosts
// stock, which nothing on back calls over Kafka: no Write on stock's topic,
// none on audit's (pay calls it, but pay runs on node money), none on
// orders' (web runs on front).
func TestNoWriteOnServicesNotCalled(t *testing.T) {
	p, err := shopPlan(t, `app: shop
nodes:
  front: [web]
  back: [orders, stock]
  money: [pay, audit, report]
`, acl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var writes []string
	for _, r := range rulesOf(t, p, "back") {
		if strings.HasPrefix(r, "  topic molgen.shop.req.") && strings.Contains(r, "Write") {
			writes = append(writes, r)
		}
	}
	if want := []string{"  topic molgen.shop.req.pay (literal): Write,Create,Describe,DescribeConfigs"}; !slices.Equal(writes, want) {
		t.Errorf("back may write request topics %q, want only %q", writes, want)
	}
	checkPlan(t, &acl.Plan{Nodes: p.Nodes[2:]}, `
		money User:molgen-shop-money
		  cluster: IdempotentWrite
		  topic molgen.shop.reply. (prefixed): Write,Describe,DescribeConfigs
		  topic molgen.shop.reply.money. (prefixed): Read,Write,Create,Delete,Describe,DescribeConfigs
		  topic molgen.shop.req.audit (literal): Read,Create,Describe,DescribeConfigs
		  topic molgen.shop.req.pay (literal): Read,Create,Describe,DescribeConfigs
		  group molgen.shop.audit (literal): Read,Describe
		  group molgen.shop.pay (literal): Read,Describe
	`)
	if n := p.Nodes[0]; !slices.Equal(n.Calls, []string{"orders"}) || n.Services != nil {
		t.Errorf("front: calls %v, services %v", n.Calls, n.Services)
	}
}

// TestServiceOnSeveralNodes: every node that hosts a service reads its
// topic in its group; a caller on a node that hosts it too calls it
// directly (prefer_local on) and over Kafka with prefer_local off.
func TestServiceOnSeveralNodes(t *testing.T) {
	const layout = `
nodes:
  a: [web, orders, audit]
  b: [orders, stock, pay, report]
`
	for _, preferLocal := range []bool{true, false} {
		src := "app: shop\n"
		if !preferLocal {
			src += "prefer_local: false\n"
		}
		p, err := shopPlan(t, src+layout, acl.Options{})
		if err != nil {
			t.Fatal(err)
		}
		a := strings.Join(rulesOf(t, p, "a"), "\n")
		for _, want := range []string{
			"topic molgen.shop.req.orders (literal): Read,",
			"group molgen.shop.orders (literal): Read,Describe",
			"topic molgen.shop.req.stock (literal): Write,", // orders on a calls stock on b
			"topic molgen.shop.req.pay (literal): Write,",
		} {
			if !strings.Contains(a, want) {
				t.Errorf("prefer_local %t: node a lacks %q:\n%s", preferLocal, want, a)
			}
		}
		// web -> orders is direct with prefer_local on.
		if got := strings.Contains(a, "req.orders (literal): Read,Write,"); got == preferLocal {
			t.Errorf("prefer_local %t: node a may write orders' requests: %t\n%s", preferLocal, got, a)
		}
		// pay (on b) -> audit (on a) crosses; report (on b) -> audit too.
		b := strings.Join(rulesOf(t, p, "b"), "\n")
		if !strings.Contains(b, "topic molgen.shop.req.audit (literal): Write,Create,Describe,DescribeConfigs") {
			t.Errorf("node b may not write audit's requests:\n%s", b)
		}
	}
}

// TestPrincipals: the format names each node's principal; one without
// {node}, or that is not TYPE:NAME, is refused.
func TestPrincipals(t *testing.T) {
	const src = "app: shop\nnodes:\n  front: [web]\n  back: [\"*\"]\n"
	p, err := shopPlan(t, src, acl.Options{Principal: "User:{app}_{node}"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Nodes[0].Principal != "User:shop_front" || p.Nodes[1].Principal != "User:shop_back" {
		t.Errorf("principals %q, %q", p.Nodes[0].Principal, p.Nodes[1].Principal)
	}
	if _, err := p.Nodes[0].KafkaUserName(); err == nil {
		t.Errorf("User:shop_front names a Strimzi KafkaUser")
	}
	for _, bad := range []string{"User:{app}", "molgen-{node}", ":{node}"} {
		if _, err := shopPlan(t, src, acl.Options{Principal: bad}); err == nil {
			t.Errorf("principal format %q accepted", bad)
		}
	}
	p, _ = shopPlan(t, src, acl.Options{})
	if name, err := p.Nodes[1].KafkaUserName(); err != nil || name != "molgen-shop-back" {
		t.Errorf("KafkaUserName: %q, %v", name, err)
	}
}

// TestWarnings: a SASL user in the placement is every node's; an app name
// with a '.' makes the app's reply prefix cover other apps' names.
func TestWarnings(t *testing.T) {
	p, err := shopPlan(t, `app: shop.eu
kafka:
  sasl: {mechanism: SCRAM-SHA-512, username: shop}
nodes:
  front: [web]
  back: ["*"]
`, acl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Warnings) != 2 || !strings.Contains(p.Warnings[0], `kafka.sasl.username "shop" is shared by every node`) ||
		!strings.Contains(p.Warnings[1], "molgen.shop.eu.reply.") {
		t.Errorf("warnings: %q", p.Warnings)
	}
}

// TestDeterministic: the same input gives the same plan.
func TestDeterministic(t *testing.T) {
	const src = "app: shop\nprefer_local: false\nnodes:\n  a: [web, orders, audit]\n  b: [\"*\"]\n"
	first, _ := shopPlan(t, src, acl.Options{})
	for range 20 {
		again, _ := shopPlan(t, src, acl.Options{})
		if again.Describe() != first.Describe() {
			t.Fatalf("plans differ:\n%s\n%s", first.Describe(), again.Describe())
		}
	}
}

// TestNoPlacement: a monolith without a placement file uses no Kafka;
// Derive says so instead of granting anything.
func TestNoPlacement(t *testing.T) {
	if _, err := acl.Derive(app.NewLayout(shop(), nil), acl.Options{}); err == nil {
		t.Error("no error without a placement")
	}
}

package blog_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/molgen/molgen/examples/blog/posts"
	"github.com/molgen/molgen/examples/blog/users"
	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/runtime"
)

// threeNodes places the gateway on front, posts and users each on a node
// of its own: front → posts → users crosses Kafka twice.
const threeNodes = `
app: APP
kafka:
  partitions: 2
nodes:
  front: [gateway, demo]
  posts: [posts]
  users: [users]
`

// tracedNode starts one node of threeNodes whose spans go to exp.
func tracedNode(t *testing.T, app, node string, exp sdktrace.SpanExporter, register func(n *runtime.Node) error) *runtime.Node {
	t.Helper()
	pl, err := runtime.ParsePlacement("three.yaml", []byte(strings.ReplaceAll(threeNodes, "APP", app)))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(sdkresource.NewSchemaless(attribute.String("service.name", node))))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	n, err := runtime.NewNode(runtime.Options{
		Placement: pl, Node: node, Instance: node + "-1", Brokers: kafkatest.Brokers(t),
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		SessionTimeout: 2 * time.Second, TracerProvider: tp,
	})
	if err != nil {
		t.Fatal(err)
	}
	if register != nil {
		if err := register(n); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestTraceAcrossThreeNodes follows one request from the front node
// through posts to users over Kafka: the in-memory exporter sees one
// trace whose spans link caller to server at every hop, named
// service/Method with the rpc.* and messaging.* attributes, and the stages
// of each remote call; the requests and replies in Kafka carry the W3C
// traceparent of that trace.
func TestTraceAcrossThreeNodes(t *testing.T) {
	app := kafkatest.App("trace")
	exp := tracetest.NewInMemoryExporter()
	tracedNode(t, app, "users", exp, func(n *runtime.Node) error { return users.RegisterUsers(n, users.New()) })
	tracedNode(t, app, "posts", exp, func(n *runtime.Node) error {
		p, err := posts.New(context.Background(), users.NewUsersClient(n))
		if err != nil {
			return err
		}
		return posts.RegisterPosts(n, p)
	})
	front := tracedNode(t, app, "front", exp, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = runtime.WithCaller(ctx, "gateway")
	u, err := users.NewUsersClient(front).Create(ctx, "ada")
	if err != nil {
		t.Fatal(err)
	}
	exp.Reset() // only the traced request below

	tracer := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)).Tracer("test")
	ctx, root := tracer.Start(ctx, "POST /posts")
	post, err := posts.NewPostsClient(front).Publish(ctx, u.ID, "Hello", "World", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := posts.NewPostsClient(front).View(ctx, post.ID); err != nil { // oneway
		t.Fatal(err)
	}
	root.End()
	traceID := root.SpanContext().TraceID()

	// The oneway request is served after View returned: wait for its span
	// (5 spans of the Publish chain, a producer and a consumer of View).
	wait := time.Now().Add(10 * time.Second)
	for len(exp.GetSpans()) < 7 && time.Now().Before(wait) {
		time.Sleep(10 * time.Millisecond)
	}
	var spans tracetest.SpanStubs
	view := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		if s.Name == "posts/View" {
			view[s.SpanKind.String()] = s
		} else {
			spans = append(spans, s)
		}
	}
	producer, consumer := view["producer"], view["consumer"]
	if len(view) != 2 || producer.Name == "" || consumer.Name == "" {
		t.Errorf("posts/View spans: %v, want a producer and a consumer span", names(exp.GetSpans()))
	} else {
		if consumer.Parent.SpanID() != producer.SpanContext.SpanID() || consumer.SpanContext.TraceID() != traceID {
			t.Errorf("the posts/View consumer span is not a child of the producer span in the request's trace")
		}
		if got := attr(producer, "messaging.destination.name"); got != "molgen."+app+".req.posts" {
			t.Errorf("posts/View producer span: destination %q", got)
		}
	}

	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		if s.SpanContext.TraceID() != traceID {
			t.Errorf("span %s (%s) is in trace %s, not the request's %s", s.Name, s.SpanKind, s.SpanContext.TraceID(), traceID)
		}
		byName[s.Name+" "+s.SpanKind.String()] = s
	}
	chain := []string{"POST /posts internal", "posts/Publish client", "posts/Publish server", "users/Get client", "users/Get server"}
	for i, name := range chain {
		s, ok := byName[name]
		if !ok {
			t.Fatalf("no span %q among %d spans: %v", name, len(spans), names(spans))
		}
		if i > 0 && s.Parent.SpanID() != byName[chain[i-1]].SpanContext.SpanID() {
			t.Errorf("span %q: parent %s, want %q (%s)", name, s.Parent.SpanID(), chain[i-1], byName[chain[i-1]].SpanContext.SpanID())
		}
	}
	if len(spans) != len(chain) {
		t.Errorf("%d spans, want %d: %v", len(spans), len(chain), names(spans))
	}
	// Each hop is remote: the caller's span has the stages of its call,
	// the server's where and after how long it took the request.
	for _, hop := range []struct{ service, method, node string }{{"posts", "Publish", "front"}, {"users", "Get", "posts"}} {
		client := byName[hop.service+"/"+hop.method+" client"]
		server := byName[hop.service+"/"+hop.method+" server"]
		topic := "molgen." + app + ".req." + hop.service
		wantAttrs(t, client, map[string]string{
			"rpc.system": "molgen", "rpc.service": hop.service, "rpc.method": hop.method,
			"messaging.system": "kafka", "messaging.destination.name": topic, "molgen.remote": "true",
		})
		wantAttrs(t, server, map[string]string{
			"rpc.system": "molgen", "rpc.service": hop.service, "rpc.method": hop.method,
			"messaging.system": "kafka", "messaging.destination.name": topic,
			"messaging.consumer.group.name": "molgen." + app + "." + hop.service,
		})
		if got := attr(server, "messaging.kafka.offset"); got == "" {
			t.Errorf("%s: no messaging.kafka.offset", server.Name)
		}
		if got := resourceName(client); got != hop.node {
			t.Errorf("%s client span from service.name %q, want %q", server.Name, got, hop.node)
		}
		if got := resourceName(server); got != hop.service {
			t.Errorf("%s server span from service.name %q, want %q", server.Name, got, hop.service)
		}
		// Stages in order on the caller: written, (served), replied, received.
		events := map[string]time.Time{}
		for _, e := range client.Events {
			events[e.Name] = e.Time
		}
		written, replied, received := events["request written"], events["reply written"], events["reply received"]
		if written.IsZero() || replied.IsZero() || received.IsZero() {
			t.Fatalf("%s client events %v: want request written, reply written, reply received", client.Name, client.Events)
		}
		if written.Before(client.StartTime) || received.Before(written) || client.EndTime.Before(received) {
			t.Errorf("%s client: stages out of order: start %v written %v received %v end %v", client.Name, client.StartTime, written, received, client.EndTime)
		}
		if server.StartTime.Before(client.StartTime) || client.EndTime.Before(server.EndTime) {
			t.Errorf("%s: server span [%v, %v] not within the client span [%v, %v]", client.Name, server.StartTime, server.EndTime, client.StartTime, client.EndTime)
		}
		taken := false
		for _, e := range server.Events {
			if e.Name == "request taken" {
				taken = true
				for _, a := range e.Attributes {
					if a.Key == "molgen.queued" && a.Value.AsFloat64() < -1 {
						t.Errorf("%s: queued %v", server.Name, a.Value.AsFloat64())
					}
				}
			}
		}
		if !taken {
			t.Errorf("%s server events %v: want request taken", server.Name, server.Events)
		}
	}

	// The requests in Kafka carry the trace context (read with kafka-go).
	for _, service := range []string{"posts", "users"} {
		found := false
		for _, m := range kafkatest.Records(t, "molgen."+app+".req."+service) {
			for _, h := range m.Headers {
				if h.Key == "traceparent" && strings.Contains(string(h.Value), traceID.String()) {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("no request to %s in Kafka has a traceparent of trace %s", service, traceID)
		}
	}
	// So does the reply front read (the server span's context).
	found := false
	for _, m := range kafkatest.Records(t, "molgen."+app+".reply.front.front-1") {
		for _, h := range m.Headers {
			if h.Key == "traceparent" && string(h.Value) == "00-"+traceID.String()+"-"+byName["posts/Publish server"].SpanContext.SpanID().String()+"-01" {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no reply to front carries the traceparent of the posts/Publish server span")
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name+" "+s.SpanKind.String())
	}
	return out
}

func attr(s tracetest.SpanStub, key string) string {
	for _, a := range s.Attributes {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

func wantAttrs(t *testing.T, s tracetest.SpanStub, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := attr(s, k); got != v {
			t.Errorf("span %s (%s): %s = %q, want %q", s.Name, s.SpanKind, k, got, v)
		}
	}
}

func resourceName(s tracetest.SpanStub) string {
	if s.Resource == nil {
		return ""
	}
	v, _ := s.Resource.Set().Value("service.name")
	return v.Emit()
}

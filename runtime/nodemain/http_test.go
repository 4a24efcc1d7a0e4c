package nodemain

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/molgen/molgen/internal/kafkatest"
	"github.com/molgen/molgen/internal/proctest"
	"github.com/molgen/molgen/internal/testsvc"
	"github.com/molgen/molgen/runtime"
)

// httpPlacement puts relay and the main "client" on node front, calc
// (and the rest) on node back: client → relay is a local call, relay →
// calc a remote one.
const httpPlacement = `
app: APP
kafka:
  partitions: 2
nodes:
  front: [relay, client]
  back: ["*"]
`

// waitForLog returns the first submatch of re in what the node logged.
func waitForLog(t *testing.T, out *proctest.Buffer, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no log line matching %s in:\n%s", re, out.String())
	return ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestNodeHTTPEndpoint runs a node binary's main (in this process) with
// -http: /healthz and /readyz answer 200 while it runs, and /metrics,
// parsed with Prometheus' text parser, counts the calls its main made:
// local calls of relay (client and server side) and the remote calls
// relay made to calc on the other node, with errors by kind.
func TestNodeHTTPEndpoint(t *testing.T) {
	app := kafkatest.App("http")
	yaml := strings.ReplaceAll(httpPlacement, "APP", app)
	pl, err := runtime.ParsePlacement("http.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	back, err := runtime.NewNode(runtime.Options{Placement: pl, Node: "back", Brokers: kafkatest.Brokers(t),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), SessionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := testsvc.RegisterCalc(back, &testsvc.CalcImpl{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := back.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer back.Close()

	called := make(chan struct{})
	scraped := make(chan struct{})
	p := Program{
		Node: "front", PlacementFile: "http.yaml", Placement: yaml,
		Services: []string{"calc", "codec", "relay"}, Mains: []string{"client"},
		Setup: func(ctx context.Context, n *runtime.Node) error {
			return testsvc.RegisterRelay(n, testsvc.NewRelay(testsvc.NewCalcClient(n)))
		},
		Run: []Main{{Name: "client", Run: func(ctx context.Context, n *runtime.Node) error {
			relay := testsvc.NewRelayClient(n)
			for i := 0; i < 3; i++ {
				if got, err := relay.Sqrt(ctx, 16); err != nil || got != 4 {
					return fmt.Errorf("Sqrt(16) = %d, %v", got, err)
				}
			}
			if _, err := relay.Sqrt(ctx, -1); err == nil {
				return fmt.Errorf("Sqrt(-1) did not fail")
			}
			close(called)
			<-scraped
			return nil
		}}},
	}
	var out proctest.Buffer
	status := make(chan int, 1)
	go func() {
		status <- run(p, []string{"-http", "127.0.0.1:0", "-brokers", strings.Join(kafkatest.Brokers(t), ","), "-session-timeout", "2s"}, io.Discard, &out)
	}()
	addr := waitForLog(t, &out, regexp.MustCompile(`serving HTTP.* addr=(\S+)`))
	select {
	case <-called:
	case s := <-status:
		t.Fatalf("node exited with %d:\n%s", s, out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the main did not make its calls:\n%s", out.String())
	}
	if code, body := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := get(t, "http://"+addr+"/readyz"); code != 200 {
		t.Errorf("/readyz while serving: %d %s", code, body)
	}
	code, body := get(t, "http://"+addr+"/metrics")
	close(scraped)
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	count := func(family string, labels map[string]string) uint64 {
		f := families[family]
		if f == nil {
			t.Fatalf("no metric %s in:\n%s", family, body)
		}
		var n uint64
		for _, m := range f.Metric {
			if matches(m, labels) {
				n += m.GetHistogram().GetSampleCount()
			}
		}
		return n
	}
	for _, c := range []struct {
		family string
		labels map[string]string
		want   uint64
	}{
		// The main called relay locally: 4 calls, one failed.
		{"rpc_client_call_duration_seconds", map[string]string{"rpc_service": "relay", "rpc_method": "Sqrt", "molgen_remote": "false", "molgen_caller": "client"}, 4},
		{"rpc_server_call_duration_seconds", map[string]string{"rpc_service": "relay", "rpc_method": "Sqrt", "molgen_remote": "false"}, 4},
		{"rpc_client_call_duration_seconds", map[string]string{"rpc_service": "relay", "error_type": "github.com/molgen/molgen/internal/testsvc.ErrNegative"}, 1},
		// Relay called calc over Kafka.
		{"rpc_client_call_duration_seconds", map[string]string{"rpc_service": "calc", "rpc_method": "Sqrt", "molgen_remote": "true", "molgen_caller": "relay", "rpc_system": "molgen"}, 4},
		{"rpc_client_call_duration_seconds", map[string]string{"rpc_service": "calc", "molgen_remote": "true", "error_type": "github.com/molgen/molgen/internal/testsvc.ErrNegative"}, 1},
		{"rpc_client_request_size_bytes", map[string]string{"rpc_service": "calc", "rpc_method": "Sqrt"}, 4},
		// front serves no remote request.
		{"rpc_server_call_duration_seconds", map[string]string{"molgen_remote": "true"}, 0},
	} {
		if got := count(c.family, c.labels); got != c.want {
			t.Errorf("%s%v: count %d, want %d", c.family, c.labels, got, c.want)
		}
	}
	if f := families["molgen_node_ready"]; f == nil || len(f.Metric) != 1 || f.Metric[0].GetGauge().GetValue() != 1 {
		t.Errorf("molgen_node_ready: %v", f)
	}
	if f := families["molgen_calls_in_flight"]; f == nil {
		t.Errorf("no molgen_calls_in_flight")
	}
	if s := <-status; s != 0 {
		t.Fatalf("node exited with %d:\n%s", s, out.String())
	}
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, l := range m.Label {
			found = found || (l.GetName() == k && l.GetValue() == v)
		}
		if !found {
			return false
		}
	}
	return true
}

// TestProbesOfANodeNotStarted: /readyz is 503 with a reason before the
// node starts and after it closed; /healthz is 200.
func TestProbesOfANodeNotStarted(t *testing.T) {
	n, err := runtime.NewNode(runtime.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(probeHandler(n, nil))
	defer srv.Close()
	if code, body := get(t, srv.URL+"/readyz"); code != 503 || !strings.Contains(body, "not started") {
		t.Errorf("/readyz before Start: %d %q", code, body)
	}
	if code, _ := get(t, srv.URL+"/healthz"); code != 200 {
		t.Errorf("/healthz before Start: %d", code)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, srv.URL+"/readyz"); code != 200 {
		t.Errorf("/readyz of a started monolith: %d %q", code, body)
	}
	n.Close()
	if code, body := get(t, srv.URL+"/readyz"); code != 503 || !strings.Contains(body, "draining or closed") {
		t.Errorf("/readyz after Close: %d %q", code, body)
	}
}

// TestVersionFlag: -version prints the molgen version, the app, the node
// and what it runs, and exits 0 without starting anything.
func TestVersionFlag(t *testing.T) {
	p := Program{Node: "front", PlacementFile: "http.yaml", Placement: strings.ReplaceAll(httpPlacement, "APP", "shop"),
		Services: []string{"calc", "codec", "relay"}, Mains: []string{"client"},
		Setup: func(context.Context, *runtime.Node) error { t.Error("Setup ran"); return nil },
		Run:   []Main{{Name: "client"}}}
	var stdout, stderr proctest.Buffer
	if s := run(p, []string{"-version"}, &stdout, &stderr); s != 0 {
		t.Fatalf("status %d: %s", s, stderr.String())
	}
	got := stdout.String()
	for _, want := range []string{"molgen ", fmt.Sprintf("runtime API %d", runtime.APIVersion), "app shop, node front, placement http.yaml sha256:", "services: relay\n", "mains: client\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("-version printed %q, want it to contain %q", got, want)
		}
	}
}

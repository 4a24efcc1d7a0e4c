package nodemain

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/molgen/molgen/internal/proctest"
	"github.com/molgen/molgen/internal/testsvc"
	"github.com/molgen/molgen/runtime"
)

// TestOTLPFromEnvironment runs a monolith node binary configured only by
// OTEL_* variables: its spans (the main's root span, the calls it made)
// reach an OTLP/HTTP endpoint, and its JSON log records written inside a
// span carry that span's trace_id.
func TestOTLPFromEnvironment(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" {
			mu.Lock()
			bodies = append(bodies, b)
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	t.Setenv("OTEL_SERVICE_NAME", "blog-front-test")

	p := testProgram(Main{Name: "client", Run: func(ctx context.Context, n *runtime.Node) error {
		if _, err := testsvc.NewRelayClient(n).Sqrt(ctx, 9); err != nil {
			return err
		}
		slog.InfoContext(ctx, "made a call")
		return nil
	}})
	p.Services = []string{"calc", "relay"}
	p.Setup = func(ctx context.Context, n *runtime.Node) error {
		if err := testsvc.RegisterCalc(n, &testsvc.CalcImpl{}); err != nil {
			return err
		}
		return testsvc.RegisterRelay(n, testsvc.NewRelay(testsvc.NewCalcClient(n)))
	}
	status, out := runNodeInTest(t, p, "-log-format", "json")
	if status != 0 {
		t.Fatalf("status %d:\n%s", status, out)
	}
	mu.Lock()
	all := bytes.Join(bodies, nil)
	mu.Unlock()
	for _, want := range []string{"main client", "relay/Sqrt", "calc/Sqrt", "blog-front-test"} {
		if !bytes.Contains(all, []byte(want)) {
			t.Errorf("the OTLP export has no %q (%d requests, %d bytes)", want, len(bodies), len(all))
		}
	}
	// Every line is JSON; the one logged in the main's span has its ids.
	found := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("-log-format json wrote a line that is not JSON: %q", line)
		}
		if rec["msg"] == "made a call" {
			id, _ := rec["trace_id"].(string)
			found = len(id) == 32 && bytes.Contains(all, mustHex(t, id))
		}
	}
	if !found {
		t.Errorf("the main's log record has no trace_id of an exported trace:\n%s", out)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c - 'a' + 10)
			default:
				t.Fatalf("not hex: %q", s)
			}
		}
		b[i] = v
	}
	return b
}

// TestTelemetryEnvErrors: unknown exporters and protocols are errors
// that name the variable.
func TestTelemetryEnvErrors(t *testing.T) {
	for env, want := range map[string]string{
		"OTEL_TRACES_EXPORTER=zipkin":                                     "OTEL_TRACES_EXPORTER: unknown exporter \"zipkin\"",
		"OTEL_METRICS_EXPORTER=otlp,json":                                 "OTEL_METRICS_EXPORTER: unknown exporter \"json\"",
		"OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_PROTOCOL=http/json": "OTEL_EXPORTER_OTLP_PROTOCOL \"http/json\"",
	} {
		vars := map[string]string{}
		for _, kv := range strings.Fields(env) {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = v
		}
		_, err := setupTelemetry(context.Background(), telemetryConfig{getenv: func(k string) string { return vars[k] }})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", env, err, want)
		}
	}
	tel, err := setupTelemetry(context.Background(), telemetryConfig{getenv: func(k string) string {
		return map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}[k]
	}})
	if err != nil || tel.tracer == nil {
		t.Fatalf("OTLP over gRPC: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	tel.close(ctx) // nothing listens there: do not wait for it
}

// TestConsoleTraces: OTEL_TRACES_EXPORTER=console writes the spans to
// stderr, never stdout (the program's own output), or to the file
// MOLGEN_TRACES_FILE names; OTEL_SDK_DISABLED=true turns tracing off.
func TestConsoleTraces(t *testing.T) {
	defer slog.SetDefault(slog.Default()) // run replaces it
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	p := testProgram(Main{Name: "client", Run: func(ctx context.Context, n *runtime.Node) error {
		_, err := testsvc.NewCalcClient(n).Add(ctx, 1, 2)
		return err
	}})
	p.Services = []string{"calc"}
	p.Setup = func(ctx context.Context, n *runtime.Node) error { return testsvc.RegisterCalc(n, &testsvc.CalcImpl{}) }
	var stdout, stderr proctest.Buffer
	if s := run(p, nil, &stdout, &stderr); s != 0 {
		t.Fatalf("status %d: %s", s, stderr.String())
	}
	for _, want := range []string{`"Name":"calc/Add"`, `"Name":"main client"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr has no %s:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stdout.String(), `"Name"`) {
		t.Errorf("spans on stdout:\n%s", stdout.String())
	}

	file := filepath.Join(t.TempDir(), "spans.json")
	t.Setenv("MOLGEN_TRACES_FILE", file)
	var stdout2, stderr2 proctest.Buffer
	if s := run(p, nil, &stdout2, &stderr2); s != 0 {
		t.Fatalf("status %d: %s", s, stderr2.String())
	}
	spans, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(spans), `"Name":"calc/Add"`) || strings.Contains(stderr2.String()+stdout2.String(), `"Name":"calc/Add"`) {
		t.Errorf("MOLGEN_TRACES_FILE: the file has\n%s\nstderr\n%s", spans, stderr2.String())
	}
	tel, err := setupTelemetry(context.Background(), telemetryConfig{getenv: func(k string) string {
		return map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}[k]
	}})
	if err != nil || tel.tracer != nil || tel.meter != nil {
		t.Errorf("OTEL_SDK_DISABLED=true: tracer %v, meter %v, err %v", tel.tracer, tel.meter, err)
	}
}

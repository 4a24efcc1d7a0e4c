package nodemain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// telemetry is what a node binary sets up from the standard OTEL_*
// environment variables and its -http flag.
type telemetry struct {
	tracer   trace.TracerProvider // nil: no traces
	meter    *sdkmetric.MeterProvider
	metrics  http.Handler // Prometheus text of the node's metrics; nil without -http
	shutdown []func(context.Context) error
}

// telemetryConfig is what setupTelemetry reads.
type telemetryConfig struct {
	serviceName string // default of OTEL_SERVICE_NAME: "<app>-<node>"
	instance    string
	app, node   string
	prometheus  bool      // serve /metrics
	console     io.Writer // of the console exporter: the node's stderr
	getenv      func(string) string
}

// setupTelemetry configures traces and metrics the way OpenTelemetry's
// SDKs do, from the environment:
//
//   - OTEL_SERVICE_NAME (default "<app>-<node>"), OTEL_RESOURCE_ATTRIBUTES;
//   - OTEL_SDK_DISABLED=true: no traces, no metrics exported (the -http
//     endpoint still serves /metrics);
//   - OTEL_TRACES_EXPORTER: "otlp", "console" or "none"; the
//     default is "otlp" when
//     OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set, else
//     "none", so that a node without a collector sends nothing anywhere;
//   - OTEL_METRICS_EXPORTER: "otlp", "prometheus" (served on -http's
//     /metrics, which is always on with -http) or "none", comma-separated;
//     same default rule for "otlp";
//   - OTEL_EXPORTER_OTLP_PROTOCOL (and ..._TRACES_/..._METRICS_PROTOCOL):
//     "http/protobuf" (default) or "grpc"; the OTLP exporters read
//     OTEL_EXPORTER_OTLP_ENDPOINT, _HEADERS, _TIMEOUT and the rest
//     themselves;
//   - OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (read by the SDK;
//     default parentbased_always_on);
//   - MOLGEN_TRACES_FILE: where the console exporter writes its spans, a
//     file the node appends to (created 0600); without it, stderr, with
//     the logs and away from what the program writes to stdout.
//
// It also installs the providers and the W3C propagator as OpenTelemetry's
// globals, so that instrumentation in services and mains (otelhttp, say)
// joins the node's traces.
func setupTelemetry(ctx context.Context, cfg telemetryConfig) (*telemetry, error) {
	env := cfg.getenv
	if env == nil {
		env = os.Getenv
	}
	if cfg.console == nil {
		cfg.console = os.Stderr
	}
	tel := &telemetry{}
	res, err := resource.Merge(
		resource.NewSchemaless(nonEmpty(
			attribute.String("service.name", cfg.serviceName),
			attribute.String("service.instance.id", cfg.instance),
			attribute.String("molgen.app", cfg.app),
			attribute.String("molgen.node", cfg.node),
		)...),
		envResource(env),
	)
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	otlpSet := env("OTEL_EXPORTER_OTLP_ENDPOINT") != ""

	// Traces.
	disabled := strings.EqualFold(strings.TrimSpace(env("OTEL_SDK_DISABLED")), "true")
	traces, err := exporters(env, "OTEL_TRACES_EXPORTER", otlpSet || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "", "otlp", "console", "none")
	if err != nil {
		return nil, err
	}
	if disabled {
		traces = nil
	}
	var spanOpts []sdktrace.TracerProviderOption
	if traces["otlp"] {
		var exp sdktrace.SpanExporter
		switch p := protocol(env, "TRACES"); p {
		case "grpc":
			exp, err = otlptracegrpc.New(ctx)
		case "http/protobuf":
			exp, err = otlptracehttp.New(ctx)
		default:
			err = fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: want http/protobuf or grpc", p)
		}
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter: %w", err)
		}
		spanOpts = append(spanOpts, sdktrace.WithBatcher(exp))
	}
	if traces["console"] {
		w := cfg.console
		if name := env("MOLGEN_TRACES_FILE"); name != "" {
			f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				return nil, fmt.Errorf("MOLGEN_TRACES_FILE: %w", err)
			}
			w = f
			tel.shutdown = append(tel.shutdown, func(context.Context) error { return f.Close() })
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(w))
		if err != nil {
			return nil, fmt.Errorf("console trace exporter: %w", err)
		}
		spanOpts = append(spanOpts, sdktrace.WithSyncer(exp))
	}
	if len(spanOpts) > 0 {
		tp := sdktrace.NewTracerProvider(append(spanOpts, sdktrace.WithResource(res))...)
		tel.tracer = tp
		tel.shutdown = append(tel.shutdown, tp.Shutdown)
		otel.SetTracerProvider(tp)
	}
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	// Metrics.
	metrics, err := exporters(env, "OTEL_METRICS_EXPORTER", otlpSet || env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") != "", "otlp", "prometheus", "none")
	if err != nil {
		return nil, err
	}
	if disabled {
		metrics = nil
	}
	var readers []sdkmetric.Option
	if cfg.prometheus || metrics["prometheus"] {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			return nil, fmt.Errorf("Prometheus exporter: %w", err)
		}
		readers = append(readers, sdkmetric.WithReader(exp))
		tel.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	}
	if metrics["otlp"] {
		var exp sdkmetric.Exporter
		switch p := protocol(env, "METRICS"); p {
		case "grpc":
			exp, err = otlpmetricgrpc.New(ctx)
		case "http/protobuf":
			exp, err = otlpmetrichttp.New(ctx)
		default:
			err = fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: want http/protobuf or grpc", p)
		}
		if err != nil {
			return nil, fmt.Errorf("OTLP metric exporter: %w", err)
		}
		readers = append(readers, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	}
	if len(readers) > 0 {
		mp := sdkmetric.NewMeterProvider(append(readers, sdkmetric.WithResource(res))...)
		tel.meter = mp
		tel.shutdown = append(tel.shutdown, mp.Shutdown)
		otel.SetMeterProvider(mp)
	}
	return tel, nil
}

// envResource is the resource of OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES (key=value,...).
func envResource(env func(string) string) *resource.Resource {
	var attrs []attribute.KeyValue
	for _, kv := range strings.Split(env("OTEL_RESOURCE_ATTRIBUTES"), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && k != "" {
			attrs = append(attrs, attribute.String(strings.TrimSpace(k), strings.TrimSpace(v)))
		}
	}
	if name := env("OTEL_SERVICE_NAME"); name != "" {
		attrs = append(attrs, attribute.String("service.name", name))
	}
	return resource.NewSchemaless(attrs...)
}

// nonEmpty drops the attributes whose value is "".
func nonEmpty(attrs ...attribute.KeyValue) []attribute.KeyValue {
	out := attrs[:0]
	for _, a := range attrs {
		if a.Value.AsString() != "" {
			out = append(out, a)
		}
	}
	return out
}

// exporters parses an OTEL_*_EXPORTER variable: a comma-separated list of
// known names; unset means otlp when def is true, else none.
func exporters(env func(string) string, name string, def bool, known ...string) (map[string]bool, error) {
	v := strings.TrimSpace(env(name))
	if v == "" {
		if def {
			return map[string]bool{"otlp": true}, nil
		}
		return map[string]bool{}, nil
	}
	out := map[string]bool{}
	for _, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		ok := false
		for _, k := range known {
			ok = ok || e == k
		}
		if !ok {
			return nil, fmt.Errorf("%s: unknown exporter %q (this node knows %s)", name, e, strings.Join(known, ", "))
		}
		out[e] = true
	}
	if out["none"] {
		return map[string]bool{}, nil
	}
	return out, nil
}

// protocol returns the OTLP protocol of a signal ("TRACES", "METRICS").
func protocol(env func(string) string, signal string) string {
	if p := env("OTEL_EXPORTER_OTLP_" + signal + "_PROTOCOL"); p != "" {
		return p
	}
	if p := env("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" {
		return p
	}
	return "http/protobuf"
}

// close flushes and stops the exporters.
func (t *telemetry) close(ctx context.Context) error {
	var errs []error
	// In reverse: the trace file closes after its provider has flushed.
	for i := len(t.shutdown) - 1; i >= 0; i-- {
		errs = append(errs, t.shutdown[i](ctx))
	}
	return errors.Join(errs...)
}

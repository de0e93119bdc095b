// Package otlp installs Ferry's tracer provider with an OTLP/HTTP exporter
// (see package telemetry). It is apart from telemetry so that binaries
// which only carry trace context do not link the exporter and its
// dependencies.
package otlp

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"

	"github.com/ferryrun/ferry/runtime/telemetry"
)

// Config configures tracing.
type Config struct {
	// Service names the process in traces ("ferry-serve",
	// "ferry-host").
	Service string
	Version string
	// Endpoint is the OTLP/HTTP collector's base URL
	// (http://127.0.0.1:4318). Empty: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
	// or $OTEL_EXPORTER_OTLP_ENDPOINT; none of them: no export.
	Endpoint string
	// SampleRatio is the share of new traces recorded (a caller's
	// sampling decision is followed); 0 means 1.
	SampleRatio float64
}

// Setup installs the global tracer provider. The returned function
// flushes and stops it; call it on shutdown. Enabled reports whether spans
// are exported.
func Setup(ctx context.Context, cfg Config) (shutdown func(context.Context) error, enabled bool, err error) {
	noop := func(context.Context) error { return nil }
	var opts []otlptracehttp.Option
	switch {
	case cfg.Endpoint != "":
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return noop, false, fmt.Errorf("otlp endpoint %q: want http(s)://host:port", cfg.Endpoint)
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(cfg.Endpoint, "/")+"/v1/traces"))
	case os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "":
		// The exporter reads them itself.
	default:
		return noop, false, nil
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return noop, false, fmt.Errorf("otlp exporter: %w", err)
	}
	ratio := cfg.SampleRatio
	if ratio <= 0 || ratio > 1 {
		ratio = 1
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(cfg.Service), semconv.ServiceVersion(cfg.Version)))
	if err != nil {
		res = resource.Default()
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	telemetry.SetProvider(tp)
	return tp.Shutdown, true, nil
}

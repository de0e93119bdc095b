// Package telemetry is Ferry's OpenTelemetry tracing: one tracer, W3C
// trace context carried over HTTP between `ferry serve`, the hosts it
// calls and their callers, and an OTLP/HTTP exporter when an endpoint is
// configured. With no endpoint, spans are not recorded, but an incoming
// trace context still passes through to remote hosts, so a trace started
// by the caller continues wherever the call runs.
package telemetry

import (
	"context"
	"net/http"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of Ferry's spans.
const Name = "github.com/ferryrun/ferry"

func init() {
	// Propagation works even when tracing is off: a caller's trace
	// context reaches the hosts.
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
}

// recording is set once a real tracer provider is installed.
var recording atomic.Bool

// SetProvider installs tp as the global tracer provider and turns span
// creation on; the returned function restores what was there (for tests).
func SetProvider(tp trace.TracerProvider) (restore func()) {
	prev, was := otel.GetTracerProvider(), recording.Load()
	otel.SetTracerProvider(tp)
	recording.Store(true)
	return func() { otel.SetTracerProvider(prev); recording.Store(was) }
}

// Tracer is Ferry's tracer from the global provider.
func Tracer() trace.Tracer { return otel.Tracer(Name) }

// Start starts a span; a shorthand for Tracer().Start. With no provider
// installed and no trace to continue it costs nothing: it returns ctx and
// a no-op span. An incoming trace is still carried on (as a non-recording
// span) so it reaches the hosts.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !recording.Load() && !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, noopSpan
	}
	return Tracer().Start(ctx, name, opts...)
}

// noopSpan is the span of a context without one: it records nothing.
var noopSpan = trace.SpanFromContext(context.Background())

// Extract returns ctx carrying the trace context of an incoming request.
func Extract(ctx context.Context, h http.Header) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(h))
}

// Handler wraps h so that a request carrying a trace context (W3C
// traceparent) is served within that trace.
func Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Traceparent") != "" {
			r = r.WithContext(Extract(r.Context(), r.Header))
		}
		h.ServeHTTP(w, r)
	})
}

// Inject writes ctx's trace context into an outgoing request's headers.
func Inject(ctx context.Context, h http.Header) {
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(h))
}

// End ends span, recording err (if any) as its status.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Attribute helpers, so callers need not import otel's attribute package.
var (
	String = attribute.String
	Int    = attribute.Int
	Bool   = attribute.Bool
	Float  = attribute.Float64
)

package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

func TestSetup_Off(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	shutdown, enabled, err := Setup(context.Background(), Config{Service: "test"})
	require.NoError(t, err)
	assert.False(t, enabled)
	assert.NoError(t, shutdown(context.Background()))
}

func TestSetup_BadEndpoint(t *testing.T) {
	for _, ep := range []string{"127.0.0.1:4318", "ftp://collector", "http://", "::"} {
		_, _, err := Setup(context.Background(), Config{Endpoint: ep})
		assert.Error(t, err, ep)
	}
}

// Spans reach a collector over OTLP/HTTP (protobuf at /v1/traces).
func TestSetup_Exports(t *testing.T) {
	var got atomic.Int32
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			got.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	prev, was := otel.GetTracerProvider(), recording.Load()
	defer func() { otel.SetTracerProvider(prev); recording.Store(was) }()

	shutdown, enabled, err := Setup(context.Background(), Config{Service: "test", Endpoint: collector.URL})
	require.NoError(t, err)
	require.True(t, enabled)
	_, span := Start(context.Background(), "ferry.test")
	End(span, nil)
	require.NoError(t, shutdown(context.Background())) // flushes
	assert.Positive(t, got.Load(), "no spans reached the collector")
}

// The trace context crosses HTTP headers and back.
func TestInjectExtract(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	h := http.Header{}
	Inject(trace.ContextWithSpanContext(context.Background(), sc), h)
	assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", h.Get("Traceparent"))
	got := trace.SpanContextFromContext(Extract(context.Background(), h))
	assert.Equal(t, tid, got.TraceID())
	assert.Equal(t, sid, got.SpanID())
}

// Off and with no trace to continue, Start creates nothing; a caller's
// trace is still carried.
func TestStart_OffCarriesIncomingTrace(t *testing.T) {
	ctx := context.Background()
	got, span := Start(ctx, "x")
	assert.Equal(t, ctx, got)
	assert.False(t, span.IsRecording())

	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	in := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	got, _ = Start(in, "x")
	h := http.Header{}
	Inject(got, h)
	assert.Contains(t, h.Get("Traceparent"), tid.String())
}

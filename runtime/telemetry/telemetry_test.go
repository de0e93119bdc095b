package telemetry

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/otel/trace"
)

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

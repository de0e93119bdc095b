package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferryrun/ferry/runtime/telemetry"
)

// One trace spans the call: the router's span, the attempt on the remote
// target, the HTTP host's span (the trace context crossed the wire in a
// traceparent header) and the job's run there.
func TestTracing_SpansLocalAndRemote(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(telemetry.SetProvider(tp))

	b := buildBundle(t)
	r := newRemote(t, "")
	s := start(t, b, policyFor(t, r.ts.URL), t.TempDir(), "", nil)
	ctx, root := tp.Tracer("test").Start(context.Background(), "caller")
	_, err := s.Execute(ctx, "trap", nil) // force_serverless: runs remotely, and fails
	require.Error(t, err)
	_, err = s.Execute(ctx, "echo", []byte("traced"))
	require.NoError(t, err)
	root.End()

	// A hedged copy that lost may end its attempt span after Execute has
	// returned (the router does not wait for losers): wait until every
	// host span's attempt has ended.
	var byName map[string][]sdktrace.ReadOnlySpan
	attempts := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	collect := func() bool {
		byName = map[string][]sdktrace.ReadOnlySpan{}
		for _, sp := range rec.Ended() {
			name, _, _ := strings.Cut(sp.Name(), " ")
			byName[name] = append(byName[name], sp)
		}
		clear(attempts)
		for _, sp := range byName["ferry.attempt"] {
			attempts[sp.SpanContext().SpanID()] = sp
		}
		for _, sp := range byName["ferry.host.invoke"] {
			if _, ok := attempts[sp.Parent().SpanID()]; !ok {
				return false
			}
		}
		return true
	}
	assert.Eventually(t, collect, 5*time.Second, 10*time.Millisecond)
	for _, sp := range rec.Ended() {
		assert.Equal(t, root.SpanContext().TraceID(), sp.SpanContext().TraceID(), "span %s is in another trace", sp.Name())
	}
	require.Len(t, byName["ferry.call"], 2)
	require.NotEmpty(t, byName["ferry.host.invoke"], "the remote host's span is missing: the trace did not cross the wire")
	// The remote span's parent is an attempt span of this process.
	for _, sp := range byName["ferry.host.invoke"] {
		a, ok := attempts[sp.Parent().SpanID()]
		require.True(t, ok, "host span's parent is not an attempt")
		assert.Equal(t, trace.SpanKindClient, a.SpanKind())
		assert.Equal(t, trace.SpanKindServer, sp.SpanKind())
	}
	// The trap failed as a job: its spans say so.
	var failed bool
	for _, sp := range byName["ferry.call"] {
		if hasAttr(sp, "ferry.job", "trap") {
			failed = sp.Status().Code.String() == "Error"
		}
	}
	assert.True(t, failed, "the failed call's span has no error status")
	assert.NotEmpty(t, byName["ferry.run"], "the job's run has no span")
}

func hasAttr(sp sdktrace.ReadOnlySpan, key, value string) bool {
	for _, kv := range sp.Attributes() {
		if string(kv.Key) == key && kv.Value.AsString() == value {
			return true
		}
	}
	return false
}

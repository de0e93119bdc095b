package otlp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"

	"github.com/ferryrun/ferry/runtime/telemetry"
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
	defer telemetry.SetProvider(otel.GetTracerProvider())() // put back what was there

	shutdown, enabled, err := Setup(context.Background(), Config{Service: "test", Endpoint: collector.URL})
	require.NoError(t, err)
	require.True(t, enabled)
	_, span := telemetry.Start(context.Background(), "ferry.test")
	telemetry.End(span, nil)
	require.NoError(t, shutdown(context.Background())) // flushes
	assert.Positive(t, got.Load(), "no spans reached the collector")
}

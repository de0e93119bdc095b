package lambda

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func b64(s string) *string { e := base64.StdEncoding.EncodeToString([]byte(s)); return &e }

func TestParseReport(t *testing.T) {
	cold := "START RequestId: 8f5 Version: $LATEST\nhello\nEND RequestId: 8f5\n" +
		"REPORT RequestId: 8f5\tDuration: 1.52 ms\tBilled Duration: 47 ms\tMemory Size: 192 MB\tMax Memory Used: 31 MB\tInit Duration: 45.07 ms\t\n"
	r := parseReport(b64(cold))
	assert.True(t, r.ok)
	assert.Equal(t, 1520*time.Microsecond, r.duration)
	assert.Equal(t, 47*time.Millisecond, r.billed)
	assert.Equal(t, 192, r.memorySizeMB)
	assert.Equal(t, 31, r.maxMemoryUsedMB)
	assert.Equal(t, 45070*time.Microsecond, r.init)

	warm := "REPORT RequestId: 9\tDuration: 0.80 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 30 MB\t"
	r = parseReport(b64(warm))
	assert.True(t, r.ok)
	assert.Zero(t, r.init, "a warm call has no Init Duration")

	for name, in := range map[string]*string{
		"nil": nil, "not base64": strPtr("%%%"), "no report": b64("START\nEND\n"),
		"no billed": b64("REPORT RequestId: 1\tDuration: 1 ms\t"),
		"negative":  b64("REPORT RequestId: 1\tDuration: -1 ms\tBilled Duration: 1 ms"),
		"nan":       b64("REPORT RequestId: 1\tDuration: NaN ms\tBilled Duration: 1 ms"),
	} {
		assert.False(t, parseReport(in).ok, name)
	}
}

func strPtr(s string) *string { return &s }

// FuzzParseReport: the REPORT parser never panics and never reports a
// negative duration.
func FuzzParseReport(f *testing.F) {
	f.Add("REPORT RequestId: 1\tDuration: 1.52 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 18 MB\tInit Duration: 45.07 ms\t")
	f.Add("REPORT \t:\t: ms")
	f.Fuzz(func(t *testing.T, line string) {
		r := parseReportLine(line)
		if r.duration < 0 || r.billed < 0 || r.init < 0 {
			t.Fatalf("negative duration from %q: %+v", line, r)
		}
		_ = parseReport(b64(line))
	})
}

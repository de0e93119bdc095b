package locallambda

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
)

const (
	// tailBytes is how much of an invocation's log X-Amz-Log-Result
	// carries: "the last 4 KB" (API_Invoke.html, X-Amz-Log-Result).
	tailBytes = 4096
	// maxLineBytes splits longer output: a CloudWatch Logs event holds at
	// most 256 KB.
	maxLineBytes = 256 << 10
	// ringLines and ringBytes bound the recent lines kept per function.
	ringLines = 2000
	ringBytes = 1 << 20
)

// The plain-text lines Lambda writes around each invoke, TAB-separated as
// in golang-logging.md and troubleshooting-execution.md.

func startLine(requestID string) string {
	// A single space before Version, not a TAB.
	return "START RequestId: " + requestID + " Version: " + latest
}

func endLine(requestID string) string { return "END RequestId: " + requestID }

// reportLine formats REPORT. Init Duration follows Max Memory Used and
// appears only on an environment's first invoke; for provided.* runtimes
// the init is billed, so a cold start's Billed Duration is
// ceil(init + duration) (golang-logging.html; AWS blog "AWS Lambda
// standardizes billing for INIT phase").
func reportLine(requestID string, d time.Duration, memoryMB, maxUsedMB int, initDur time.Duration, cold bool) string {
	billed := d
	if cold {
		billed += initDur
	}
	s := fmt.Sprintf("REPORT RequestId: %s\tDuration: %s ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB\t",
		requestID, ms(d), int64(math.Ceil(float64(billed)/float64(time.Millisecond))), memoryMB, maxUsedMB)
	if cold {
		s += "Init Duration: " + ms(initDur) + " ms\t"
	}
	return s
}

// initReportLine is printed for a failed init (lambda-runtime-environment.html;
// the tab-separated fields as in the REPORT line).
func initReportLine(d time.Duration, phase, status, errorType string) string {
	s := "INIT_REPORT Init Duration: " + ms(d) + " ms\tPhase: " + phase + "\tStatus: " + status
	if errorType != "" {
		s += "\tError Type: " + errorType
	}
	return s
}

// timeoutLine is the timed-out invoke's line (troubleshooting-execution.html).
func timeoutLine(at time.Time, requestID string, seconds float64) string {
	return fmt.Sprintf("%s %s Task timed out after %.2f seconds", at.UTC().Format("2006-01-02T15:04:05.000Z"), requestID, seconds)
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

// tailBuffer keeps the last tailBytes of a log.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) write(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(p) > tailBytes {
		p = p[len(p)-tailBytes:]
	}
	t.b = append(t.b, p...)
	if len(t.b) > 2*tailBytes {
		t.b = append(t.b[:0], t.b[len(t.b)-tailBytes:]...)
	}
}

func (t *tailBuffer) line(s string) {
	t.write(append([]byte(s), '\n'))
}

func (t *tailBuffer) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.b
	if len(b) > tailBytes {
		b = b[len(b)-tailBytes:]
	}
	return bytes.Clone(b)
}

// logRing keeps a function's recent log lines, bounded in count and bytes.
type logRing struct {
	mu    sync.Mutex
	lines []string
	size  int
}

func (r *logRing) add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, line)
	r.size += len(line)
	drop := 0
	for len(r.lines)-drop > ringLines || (r.size > ringBytes && len(r.lines)-drop > 1) {
		r.size -= len(r.lines[drop])
		drop++
	}
	if drop > 0 {
		// Compact instead of reslicing, so the backing array stays bounded.
		r.lines = append(r.lines[:0:0], r.lines[drop:]...)
	}
}

func (r *logRing) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// syncWriter serialises whole lines from many environments onto one
// writer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) line(prefix, line string) {
	if s == nil || s.w == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = io.WriteString(s.w, prefix+line+"\n")
}

// readOutput splits a process's merged stdout and stderr into lines.
// Lambda's log stream gets both, so one pipe carries them in order.
// A barrier marker (see execEnv.flushOutput) may appear anywhere in the
// stream: text before it is emitted as a line, and the marker's number is
// passed to barrier.
func readOutput(r io.Reader, marker []byte, emit func(string), barrier func(uint64)) {
	handle := func(line []byte) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if i := bytes.Index(line, marker); i >= 0 {
			if i > 0 {
				emit(string(line[:i]))
			}
			if n, err := strconv.ParseUint(string(line[i+len(marker):]), 10, 64); err == nil {
				barrier(n)
			}
			return
		}
		emit(string(line))
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		switch {
		case err == bufio.ErrBufferFull:
			if len(line) >= maxLineBytes {
				handle(line)
				line = line[:0]
			}
			continue
		case len(line) > 0 && line[len(line)-1] == '\n':
			handle(line[:len(line)-1])
			line = line[:0]
		}
		if err != nil {
			if len(line) > 0 {
				handle(line)
			}
			return
		}
	}
}

package lambda

import (
	"bufio"
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"time"
)

// report is what a REPORT log line says about one invocation.
type report struct {
	ok               bool
	duration, billed time.Duration
	memorySizeMB     int
	maxMemoryUsedMB  int
	// init is the Init Duration, set only on the first invocation a new
	// execution environment serves: a cold start.
	init time.Duration
}

// maxLogResult bounds the X-Amz-Log-Result header Ferry decodes; Lambda
// sends the last 4 KB of the log, base64-encoded.
const maxLogResult = 64 << 10

// parseReport finds the REPORT line in the base64 tail of an invocation's
// log (X-Amz-Log-Result). Its fields are TAB-separated "Name: value unit"
// pairs (docs.aws.amazon.com/lambda/latest/dg/golang-logging.html):
//
//	REPORT RequestId: ID\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 18 MB\tInit Duration: 45.67 ms\t
//
// A missing or garbled line gives ok false; unknown fields are ignored.
func parseReport(logResult *string) report {
	if logResult == nil || len(*logResult) > maxLogResult {
		return report{}
	}
	raw, err := base64.StdEncoding.DecodeString(*logResult)
	if err != nil {
		return report{}
	}
	var line string
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 0, 4096), maxLogResult)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "REPORT ") {
			line = sc.Text() // the last one wins
		}
	}
	return parseReportLine(line)
}

func parseReportLine(line string) report {
	if !strings.HasPrefix(line, "REPORT ") {
		return report{}
	}
	var r report
	seen := 0
	for _, field := range strings.Split(strings.TrimPrefix(line, "REPORT "), "\t") {
		name, value, ok := strings.Cut(field, ": ")
		if !ok {
			continue
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(value), " ")
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > 1e9 {
			continue
		}
		switch name {
		case "Duration":
			if unit == "ms" {
				r.duration = msDuration(f)
				seen++
			}
		case "Billed Duration":
			if unit == "ms" {
				r.billed = msDuration(f)
				seen++
			}
		case "Memory Size":
			r.memorySizeMB = int(f)
		case "Max Memory Used":
			r.maxMemoryUsedMB = int(f)
		case "Init Duration":
			if unit == "ms" {
				r.init = msDuration(f)
			}
		}
	}
	r.ok = seen == 2
	return r
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

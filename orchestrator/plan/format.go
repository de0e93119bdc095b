package plan

import (
	"fmt"
	"strings"
	"time"

	"github.com/ferryrun/ferry/orchestrator/policy"
)

// fmtDur prints a duration with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3gs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3gms", ms(d))
	}
	return fmt.Sprintf("%.3gµs", float64(d)/float64(time.Microsecond))
}

func fmtMs(n int) string {
	if n%1000 == 0 {
		return fmt.Sprintf("%d s", n/1000)
	}
	return fmt.Sprintf("%d ms", n)
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func kindList(ks []policy.Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = k.BlueprintName()
	}
	return joinComma(s)
}

func joinComma(s []string) string { return strings.Join(s, ", ") }

// fmtUSD prints a dollar amount readably however small.
func fmtUSD(v float64) string {
	switch {
	case v == 0:
		return "$0"
	case v >= 1:
		return fmt.Sprintf("$%.2f", v)
	case v >= 0.01:
		return fmt.Sprintf("$%.3f", v)
	}
	return fmt.Sprintf("$%.2g", v)
}

// fmtMsF prints milliseconds readably: 0.2 ms, 20.3 ms, 338 ms, 5.2 s.
func fmtMsF(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.3g s", v/1000)
	case v >= 1:
		return fmt.Sprintf("%.3g ms", v)
	}
	return fmt.Sprintf("%.2g ms", v)
}

package plan

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ferryrun/ferry/orchestrator/cost"
)

// WriteText prints the plan for people: the strategy, a table with a row
// per job and a column per target, where each job goes, every reason, the
// monthly projection and any problems.
func (p *Plan) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("Blueprint %s: %s. %s.\n", p.Blueprint, strings.ToUpper(string(p.Strategy)), capitalise(p.Why))
	ew.printf("Policy: serverless %s, fall back to the VM %s, cost threshold %s, latency threshold %s.\n",
		onOff(p.Serverless), onOff(p.FallbackToVM), threshold(p.CostThresholdUSD, "$%g a call"), threshold(p.LatencyThresholdMs, "%g ms"))

	// The table: cost per call and warm latency on every target.
	ew.printf("\nPer call: ✓ eligible (cost · warm latency), ✗ not (why)\n")
	if !p.Serverless {
		ew.printf("Serverless is off: in parentheses, what each provider would do with it on.\n")
	}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	header := []string{"JOB", "LOCAL (" + vmName(p.VM) + ")"}
	for _, pr := range p.Providers {
		header = append(header, strings.ToUpper(pr.ID))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, j := range p.Jobs {
		row := []string{j.Name, cell(j.Local)}
		for _, t := range j.Targets {
			if !p.Serverless {
				row = append(row, "("+cell(withoutOff(t))+")")
				continue
			}
			row = append(row, cell(t))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// Where each job goes.
	ew.printf("\nPlacement\n")
	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	for _, j := range p.Jobs {
		where := "local"
		if j.Placement == Remote {
			where = "remote: " + strings.Join(j.Deploy, ", ")
		}
		extra := []string{"prefers " + j.Preferred}
		if j.Hedge {
			extra = append(extra, "may hedge")
		}
		if !j.Profiled {
			extra = append(extra, "UNPROFILED")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", j.Name, where, strings.Join(extra, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// Monthly projection for the targets a job may use.
	ew.printf("\nMonthly at %g calls/s per job (%s calls), marginal list price\n", p.CallsPerSecond, thousands(int64(p.CallsPerSecond*cost.SecondsPerMonth)))
	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, j := range p.Jobs {
		row := []string{j.Name, monthly(j.Local)}
		for _, t := range j.Targets {
			row = append(row, monthly(t))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// Every reason, those shared by all providers once.
	ew.printf("\nReasons\n")
	for _, j := range p.Jobs {
		lines := reasonLines(j)
		if len(lines) == 0 {
			continue
		}
		ew.printf("  %s\n", j.Name)
		for _, l := range lines {
			ew.printf("    %s\n", l)
		}
	}
	if len(p.Problems) > 0 {
		ew.printf("\nProblems\n")
		for _, pr := range p.Problems {
			ew.printf("  ! %s\n", pr)
		}
	}
	return ew.err
}

func cell(t Target) string {
	if !t.Eligible {
		var codes []string
		for _, r := range t.Reasons {
			if r.Blocking && !slices.Contains(codes, string(r.Code)) {
				codes = append(codes, string(r.Code))
			}
		}
		return "✗ " + strings.Join(codes, ", ")
	}
	c, l := "?", "?"
	if t.Cost != nil {
		c = fmtUSD(t.Cost.PerCallUSD)
	} else if t.Latency != nil {
		c = "unpriced"
	}
	if t.Latency != nil {
		l = fmtMsF(t.Latency.WarmMs)
	}
	return "✓ " + c + " · " + l
}

// withoutOff is t as it would be with serverless on.
func withoutOff(t Target) Target {
	var rs []Reason
	for _, r := range t.Reasons {
		if r.Code != CodeServerlessOff {
			rs = append(rs, r)
		}
	}
	t.Reasons = rs
	t.Eligible = !slices.ContainsFunc(rs, func(r Reason) bool { return r.Blocking })
	return t
}

func monthly(t Target) string {
	switch {
	case !t.Eligible:
		return "-"
	case t.Cost == nil:
		return "?"
	}
	return fmtUSD(t.Cost.MonthlyUSD)
}

// reasonLines lists a job's reasons: those every provider shares once
// ("providers: …"), then each target's own.
func reasonLines(j JobPlan) []string {
	targets := make([]Target, len(j.Targets))
	for i, t := range j.Targets {
		targets[i] = withoutOff(t) // the header already says serverless is off
	}
	j.Targets = targets
	shared := map[Reason]bool{}
	if len(j.Targets) > 1 {
		for _, r := range j.Targets[0].Reasons {
			all := true
			for _, t := range j.Targets[1:] {
				all = all && slices.Contains(t.Reasons, r)
			}
			if all {
				shared[r] = true
			}
		}
	}
	var lines []string
	everywhere := map[Reason]bool{}
	for _, r := range j.Local.Reasons {
		if shared[r] || (len(j.Targets) == 1 && slices.Contains(j.Targets[0].Reasons, r)) {
			everywhere[r] = true
			lines = append(lines, "everywhere: "+reasonText(r))
			continue
		}
		lines = append(lines, "local: "+reasonText(r))
	}
	if len(j.Targets) > 1 {
		for _, r := range j.Targets[0].Reasons {
			if shared[r] && !everywhere[r] {
				lines = append(lines, "all providers: "+reasonText(r))
			}
		}
	}
	for _, t := range j.Targets {
		for _, r := range t.Reasons {
			if !shared[r] && !everywhere[r] {
				lines = append(lines, t.ID+": "+reasonText(r))
			}
		}
	}
	return lines
}

func reasonText(r Reason) string {
	mark := ""
	if r.Blocking {
		mark = "✗ "
	}
	return mark + string(r.Code) + ": " + r.Message
}

func vmName(v cost.VM) string {
	if v.Instance != "" {
		return v.Instance
	}
	return "vm"
}

func threshold(v *float64, format string) string {
	if v == nil {
		return "none"
	}
	return fmt.Sprintf(format, *v)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryrun/ferry/orchestrator/api"
	"github.com/ferryrun/ferry/orchestrator/route"
)

// maxDecisions is the most GET /v1/decisions gives in one answer.
const maxDecisions = 1000

type jobsFlags struct {
	server, tokenFile string
	jsonOut, routes   bool
	timeout           time.Duration
}

func newJobsCmd(e *env) *cobra.Command {
	f := &jobsFlags{}
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List a running ferry serve's jobs: where their calls ran, latency, cost",
		Long: `List the jobs of a running "ferry serve", one row each: placement (local, or
remote with this machine competing), whether calls may be hedged, and over
the calls the server remembers (the newest 1000): how many, how many failed,
where they ran, latency p50 and p99 (as ferry serve measured it, decision to
answer) and the total cost.

--routes adds a row per job and target: calls, failures, the latency the
router has learned (mean ± mean deviation), the latency it expects for the
next call, the cost per call, and the circuit breaker's state.

The server and token are found as for ferry invoke: --server, $FERRY_SERVER
or ` + defaultServer + `; --token-file or $FERRY_TOKEN.`,
		Example: `  ferry jobs
  ferry jobs --routes
  ferry jobs --server http://127.0.0.1:8700 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runJobs(cmd.Context(), e, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "ferry serve's `URL` (default: $FERRY_SERVER, else "+defaultServer+")")
	fl.StringVar(&f.tokenFile, "token-file", "", "bearer token from `FILE` (default: $FERRY_TOKEN)")
	fl.BoolVar(&f.jsonOut, "json", false, "print the jobs, their routes and the recent calls' summary as JSON")
	fl.BoolVar(&f.routes, "routes", false, "also list each job's targets with what the router has learned")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait for each answer (0: no limit)")
	return cmd
}

// jobsAnswer is GET /v1/jobs.
type jobsAnswer struct {
	Strategy string        `json:"strategy"`
	Why      string        `json:"why"`
	Jobs     []api.JobView `json:"jobs"`
}

// jobsJSON is ferry jobs --json's output.
type jobsJSON struct {
	Server   string `json:"server"`
	Strategy string `json:"strategy"`
	Why      string `json:"why"`
	// Window is how many recent calls the summaries cover.
	Window int       `json:"window"`
	Jobs   []jobJSON `json:"jobs"`
}

type jobJSON struct {
	api.JobView
	Recent recentJSON `json:"recent"`
}

type recentJSON struct {
	Calls     int                `json:"calls"`
	Failed    int                `json:"failed"`
	RanOn     map[string]int     `json:"ran_on"`
	LatencyMs map[string]float64 `json:"latency_ms"`
	CostUSD   float64            `json:"cost_usd"`
}

func runJobs(ctx context.Context, e *env, f *jobsFlags) error {
	c, err := newServeClient(f.server, f.tokenFile, f.timeout, 1)
	if err != nil {
		return err
	}
	var jobs jobsAnswer
	if err := c.do(ctx, http.MethodGet, "/v1/jobs", nil, &jobs); err != nil {
		return withCode(exitCodeOfCall(err), fmt.Errorf("list jobs: %w", err))
	}
	var recent struct {
		Decisions []*route.Decision `json:"decisions"`
	}
	if err := c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/decisions?limit=%d", maxDecisions), nil, &recent); err != nil {
		return withCode(exitCodeOfCall(err), fmt.Errorf("list recent calls: %w", err))
	}
	tallies := map[string]*tally{}
	for _, j := range jobs.Jobs {
		tallies[j.Name] = newTally()
	}
	for _, d := range recent.Decisions {
		t := tallies[d.Job]
		switch {
		case t == nil:
		case d.Error != "" || d.RanOn == "":
			t.failed++
		default:
			t.add(d.RanOn, d.LatencyMs, d.CostUSD)
		}
	}
	if f.jsonOut {
		out := jobsJSON{Server: c.base, Strategy: jobs.Strategy, Why: jobs.Why, Window: len(recent.Decisions), Jobs: []jobJSON{}}
		for _, j := range jobs.Jobs {
			t := tallies[j.Name]
			out.Jobs = append(out.Jobs, jobJSON{JobView: j, Recent: recentJSON{Calls: t.calls + t.failed, Failed: t.failed,
				RanOn: t.ranOn, LatencyMs: t.latencySummary(), CostUSD: t.costUSD}})
		}
		return writeIndented(e.stdout, out)
	}
	writeJobsTable(e.stdout, c.base, &jobs, tallies, len(recent.Decisions))
	if f.routes {
		fmt.Fprintln(e.stdout)
		writeRoutesTable(e.stdout, &jobs)
	}
	return nil
}

func writeJobsTable(w io.Writer, server string, jobs *jobsAnswer, tallies map[string]*tally, window int) {
	fmt.Fprintf(w, "ferry serve at %s: %s, %s\n", server, strings.ToUpper(jobs.Strategy), jobs.Why)
	writeTable(w, func(tw io.Writer) {
		fmt.Fprintln(tw, "JOB\tPLACEMENT\tHEDGE\tCALLS\tFAILED\tRAN ON\tP50\tP99\tCOST")
		for _, j := range jobs.Jobs {
			t := tallies[j.Name]
			placement := string(j.Placement)
			if j.Force {
				placement += " (forced)"
			}
			hedge := "no"
			if j.Hedge {
				hedge = "yes"
			}
			p50, p99, cost := "-", "-", "-"
			if t.calls > 0 {
				p50, p99, cost = fmtMs(t.percentile(50)), fmtMs(t.percentile(99)), costOf(j, t)
			}
			where := t.where(false)
			if where == "" {
				where = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", j.Name, placement, hedge, t.calls+t.failed, t.failed, where, p50, p99, cost)
		}
	})
	if window >= maxDecisions {
		fmt.Fprintf(w, "(calls, latency and cost: the newest %d calls ferry serve keeps)\n", window)
	}
}

// costOf is the cost of the calls t counts; calls that ran on a target
// without a price (a custom host whose price the policy does not set) add
// nothing, and the column says so rather than claim they were free.
func costOf(j api.JobView, t *tally) string {
	unpriced := 0
	for _, e := range j.Eligibility {
		if e.Cost == nil {
			unpriced += t.ranOn[e.ID]
		}
	}
	switch {
	case unpriced == t.calls:
		return "unpriced"
	case unpriced > 0:
		return fmtUSD(t.costUSD) + " + unpriced"
	}
	return fmtUSD(t.costUSD)
}

func writeRoutesTable(w io.Writer, jobs *jobsAnswer) {
	writeTable(w, func(tw io.Writer) {
		fmt.Fprintln(tw, "JOB\tTARGET\tCALLS\tFAILED\tLEARNED\tEXPECTED\tCOST/CALL\tBREAKER")
		for _, j := range jobs.Jobs {
			priced := map[string]bool{}
			for _, t := range j.Eligibility {
				priced[t.ID] = t.Cost != nil
			}
			for i, r := range j.Routes {
				name := j.Name
				if i > 0 {
					name = ""
				}
				cost := fmtUSD(r.CostUSD)
				if !priced[r.ID] {
					cost = "unpriced"
				}
				learned := strings.TrimSuffix(fmtMs(r.LatencyMs), " ms") + " ± " + fmtMs(r.DevMs)
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", name, r.ID, r.Calls, r.Failures, learned,
					fmtMs(r.ExpectedMs), cost, r.Breaker)
			}
		}
	})
}

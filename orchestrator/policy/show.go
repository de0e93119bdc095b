package policy

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ferryrun/ferry/orchestrator/cost"
)

// View is the effective policy: every default filled in, every provider
// with the limits, price and latency estimate Ferry will use. It is what
// `ferry cloud show --json` prints.
type View struct {
	Path               string         `json:"path"`
	Exists             bool           `json:"exists"`
	Enable             bool           `json:"enable"`
	DefaultMemoryMB    int            `json:"default_memory_mb"`
	DefaultTimeoutSecs int            `json:"default_timeout_secs"`
	FallbackToVM       bool           `json:"fallback_to_vm"`
	Providers          []ProviderView `json:"providers"`
	// TangleChanged: serverless.provider was changed outside Ferry and
	// replaces an entry of ferry.providers.
	TangleChanged      bool        `json:"tangle_changed"`
	VM                 cost.VM     `json:"vm"`
	CostThresholdUSD   *float64    `json:"cost_threshold_usd"`
	LatencyThresholdMs *float64    `json:"latency_threshold_ms"`
	State              *StateStore `json:"state"`
}

// ProviderView is one provider with what Ferry assumes about it.
type ProviderView struct {
	ID string `json:"id"`
	Provider
	Limits       Limits      `json:"limits"`
	Price        *cost.Price `json:"price"` // nil: unpriced
	Latency      Latency     `json:"latency"`
	AllowNetwork bool        `json:"allow_network"`
}

// View returns the effective policy read from path.
func (p *Policy) View(path string, exists bool) View {
	v := View{
		Path: path, Exists: exists, Enable: p.Serverless.Enable,
		DefaultMemoryMB: p.Serverless.DefaultMemoryMB, DefaultTimeoutSecs: p.Serverless.DefaultTimeoutSecs,
		FallbackToVM: p.Serverless.FallbackToVM, TangleChanged: p.TangleChanged(), VM: p.VM(),
		CostThresholdUSD: p.CostThreshold(), LatencyThresholdMs: p.LatencyThreshold(), State: p.State(),
	}
	for _, pr := range p.Providers() {
		pv := ProviderView{ID: pr.ID(), Provider: pr, Limits: pr.EffectiveLimits(), Latency: pr.EffectiveLatency(), AllowNetwork: pr.NetworkAllowed()}
		pv.Provider.Limits, pv.Provider.Price, pv.Provider.Latency, pv.Provider.AllowNetwork = nil, nil, nil, nil
		if price, ok := pr.EffectivePrice(); ok {
			pv.Price = &price
		}
		v.Providers = append(v.Providers, pv)
	}
	return v
}

// WriteText prints the view for people.
func (v View) WriteText(w io.Writer) error {
	src := v.Path
	if !v.Exists {
		src += " (not there: defaults)"
	}
	fmt.Fprintf(w, "Deployment policy  %s\n\n", src)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  serverless\t%s\n", onOff(v.Enable))
	fmt.Fprintf(tw, "  default memory\t%d MB\n", v.DefaultMemoryMB)
	fmt.Fprintf(tw, "  default timeout\t%d s\n", v.DefaultTimeoutSecs)
	fmt.Fprintf(tw, "  fall back to the VM\t%s\n", onOff(v.FallbackToVM))
	fmt.Fprintf(tw, "  vm\t%s\n", vmString(v.VM))
	fmt.Fprintf(tw, "  cost threshold\t%s\n", orNone(v.CostThresholdUSD, "$%g per execution"))
	fmt.Fprintf(tw, "  latency threshold\t%s\n", orNone(v.LatencyThresholdMs, "%g ms"))
	state := "none (stateful jobs stay local)"
	if v.State != nil {
		state = v.State.URL
	}
	fmt.Fprintf(tw, "  state store\t%s\n", state)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nProviders, in order of preference\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  ID\tDETAILS\tMEMORY\tTIMEOUT\tPAYLOAD\tNETWORK JOBS\n")
	for _, p := range v.Providers {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Provider.details(), memText(p.Limits), timeoutText(p.Limits),
			humanBytes(p.Limits.MaxPayload()), yesNo(p.AllowNetwork))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nPrices and latency estimates\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  ID\tPRICE\tWARM CALL\tCOLD START\n")
	for _, p := range v.Providers {
		fmt.Fprintf(tw, "  %s\t%s\t+%g ms\t+%g ms\n", p.ID, priceText(p.Price), p.Latency.OverheadMs, p.Latency.ColdStartMs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if v.TangleChanged {
		fmt.Fprintf(w, "\nnote: serverless.provider was changed outside Ferry (the Tangle CLI?); it replaces the entry it mirrored.\n")
	}
	if !v.Enable {
		fmt.Fprintf(w, "\nServerless is off: every job runs on this machine. Turn it on with `ferry cloud policy --serverless true`.\n")
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "allowed"
	}
	return "forbidden"
}

func orNone(v *float64, format string) string {
	if v == nil {
		return "none"
	}
	return fmt.Sprintf(format, *v)
}

func memText(l Limits) string {
	if l.FixedMemory {
		return fmt.Sprintf("%d MB fixed", l.MemoryMB)
	}
	return fmt.Sprintf("≤%d MB", l.MemoryMB)
}

func timeoutText(l Limits) string {
	s := ""
	if l.TimeoutMs > 0 && l.TimeoutMs < 1000 {
		s = fmt.Sprintf("≤%d ms", l.TimeoutMs)
	} else {
		s = fmt.Sprintf("≤%d s", l.Timeout()/1000)
	}
	if l.CPUTime {
		s += " CPU"
	}
	return s
}

func priceText(p *cost.Price) string {
	if p == nil {
		return "unpriced"
	}
	var parts []string
	switch p.Meter {
	case cost.MeterGBSecond, cost.MeterObservedGBSecond:
		parts = append(parts, "$"+plain(p.PerGBSecondUSD)+"/GB-s")
	case cost.MeterVCPUGiBSecond:
		parts = append(parts, "$"+plain(p.PerVCPUSecondUSD)+"/vCPU-s", "$"+plain(p.PerGBSecondUSD)+"/GiB-s")
	case cost.MeterCPUMs:
		parts = append(parts, "$"+plain(p.PerCPUMsUSD*1e6)+"/M CPU-ms")
	}
	parts = append(parts, "$"+plain(p.PerRequestUSD*1e6)+"/M requests")
	return strings.Join(parts, " + ")
}

// plain prints a float without an exponent, rounded to 6 significant digits.
func plain(v float64) string {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// humanBytes formats a byte count in binary units.
func humanBytes(n int) string {
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

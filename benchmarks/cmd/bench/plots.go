package main

import (
	"fmt"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/ferryrun/ferry/benchmarks/harness"
)

// writePlots draws the report's plots as SVG files in dir and returns
// their names.
func writePlots(dir string, rep harness.Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	v := newView(rep)
	var names []string
	save := func(p *plot.Plot, name string, w vg.Length) error {
		if p == nil {
			return nil
		}
		if err := p.Save(w, 4*vg.Inch, filepath.Join(dir, name)); err != nil {
			return err
		}
		names = append(names, name)
		return nil
	}
	all := v.targets
	byJob := func(title, ylabel string, targets []string, val func(r harness.Result, job string) (float64, bool)) (*plot.Plot, error) {
		return jobDots(v, title, ylabel, targets, val)
	}
	p, err := byJob("Warm call latency, p50 (log scale)", "µs", all, func(r harness.Result, _ string) (float64, bool) { return r.WarmP50Us, r.WarmP50Us > 0 })
	if err != nil {
		return nil, err
	}
	if err := save(p, "warm-p50.svg", 9*vg.Inch); err != nil {
		return nil, err
	}
	p, err = byJob("Cold call: fresh instance (engines), first call after deploy (hosts)", "ms", all, func(r harness.Result, _ string) (float64, bool) { return r.ColdMs, r.ColdMs > 0 })
	if err != nil {
		return nil, err
	}
	if err := save(p, "cold.svg", 9*vg.Inch); err != nil {
		return nil, err
	}
	p, err = byJob("wasm / native, warm p50 (1 = native speed)", "×", v.engines(), func(r harness.Result, job string) (float64, bool) {
		n, ok := v.get(job, harness.TargetNative)
		return r.WarmP50Us / n.WarmP50Us, ok && n.WarmP50Us > 0 && r.WarmP50Us > 0
	})
	if err != nil {
		return nil, err
	}
	if err := save(p, "wasm-native.svg", 9*vg.Inch); err != nil {
		return nil, err
	}
	for _, job := range []string{"echo", "incredible-squaring", "sha256"} {
		p, err := throughput(v, job)
		if err != nil {
			return nil, err
		}
		if err := save(p, "throughput-"+job+".svg", 6*vg.Inch); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// jobDots plots one value per job (x) and target (a series of dots), on
// a log scale. Nil when nothing was measured.
func jobDots(v *view, title, ylabel string, targets []string, val func(harness.Result, string) (float64, bool)) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.X.Tick.Marker = jobTicks(v.jobs)
	p.X.Min, p.X.Max = -0.5, float64(len(v.jobs))-0.5
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	n := 0
	for i, t := range targets {
		var pts plotter.XYs
		for x, job := range v.jobs {
			r, ok := v.get(job, t)
			if !ok {
				continue
			}
			if y, ok := val(r, job); ok {
				off := (float64(i) - float64(len(targets)-1)/2) * 0.6 / float64(max(len(targets), 1))
				pts = append(pts, plotter.XY{X: float64(x) + off, Y: y})
			}
		}
		if len(pts) == 0 {
			continue
		}
		s, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle.Color = plotutil.Color(i)
		s.GlyphStyle.Shape = plotutil.Shape(i)
		s.GlyphStyle.Radius = vg.Points(3.5)
		p.Add(s)
		p.Legend.Add(t, s)
		n++
	}
	if n == 0 {
		return nil, nil
	}
	return p, nil
}

type jobTicks []string

func (j jobTicks) Ticks(min, max float64) []plot.Tick {
	ts := make([]plot.Tick, len(j))
	for i, name := range j {
		ts[i] = plot.Tick{Value: float64(i), Label: name}
	}
	return ts
}

// throughput plots calls per second against concurrency for one job, a
// line per target.
func throughput(v *view, job string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Throughput, %s (closed loop, log scale)", job)
	p.X.Label.Text = "concurrent callers"
	p.Y.Label.Text = "calls/s"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker = plot.ConstantTicks(concTicks(v.rep.Options.Concurrency))
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	n := 0
	for i, t := range v.targets {
		r, ok := v.get(job, t)
		if !ok || len(r.Load) == 0 {
			continue
		}
		var pts plotter.XYs
		for _, l := range r.Load {
			if l.CallsPerSec > 0 {
				pts = append(pts, plotter.XY{X: float64(l.Concurrency), Y: l.CallsPerSec})
			}
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i % 3)
		points.Color = plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(t, line, points)
		n++
	}
	if n == 0 {
		return nil, nil
	}
	return p, nil
}

func concTicks(levels []int) []plot.Tick {
	ts := make([]plot.Tick, len(levels))
	for i, c := range levels {
		ts[i] = plot.Tick{Value: float64(c), Label: fmt.Sprint(c)}
	}
	return ts
}

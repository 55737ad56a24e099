package bench

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
)

// Chart geometry, in SVG user units (pixels at 100 %).
const (
	svgWidth     = 960.0
	svgHeader    = 56.0 // title and run summary
	chartHeight  = 340.0
	plotLeft     = 90.0  // room for the y tick labels and axis title
	plotRight    = 820.0 // the legend sits to the right
	plotTopPad   = 36.0  // chart title
	plotBottomPd = 56.0  // x tick labels and axis title
)

var seriesColors = map[string]string{commandSet: "#1f77b4", commandGet: "#d62728"}

// WriteSVG draws two charts, throughput and p99 latency against value
// size, both axes on log scales (sizes and results span orders of
// magnitude). The SVG is self-contained: no scripts, fonts or links.
func WriteSVG(w io.Writer, rep *Report) error {
	var b bytes.Buffer
	height := svgHeader + 2*chartHeight
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	b.WriteString("<title>slotway bench results</title>\n")
	fmt.Fprintf(&b, `<rect width="%g" height="%g" fill="#fff"/>`+"\n", svgWidth, height)
	c := rep.Config
	fmt.Fprintf(&b, `<text x="16" y="24" font-size="16" font-weight="bold">slotway bench: %s</text>`+"\n", esc(c.Endpoint))
	summary := fmt.Sprintf("%d clients, pipeline %d, %s per phase, %s", c.Clients, c.Pipeline, c.Duration, c.Mode)
	if c.Rate > 0 {
		summary += fmt.Sprintf(" at %d ops/s", c.Rate)
	}
	if !rep.Start.IsZero() {
		summary += ", started " + rep.Start.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	fmt.Fprintf(&b, `<text x="16" y="44" fill="#555">%s</text>`+"\n", esc(summary))
	drawChart(&b, svgHeader, "Throughput by value size", "ops/s", rep.Results,
		func(r Result) float64 { return r.OpsPerSec })
	drawChart(&b, svgHeader+chartHeight, "p99 latency by value size", "p99 latency (ms)", rep.Results,
		func(r Result) float64 { return r.P99 })
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

type point struct{ size, v float64 }

// drawChart draws one chart in the band starting at y0. Results with a
// value <= 0 (no answer at all) have no point on a log scale and are left
// out.
func drawChart(b *bytes.Buffer, y0 float64, title, ylabel string, results []Result, val func(Result) float64) {
	top, bottom := y0+plotTopPad, y0+chartHeight-plotBottomPd
	fmt.Fprintf(b, `<g class="chart"><text x="%g" y="%g" font-size="14" font-weight="bold">%s</text>`+"\n",
		plotLeft, y0+22, esc(title))
	series := map[string][]point{}
	var cmds []string
	var sizes, vals []float64
	for _, r := range results {
		if !slices.Contains(cmds, r.Command) {
			cmds = append(cmds, r.Command)
		}
		sizes = append(sizes, float64(r.SizeBytes))
		if v := val(r); v > 0 {
			series[r.Command] = append(series[r.Command], point{float64(r.SizeBytes), v})
			vals = append(vals, v)
		}
	}
	fmt.Fprintf(b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#999"/>`+"\n",
		plotLeft, top, plotRight-plotLeft, bottom-top)
	xl := newLogScale(sizes, 2, plotLeft, plotRight)
	for _, s := range uniqueSorted(sizes) {
		x := xl.at(s)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#eee"/>`, x, top, x, bottom)
		fmt.Fprintf(b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x, bottom+16, esc(SizeLabel(int(s))))
	}
	fmt.Fprintf(b, `<text x="%g" y="%g" text-anchor="middle">value size (bytes, log scale)</text>`+"\n",
		(plotLeft+plotRight)/2, bottom+40)
	ymid := (top + bottom) / 2
	fmt.Fprintf(b, `<text x="20" y="%g" text-anchor="middle" transform="rotate(-90 20 %g)">%s (log scale)</text>`+"\n",
		ymid, ymid, esc(ylabel))
	if len(vals) == 0 {
		fmt.Fprintf(b, `<text x="%g" y="%g" text-anchor="middle" fill="#999">no data</text></g>`+"\n", (plotLeft+plotRight)/2, ymid)
		return
	}
	yl := newLogScale(vals, 10, bottom, top)
	for _, t := range yl.ticks() {
		y := yl.at(t)
		fmt.Fprintf(b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#eee"/>`, plotLeft, y, plotRight, y)
		fmt.Fprintf(b, `<text x="%g" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n",
			plotLeft-6, y, tickLabel(t))
	}
	for i, cmd := range cmds {
		color := seriesColors[cmd]
		if color == "" {
			color = "#333"
		}
		pts := series[cmd]
		slices.SortFunc(pts, func(a, b point) int { return cmp.Compare(a.size, b.size) })
		var poly bytes.Buffer
		for _, p := range pts {
			fmt.Fprintf(&poly, "%.1f,%.1f ", xl.at(p.size), yl.at(p.v))
		}
		fmt.Fprintf(b, `<polyline class="series" data-command="%s" fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n",
			esc(cmd), color, bytes.TrimSpace(poly.Bytes()))
		for _, p := range pts {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s %s: %s %s</title></circle>`+"\n",
				xl.at(p.size), yl.at(p.v), color, esc(cmd), esc(SizeLabel(int(p.size))), strconv.FormatFloat(p.v, 'g', 4, 64), esc(ylabel))
		}
		ly := top + 12 + float64(i)*20
		fmt.Fprintf(b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="2"/><text x="%g" y="%g" dominant-baseline="middle">%s</text>`+"\n",
			plotRight+16, ly, plotRight+40, ly, color, plotRight+46, ly, esc(cmd))
	}
	b.WriteString("</g>\n")
}

// logScale maps [lo, hi] (powers of base around the data) onto [from, to].
type logScale struct {
	base, lo, hi, from, to float64 // lo, hi as exponents
}

func newLogScale(vals []float64, base, from, to float64) logScale {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		e := math.Log(v) / math.Log(base)
		lo, hi = math.Min(lo, e), math.Max(hi, e)
	}
	if base == 10 {
		// Whole decades, so the grid lines land on round numbers.
		lo, hi = math.Floor(lo), math.Ceil(hi)
	} else {
		// Half a step of margin so the end points are not on the frame.
		lo, hi = lo-0.5, hi+0.5
	}
	if hi <= lo {
		hi = lo + 1
	}
	return logScale{base: base, lo: lo, hi: hi, from: from, to: to}
}

func (s logScale) at(v float64) float64 {
	e := math.Log(v) / math.Log(s.base)
	return s.from + (e-s.lo)/(s.hi-s.lo)*(s.to-s.from)
}

// ticks are 1, 10, 100, ... across the range, with 2 and 5 in between when
// it spans fewer than three decades.
func (s logScale) ticks() []float64 {
	var t []float64
	fine := s.hi-s.lo < 3
	for e := s.lo; e <= s.hi; e++ {
		d := math.Pow(10, e)
		t = append(t, d)
		if fine && e < s.hi {
			t = append(t, 2*d, 5*d)
		}
	}
	return t
}

// tickLabel renders 0.001 .. 5M compactly.
func tickLabel(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func uniqueSorted(v []float64) []float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return slices.Compact(s)
}

package main

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Chart size in points at 96 dpi: about 1000 x 400 pixels, which keeps
// the PNG small enough (tens of KB) to commit with every run.
const (
	chartWidth  = vg.Length(750)
	chartHeight = vg.Length(300)
	chartDPI    = 96
)

// sweepSeries are the points of one half of the sweep.
type sweepSeries struct {
	rate, p99 plotter.XYs
}

// sweepPoints collects the successful halves of the sweep; values that a
// log axis cannot show (zero) are left out.
func sweepPoints(rep Report) (gw, sa sweepSeries, clients []int) {
	for _, r := range sweepResults(rep) {
		clients = append(clients, r.Clients)
		x := float64(r.Clients)
		if m := r.Gateway; m.ok() && m.Rate > 0 && m.P99Ms > 0 {
			gw.rate = append(gw.rate, plotter.XY{X: x, Y: m.Rate})
			gw.p99 = append(gw.p99, plotter.XY{X: x, Y: m.P99Ms})
		}
		if m := r.Sarama; m.ok() && m.Rate > 0 && m.P99Ms > 0 {
			sa.rate = append(sa.rate, plotter.XY{X: x, Y: m.Rate})
			sa.p99 = append(sa.p99, plotter.XY{X: x, Y: m.P99Ms})
		}
	}
	return gw, sa, clients
}

// sweepChart draws the HTTP POST sweep as a PNG: req/s by clients on the
// left, p99 by clients on the right, gateway and sarama on both, log axes
// (sarama is often tens of times faster, and the clients go 1 to 256).
// It returns nil without a successful sweep point.
func sweepChart(rep Report) ([]byte, error) {
	gw, sa, clients := sweepPoints(rep)
	if len(gw.rate)+len(sa.rate) == 0 {
		return nil, nil
	}
	var ticks []plot.Tick
	for _, c := range clients {
		ticks = append(ticks, plot.Tick{Value: float64(c), Label: strconv.Itoa(c)})
	}
	left, err := sweepPlot("HTTP POST throughput", "req/s", ticks, gw.rate, sa.rate)
	if err != nil {
		return nil, err
	}
	right, err := sweepPlot("HTTP POST p99 latency", "p99 ms", ticks, gw.p99, sa.p99)
	if err != nil {
		return nil, err
	}
	img := vgimg.NewWith(vgimg.UseWH(chartWidth, chartHeight), vgimg.UseDPI(chartDPI))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: 6 * vg.Millimeter, PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Line colours: the gateway in blue, sarama in grey, so that the gateway
// stands out as the subject.
var (
	gatewayColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	saramaColor  = color.RGBA{R: 0x80, G: 0x80, B: 0x80, A: 0xff}
)

// sweepPlot is one panel: a line with points per half, on log axes.
func sweepPlot(title, ylabel string, xticks []plot.Tick, gw, sa plotter.XYs) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "keep-alive clients"
	p.Y.Label.Text = ylabel
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.ConstantTicks(xticks)
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	p.Legend.Top = true
	p.Legend.Left = true
	// Off the axis line, and below the top decade's grid line.
	p.Legend.XOffs = 3 * vg.Millimeter
	p.Legend.YOffs = -2 * vg.Millimeter
	p.Add(plotter.NewGrid())
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range []struct {
		name string
		xys  plotter.XYs
		c    color.Color
		dash bool
	}{{"gateway", gw, gatewayColor, false}, {"sarama", sa, saramaColor, true}} {
		if len(s.xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", title, s.name, err)
		}
		line.Color = s.c
		line.Width = vg.Points(1.5)
		if s.dash {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		points.Color = s.c
		points.Shape = draw.CircleGlyph{}
		p.Add(line, points)
		p.Legend.Add(s.name, line, points)
		for _, xy := range s.xys {
			lo, hi = math.Min(lo, xy.Y), math.Max(hi, xy.Y)
		}
	}
	// Whole decades around the data, so that the log axis has ticks to
	// label even when every point lies within one decade.
	p.Y.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	p.Y.Max = math.Pow(10, math.Ceil(math.Log10(hi)))
	if p.Y.Max == p.Y.Min {
		p.Y.Max *= 10
	}
	// Some room left and right of the first and last client counts.
	p.X.Min = xticks[0].Value / 1.5
	p.X.Max = xticks[len(xticks)-1].Value * 1.5
	return p, nil
}

// logTicks labels each decade of a log axis with a plain number
// (1, 10, 100, 1,000, ...) and marks 2 and 5 times it, labelled too when
// the axis spans two decades or less (else the labels crowd).
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	fine := hi/lo <= 100
	var out []plot.Tick
	for d := math.Pow(10, math.Floor(math.Log10(lo))); d <= hi; d *= 10 {
		for _, k := range []float64{1, 2, 5} {
			v := d * k
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if k == 1 || fine {
				t.Label = tickLabel(v)
			}
			out = append(out, t)
		}
	}
	return out
}

// tickLabel formats 1, 2 or 5 times a power of ten for an axis: 0.05,
// 0.1, 2, 10, 1,000.
func tickLabel(v float64) string {
	if v < 1 {
		// Rounded: 0.1 * 2 is 0.2000000000000000111 in binary.
		return strconv.FormatFloat(v, 'g', 1, 64)
	}
	return thousands(v)
}

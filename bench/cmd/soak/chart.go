package main

import (
	"bytes"
	"fmt"
	"image/color"
	"os"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// panel is one chart of the soak PNG: series sharing a unit.
type panel struct {
	title, unit string
	series      []struct {
		name string
		get  func(sample) float64
	}
}

var (
	coreColor   = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	pluginColor = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	quarterGrey = color.RGBA{R: 0xb0, G: 0xb0, B: 0xb0, A: 0xff}
)

func series(name string, get func(sample) float64) struct {
	name string
	get  func(sample) float64
} {
	return struct {
		name string
		get  func(sample) float64
	}{name, get}
}

// writeChart draws four panels (RSS, goroutines and threads, descriptors,
// consumer lag of the readers and of the push subscriptions) over time, with the quarters the verdict compares marked.
func writeChart(path string, samples []sample, d time.Duration) error {
	mib := func(v int64) float64 { return float64(v) / (1 << 20) }
	panels := []panel{
		{"Resident memory", "MiB", nil},
		{"Goroutines (core) and threads (plugins)", "count", nil},
		{"Open file descriptors", "count", nil},
		{"Consumer lag", "records", nil},
	}
	panels[0].series = append(panels[0].series,
		series("core", func(s sample) float64 { return mib(s.coreRSS) }),
		series("plugins, all", func(s sample) float64 { return mib(s.pluginRSS) }))
	panels[1].series = append(panels[1].series,
		series("core goroutines", func(s sample) float64 { return float64(s.coreGoroutines) }),
		series("plugin threads, all", func(s sample) float64 { return float64(s.pluginThreads) }))
	panels[2].series = append(panels[2].series,
		series("core", func(s sample) float64 { return float64(s.coreFDs) }),
		series("plugins, all", func(s sample) float64 { return float64(s.pluginFDs) }))
	panels[3].series = append(panels[3].series,
		series("readers' groups", func(s sample) float64 { return float64(s.lag) }),
		series("push subscriptions", func(s sample) float64 { return float64(s.pushLag) }))

	const w, h = 12 * vg.Inch, 8 * vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))
	dc := draw.New(img)
	var plots [][]*plot.Plot
	row := []*plot.Plot{}
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.X.Label.Text = "minutes"
		p.Y.Label.Text = pn.unit
		p.Y.Min = 0
		p.Add(plotter.NewGrid())
		var hi float64
		for j, s := range pn.series {
			xys := make(plotter.XYs, len(samples))
			for k, smp := range samples {
				xys[k].X = smp.at.Minutes()
				xys[k].Y = s.get(smp)
				if xys[k].Y > hi {
					hi = xys[k].Y
				}
			}
			l, err := plotter.NewLine(xys)
			if err != nil {
				return fmt.Errorf("%s: %w", pn.title, err)
			}
			l.Color = coreColor
			if j == 1 {
				l.Color = pluginColor
			}
			l.Width = vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(s.name, l)
		}
		p.Y.Max = hi*1.2 + 1
		// The quarters the verdict compares: the second and the last.
		for _, frac := range []float64{0.25, 0.5, 0.75} {
			x := d.Minutes() * frac
			l, _ := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: p.Y.Max}})
			l.Color = quarterGrey
			l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
			p.Add(l)
		}
		p.Legend.Top = true
		row = append(row, p)
		if i%2 == 1 {
			plots = append(plots, row)
			row = nil
		}
	}
	tiles := draw.Tiles{Rows: 2, Cols: 2, PadX: 8 * vg.Millimeter, PadY: 8 * vg.Millimeter,
		PadTop: 4 * vg.Millimeter, PadBottom: 4 * vg.Millimeter, PadLeft: 4 * vg.Millimeter, PadRight: 6 * vg.Millimeter}
	canvases := plot.Align(plots, tiles, dc)
	for r := range plots {
		for c := range plots[r] {
			plots[r][c].Draw(canvases[r][c])
		}
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

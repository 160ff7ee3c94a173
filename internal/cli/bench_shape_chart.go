package cli

import (
	"fmt"
	"image/color"
	"os"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// drawShapeChart draws the per-second record of a shape run to path (.svg
// or .png): offered, inflow, outflow and backlog (direct: errors) above,
// end-to-end latency p50 and p99 below, on one time axis.
func drawShapeChart(path, title string, secs []shapeSecond, direct bool) error {
	series := func(v func(s shapeSecond) float64) plotter.XYs {
		xy := make(plotter.XYs, len(secs))
		for i, s := range secs {
			xy[i].X, xy[i].Y = float64(s.Second), v(s)
		}
		return xy
	}
	flow := plot.New()
	flow.Title.Text = title
	flow.Y.Label.Text = "messages per second / messages"
	flow.Legend.Top = true
	flow.Add(plotter.NewGrid())
	type line struct {
		name string
		xy   plotter.XYs
		c    color.RGBA
	}
	lines := []line{
		{"offered", series(func(s shapeSecond) float64 { return float64(s.Offered) }), color.RGBA{R: 150, G: 150, B: 150, A: 255}},
		{"inflow (confirmed)", series(func(s shapeSecond) float64 { return float64(s.Inflow) }), color.RGBA{R: 31, G: 119, B: 180, A: 255}},
		{"outflow (consumed)", series(func(s shapeSecond) float64 { return float64(s.Outflow) }), color.RGBA{R: 44, G: 160, B: 44, A: 255}},
	}
	if direct {
		lines[1].name = "inflow (accepted calls)"
		lines[2].name = "outflow (served)"
		lines = append(lines, line{"errors", series(func(s shapeSecond) float64 { return float64(s.Errors) }), color.RGBA{R: 214, G: 39, B: 40, A: 255}})
	} else {
		lines = append(lines, line{"backlog", series(func(s shapeSecond) float64 { return float64(s.Backlog) }), color.RGBA{R: 255, G: 127, B: 14, A: 255}})
	}
	for _, l := range lines {
		pl, err := plotter.NewLine(l.xy)
		if err != nil {
			return err
		}
		pl.Color = l.c
		pl.Width = vg.Points(1.5)
		if l.name == "offered" {
			pl.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		flow.Add(pl)
		flow.Legend.Add(l.name, pl)
	}

	lat := plot.New()
	lat.X.Label.Text = "seconds"
	lat.Y.Label.Text = "end-to-end latency (ms)"
	lat.Legend.Top = true
	lat.Add(plotter.NewGrid())
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, l := range []line{
		{"p50", series(func(s shapeSecond) float64 { return ms(s.P50) }), color.RGBA{R: 148, G: 103, B: 189, A: 255}},
		{"p99", series(func(s shapeSecond) float64 { return ms(s.P99) }), color.RGBA{R: 140, G: 86, B: 75, A: 255}},
	} {
		pl, err := plotter.NewLine(l.xy)
		if err != nil {
			return err
		}
		pl.Color = l.c
		pl.Width = vg.Points(1.5)
		lat.Add(pl)
		lat.Legend.Add(l.name, pl)
	}
	// One time axis for both panels.
	flow.X.Min, flow.X.Max = 0, float64(max(len(secs), 1))
	lat.X.Min, lat.X.Max = flow.X.Min, flow.X.Max
	flow.Y.Min, lat.Y.Min = 0, 0

	w, h := 24*vg.Centimeter, 16*vg.Centimeter
	var canvas interface {
		vg.CanvasSizer
	}
	var write func(f *os.File) error
	if strings.HasSuffix(path, ".png") {
		c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(110), vgimg.UseBackgroundColor(color.White))
		canvas = c
		write = func(f *os.File) error { _, err := vgimg.PngCanvas{Canvas: c}.WriteTo(f); return err }
	} else {
		c := vgsvg.New(w, h)
		canvas = c
		write = func(f *os.File) error { _, err := c.WriteTo(f); return err }
	}
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter * 3, PadY: vg.Millimeter * 3,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 3}
	plots := [][]*plot.Plot{{flow}, {lat}}
	canvases := plot.Align(plots, tiles, dc)
	flow.Draw(canvases[0][0])
	lat.Draw(canvases[1][0])

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

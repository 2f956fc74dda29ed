package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/ferrydeploy/ferry/events"
)

//go:embed report.html.tmpl
var pageSource string

//go:embed report.css
var pageCSS string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"dur":       roundDur,
	"clock":     func(t time.Time) string { return t.UTC().Format("15:04:05.000") },
	"date":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"firstLine": firstLine,
	"orDash":    orDash,
	"since": func(start, t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return "+" + roundDur(t.Sub(start))
	},
	"add":      func(a, b float64) float64 { return a + b },
	"subtract": func(a, b float64) float64 { return a - b },
	"css":      func() template.CSS { return template.CSS(pageCSS) },
}).Parse(pageSource))

// Write renders the run to w as one HTML page.
func Write(w io.Writer, r *Run) error {
	return page.Execute(w, view{Run: r, Chart: chart(r)})
}

// view is what the template sees.
type view struct {
	*Run
	Chart Chart
}

// Chart is the Gantt chart, laid out in SVG user units.
type Chart struct {
	Width, Height float64
	PlotX, PlotW  float64
	Top           float64
	Ticks         []Tick
	Bands         []Band
	Rows          []Row
}

// Tick is one time mark on the axis.
type Tick struct {
	X     float64
	Label string
}

// Band is a stretch of time over all rows: a batch, a wait, a gate.
type Band struct {
	X, W  float64
	Class string
	Label string
	Title string
}

// Row is one host (or the controller).
type Row struct {
	Host      *Host
	Y         float64
	Bars      []Bar
	HostBar   *Bar // the host's whole time in its batch
	LabelY    float64
	Failed    bool
	StatusTxt string
}

// Bar is one task on a row.
type Bar struct {
	X, W, Y, H float64
	Class      string
	Title      string
	Link       string // the fragment of the output it links to ("" none)
}

const (
	labelW = 170.0
	plotW  = 880.0
	rowH   = 22.0
	barH   = 14.0
	axisH  = 42.0
)

func chart(r *Run) Chart {
	c := Chart{PlotX: labelW, PlotW: plotW, Top: axisH}
	span := r.End.Sub(r.Start)
	if span <= 0 {
		span = time.Millisecond
	}
	x := func(t time.Time) float64 {
		if t.IsZero() {
			return labelW
		}
		return labelW + plotW*float64(t.Sub(r.Start))/float64(span)
	}
	width := func(a, b time.Time) float64 {
		return max(x(b)-x(a), 1.5)
	}
	var rows []*Host
	if r.Controller != nil {
		rows = append(rows, r.Controller)
	}
	rows = append(rows, r.Hosts...)
	c.Height = axisH + float64(len(rows))*rowH + 8
	c.Width = labelW + plotW + 20
	step := tickStep(span)
	for d := time.Duration(0); d <= span; d += step {
		c.Ticks = append(c.Ticks, Tick{X: x(r.Start.Add(d)), Label: roundDur(d)})
	}
	for i, b := range r.Batches {
		cls := "batch"
		if i%2 == 1 {
			cls += " odd"
		}
		if b.Halted {
			cls += " halted"
		}
		title := fmt.Sprintf("batch %d/%d of %s: %s, %s", b.Num, b.Of, b.Play, strings.Join(b.Hosts, " "), roundDur(b.End.Sub(b.Start)))
		if b.Failed > 0 {
			title += fmt.Sprintf(", %d failed", b.Failed)
		}
		if b.Halted {
			title += ", rollout halted"
		}
		c.Bands = append(c.Bands, Band{X: x(b.Start), W: width(b.Start, b.End), Class: cls, Label: fmt.Sprintf("batch %d", b.Num), Title: title})
	}
	if s := r.Stage; s != nil {
		c.Bands = append(c.Bands, Band{X: x(s.Start), W: width(s.Start, s.End), Class: "stage " + s.Status, Label: "stage",
			Title: fmt.Sprintf("stage on every host before batch 1: %s, %s", s.Status, roundDur(s.End.Sub(s.Start)))})
	}
	for _, w := range r.Waits {
		c.Bands = append(c.Bands, Band{X: x(w.Start), W: width(w.Start, w.End), Class: "wait", Label: "approval",
			Title: fmt.Sprintf("%s: %s, %s", w.Label, orDash(w.Status), roundDur(w.End.Sub(w.Start)))})
	}
	for _, g := range r.Gates {
		c.Bands = append(c.Bands, Band{X: x(g.Start), W: width(g.Start, g.End), Class: "gate " + g.Status, Label: "gate " + g.Status,
			Title: fmt.Sprintf("%s: %s, %s. %s", g.Label, orDash(g.Status), roundDur(g.End.Sub(g.Start)), g.Msg)})
	}
	for i, h := range rows {
		y := axisH + float64(i)*rowH
		row := Row{Host: h, Y: y, LabelY: y + rowH/2 + 4, Failed: h.Failed(), StatusTxt: h.Status}
		if !h.Start.IsZero() {
			cls := "hostbar st-" + h.Status
			row.HostBar = &Bar{X: x(h.Start), W: width(h.Start, h.End), Y: y + 2, H: rowH - 4, Class: cls,
				Title: fmt.Sprintf("%s: %s, %s", h.Name, h.Status, roundDur(h.End.Sub(h.Start)))}
			if row.Failed {
				row.HostBar.Link = "#" + h.ID()
			}
		}
		var failedBars []Bar
		for _, t := range h.Tasks {
			cls := "bar st-" + t.Status
			if t.Rollback {
				cls += " rollback"
			}
			if t.Stage {
				cls += " stage"
			}
			name := t.Name
			if t.Rollback {
				name = "rollback: " + name
			}
			if t.Stage {
				name = "stage: " + name
			}
			title := fmt.Sprintf("%s (%s): %s, %s", name, t.Module, t.Status, roundDur(t.End.Sub(t.Start)))
			if t.Msg != "" {
				title += "\n" + firstLine(t.Msg)
			}
			b := Bar{X: x(t.Start), W: width(t.Start, t.End), Y: y + (rowH-barH)/2, H: barH, Class: cls, Title: title}
			if t.Status == string(events.StatusFailed) {
				b.Link = "#" + h.ID()
				b.W = max(b.W, 4) // a failure must be seen however short
			}
			if b.Link != "" {
				failedBars = append(failedBars, b)
			} else {
				row.Bars = append(row.Bars, b)
			}
		}
		// Failed bars are drawn last, on top of the rollback that follows.
		row.Bars = append(row.Bars, failedBars...)
		c.Rows = append(c.Rows, row)
	}
	return c
}

// tickStep picks a round interval giving at most about ten ticks.
func tickStep(span time.Duration) time.Duration {
	for _, s := range []time.Duration{
		10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 6 * time.Hour,
	} {
		if span/s <= 10 {
			return s
		}
	}
	return span / 10
}

func roundDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

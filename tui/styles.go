package tui

import (
	"io"
	"os"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/ferrydeploy/ferry/events"
)

// styles are built on a renderer bound to the TUI's output, never on
// lipgloss's global one, so NO_COLOR and tests get a plain ASCII profile and
// nothing queries the terminal behind bubbletea's back.
type styles struct {
	title, dim, bold, ok, changed, failed, skipped, run paint
	rolled, warn, sel, banner, aborting                 paint
}

// paint is a lipgloss style reduced to the escape sequences around one line
// of text. lipgloss's Render costs microseconds (it handles borders,
// padding, wrapping); a frame paints hundreds of cells, and a 300-host
// screen must redraw without lag.
type paint struct{ pre, post string }

// Render wraps one line of text in the style.
func (p paint) Render(s string) string {
	if p.pre == "" || s == "" {
		return s
	}
	return p.pre + s + p.post
}

const sentinel = "\uE000" // private use: never in real text

func paintOf(st lipgloss.Style) paint {
	out := st.Render(sentinel)
	i := strings.Index(out, sentinel)
	if i < 0 {
		return paint{}
	}
	return paint{pre: out[:i], post: out[i+len(sentinel):]}
}

func newStyles(out io.Writer, noColor bool) styles {
	r := lipgloss.NewRenderer(out)
	if noColor {
		r.SetColorProfile(termenv.Ascii)
	}
	return stylesFor(r)
}

func stylesFor(r *lipgloss.Renderer) styles {
	c := func(s string) lipgloss.Color { return lipgloss.Color(s) }
	n := r.NewStyle
	return styles{
		title:    paintOf(n().Bold(true).Foreground(c("12"))),
		dim:      paintOf(n().Foreground(c("8"))),
		bold:     paintOf(n().Bold(true)),
		ok:       paintOf(n().Foreground(c("2"))),
		changed:  paintOf(n().Foreground(c("3"))),
		failed:   paintOf(n().Foreground(c("9")).Bold(true)),
		skipped:  paintOf(n().Foreground(c("8"))),
		run:      paintOf(n().Foreground(c("14"))),
		rolled:   paintOf(n().Foreground(c("13"))),
		warn:     paintOf(n().Foreground(c("11"))),
		sel:      paintOf(n().Reverse(true)),
		banner:   paintOf(n().Reverse(true).Bold(true).Foreground(c("11"))),
		aborting: paintOf(n().Bold(true).Foreground(c("9"))),
	}
}

func (st styles) forStatus(s events.Status) paint {
	switch s {
	case events.StatusOK:
		return st.ok
	case events.StatusChanged:
		return st.changed
	case events.StatusFailed, events.StatusUnreachable:
		return st.failed
	case events.StatusSkipped, events.StatusPending, "":
		return st.skipped
	case events.StatusRunning:
		return st.run
	case events.StatusRolledBack, events.StatusInterrupted:
		return st.rolled
	}
	return st.dim
}

// symbols are the marks drawn per task; ASCII for terminals without UTF-8.
type symbols struct {
	pending, ok, changed, failed, skipped, rolled, interrupted string
	spinner                                                    []string
	sel, sep, rule, ellipsis, pause, warn                      string
}

var unicodeSymbols = symbols{
	pending: "·", ok: "✓", changed: "●", failed: "✗", skipped: "↷", rolled: "↺", interrupted: "⊘",
	spinner: []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"},
	sel:     "›", sep: " · ", rule: "─", ellipsis: "…", pause: "‖", warn: "▲",
}

var asciiSymbols = symbols{
	pending: ".", ok: "+", changed: "~", failed: "X", skipped: "-", rolled: "<", interrupted: "!",
	spinner: []string{"|", "/", "-", "\\"},
	sel:     ">", sep: " | ", rule: "-", ellipsis: "~", pause: "||", warn: "!",
}

func (y symbols) mark(s events.Status, tick int) string {
	switch s {
	case events.StatusOK:
		return y.ok
	case events.StatusChanged:
		return y.changed
	case events.StatusFailed, events.StatusUnreachable:
		return y.failed
	case events.StatusSkipped:
		return y.skipped
	case events.StatusRolledBack:
		return y.rolled
	case events.StatusInterrupted:
		return y.interrupted
	case events.StatusRunning:
		return y.spinner[tick%len(y.spinner)]
	}
	return y.pending
}

// asciiFromEnv reports whether the locale says the terminal cannot draw UTF-8.
func asciiFromEnv(getenv func(string) string) bool {
	for _, k := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if v := getenv(k); v != "" {
			v = strings.ToLower(v)
			return !strings.Contains(v, "utf-8") && !strings.Contains(v, "utf8")
		}
	}
	return false
}

func noColorFromEnv() bool { return os.Getenv("NO_COLOR") != "" }

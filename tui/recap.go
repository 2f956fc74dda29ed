package tui

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/ferrydeploy/ferry/events"
)

// recapTable formats RunEnd.Recap, on screen and in the scrollback.
type recapTable struct {
	rows  []events.HostRecap
	nameW int
}

func newRecapTable(rc []events.HostRecap) recapTable {
	// problems first, so one failure among 300 hosts is on the first page;
	// inventory order otherwise
	rows := slices.Clone(rc)
	for i := range rows {
		rows[i].Host = oneLine(rows[i].Host)
	}
	slices.SortStableFunc(rows, func(a, b events.HostRecap) int { return recapRank(a) - recapRank(b) })
	t := recapTable{rows: rows, nameW: 4}
	for _, r := range rc {
		t.nameW = max(t.nameW, displayWidth(r.Host))
	}
	t.nameW = min(t.nameW, 40)
	return t
}

func recapRank(r events.HostRecap) int {
	switch {
	case r.Drained || r.LeftOut():
		return 0
	case r.Failed > 0 || r.Unreachable > 0:
		return 1
	case r.RolledBack:
		return 2
	case r.Untouched:
		return 4
	}
	return 3
}

const recapNums = "    OK CHANGED FAILED SKIPPED UNREACH"

func (t recapTable) header() string {
	return padRight("HOST", t.nameW) + recapNums + "  NOTES"
}

func num(st styles, n, w int, style func(styles) stylerFunc) string {
	s := strconv.Itoa(n)
	s = strings.Repeat(" ", max(w-len(s), 0)) + s
	if n > 0 && style != nil {
		return style(st)(s)
	}
	return s
}

type stylerFunc func(string) string

func hostOutcome(r events.HostRecap) events.Status {
	switch {
	case r.RolledBack:
		return events.StatusRolledBack
	case r.Unreachable > 0:
		return events.StatusUnreachable
	case r.Failed > 0:
		return events.StatusFailed
	case r.Untouched:
		return events.StatusPending
	case r.Changed > 0:
		return events.StatusChanged
	}
	return events.StatusOK
}

func (t recapTable) line(i int, st styles) string {
	r := t.rows[i]
	name := st.forStatus(hostOutcome(r)).Render(padRight(truncate(r.Host, t.nameW, "…"), t.nameW))
	var b strings.Builder
	b.WriteString(name)
	b.WriteString(num(st, r.OK, 6, nil))
	b.WriteString(num(st, r.Changed, 8, func(s styles) stylerFunc { return s.changed.Render }))
	b.WriteString(num(st, r.Failed, 7, func(s styles) stylerFunc { return s.failed.Render }))
	b.WriteString(num(st, r.Skipped, 8, nil))
	b.WriteString(num(st, r.Unreachable, 8, func(s styles) stylerFunc { return s.failed.Render }))
	var notes []string
	if r.RolledBack {
		notes = append(notes, st.rolled.Render("rolled back"))
	}
	switch {
	case r.LeftOut():
		notes = append(notes, st.failed.Render("LEFT "+strings.ToUpper(r.Left)))
	case r.Drained:
		notes = append(notes, st.failed.Render("STILL DRAINED (out of its LB)"))
	case r.Left != "":
		notes = append(notes, st.dim.Render(r.Left))
	}
	if r.Untouched {
		notes = append(notes, st.dim.Render("untouched"))
	}
	if len(notes) > 0 {
		b.WriteString("  ")
		b.WriteString(strings.Join(notes, ", "))
	}
	return b.String()
}

// summary is the one-line verdict shown above the recap table.
func recapSummary(e *events.Event, st styles) string {
	var ok, failed, unreach, rolled, untouched int
	for _, r := range e.Recap {
		switch hostOutcome(r) {
		case events.StatusOK:
			ok++
		case events.StatusChanged:
			ok++
		case events.StatusFailed:
			failed++
		case events.StatusUnreachable:
			unreach++
		case events.StatusRolledBack:
			rolled++
		case events.StatusPending:
			untouched++
		}
	}
	status := e.Status
	if status == "" {
		status = "finished"
	}
	verdict := st.forStatus(runStatusStyle(status)).Render("run " + strings.ToUpper(string(status)))
	hosts := fmt.Sprintf("%d hosts: %d ok", len(e.Recap), ok)
	for _, c := range []struct {
		n    int
		what string
	}{{failed, "failed"}, {unreach, "unreachable"}, {rolled, "rolled back"}, {untouched, "untouched"}} {
		if c.n > 0 {
			hosts += fmt.Sprintf(", %d %s", c.n, c.what)
		}
	}
	parts := []string{fmt.Sprintf("%s (exit %d)", verdict, e.ExitCode), hosts}
	return strings.Join(parts, " · ")
}

func runStatusStyle(s events.Status) events.Status {
	if s == events.StatusInterrupted {
		return events.StatusFailed
	}
	return s
}

// WriteRecap writes the final recap of a run (a RunEnd event) as plain
// lines, as the TUI leaves it in the terminal's scrollback. Colors are used
// unless noColor or NO_COLOR is set.
func WriteRecap(w io.Writer, end events.Event, noColor bool) error {
	st := newStyles(w, noColor || noColorFromEnv())
	return writeRecap(w, "", &end, st, nil, 0)
}

func writeRecap(w io.Writer, title string, end *events.Event, st styles, warnings []string, warnTotal int) error {
	var b strings.Builder
	if title != "" {
		b.WriteString(title + "\n")
	}
	b.WriteString(st.bold.Render("RECAP") + "  " + recapSummary(end, st) + "\n")
	if len(end.Recap) > 0 {
		t := newRecapTable(end.Recap)
		b.WriteString(st.dim.Render(t.header()) + "\n")
		for i := range t.rows {
			b.WriteString(t.line(i, st) + "\n")
		}
	}
	if warnTotal > 0 {
		fmt.Fprintf(&b, "%s (%d)\n", st.warn.Render("warnings"), warnTotal)
		if warnTotal > len(warnings) {
			fmt.Fprintf(&b, "  (%d earlier warnings are in the run record)\n", warnTotal-len(warnings))
		}
		for _, x := range warnings {
			b.WriteString("  " + x + "\n")
		}
	}
	if end.Record != "" {
		b.WriteString("record: " + end.Record + "\n")
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("print recap: %w", err)
	}
	return nil
}

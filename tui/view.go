package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/ferrydeploy/ferry/events"
)

// layout is how the screen's height is shared out for the current state.
type layout struct {
	banner  bool
	rows    int // host (or recap) rows
	out     int // output tail lines
	warn    int // warning lines
	logRows int // lines in the full-log view
}

func (s *state) bannerText() (string, bool) {
	switch {
	case s.pausePending:
		msg := s.pauseMsg
		if msg == "" {
			msg = "waiting for approval"
		}
		return s.sym.pause + " PAUSED  Enter: continue  a: abort" + s.sym.sep + msg, true
	case s.aborting >= 2 && !s.finished:
		return "stopping now: running tasks are being cut short", true
	case s.aborting == 1 && !s.finished:
		return "aborting… (Ctrl-C again: stop at once) no new task starts; running hosts finish or roll back", true
	case s.halted && !s.finished:
		msg := s.haltMsg
		if msg == "" {
			msg = "too many failures"
		}
		return "rollout halted: " + msg + " (no further batch starts)", true
	case s.gateBatch > 0 && !s.finished:
		left := s.gateUntil.Sub(s.now())
		msg := fmt.Sprintf("GATE after batch %d: baking, %s left", s.gateBatch, max(left, 0).Round(time.Second))
		for _, c := range s.gateChecks {
			msg += s.sym.sep + c + " " + s.gateValues[c]
		}
		return msg, true
	case s.pauseRequested && !s.finished:
		return fmt.Sprintf("%s will pause after batch %d for approval", s.sym.pause, max(s.batch, 1)), true
	}
	return "", false
}

func (s *state) layout() layout {
	var l layout
	_, l.banner = s.bannerText()
	h := s.height
	fixed := 4 // header ×2, progress, footer
	if l.banner {
		fixed++
	}
	if s.mode == modeLog {
		l.logRows = max(h-fixed-1, 1)
		return l
	}
	if len(s.warnings) > 0 {
		l.warn = min(len(s.warnings), 3)
		if h < 30 {
			l.warn = 1
		}
		fixed += 1 + l.warn
	}
	fixed++ // table header
	if s.mode == modeRecap {
		fixed++ // summary line
		l.rows = max(h-fixed, 1)
		return l
	}
	fixed++ // output title
	avail := max(h-fixed, 2)
	l.out = max(avail*2/5, 1)
	l.rows = avail - l.out
	if n := len(s.rows); n < l.rows {
		l.out += l.rows - max(n, 1)
		l.rows = max(n, 1)
	}
	return l
}

// View implements tea.Model.
func (m Model) View() string { return m.s.view() }

func (s *state) view() string {
	w := max(s.width, 20)
	l := s.layout()
	lines := make([]string, 0, s.height)
	lines = append(lines, s.headerLines(w)...)
	lines = append(lines, s.progressLine(w))
	if text, ok := s.bannerText(); ok {
		st := s.st.banner
		if s.aborting > 0 || s.halted {
			st = s.st.aborting
		}
		lines = append(lines, st.Render(padRight(truncate(text, w, s.sym.ellipsis), w)))
	}
	switch {
	case s.help:
		lines = append(lines, s.helpLines(w, s.height-len(lines)-1)...)
	case s.mode == modeLog:
		lines = append(lines, s.logLines(w, l)...)
	case s.mode == modeRecap && s.end != nil:
		lines = append(lines, s.recapLines(w, l)...)
		lines = append(lines, s.warnLines(w, l)...)
	default:
		lines = append(lines, s.tableLines(w, l)...)
		lines = append(lines, s.outputLines(w, l)...)
		lines = append(lines, s.warnLines(w, l)...)
	}
	// keep the footer on the last line whatever the body produced
	for len(lines) < s.height-1 {
		lines = append(lines, "")
	}
	if len(lines) > s.height-1 {
		lines = lines[:max(s.height-1, 0)]
	}
	lines = append(lines, s.footer(w))
	return strings.Join(lines, "\n")
}

func (s *state) elapsed() time.Duration {
	if s.runStart.IsZero() {
		return 0
	}
	end := s.now()
	if !s.runEndAt.IsZero() {
		end = s.runEndAt
	}
	return max(end.Sub(s.runStart), 0)
}

func (s *state) headerLines(w int) []string {
	left := []string{s.st.title.Render("ferry")}
	if s.playbook != "" {
		left = append(left, s.st.bold.Render(s.playbook))
	}
	if s.env != "" {
		left = append(left, "env "+s.st.bold.Render(s.env))
	}
	if s.version != "" {
		left = append(left, "version "+s.st.bold.Render(s.version))
	}
	right := "elapsed " + fmtClock(s.elapsed())
	l1 := joinFit(left, s.sym.sep, w-displayWidth(right)-1)
	l1 = spread(l1, right, w)

	var second []string
	if s.inventory != "" {
		second = append(second, "inventory "+s.inventory)
	}
	second = append(second, fmt.Sprintf("%d hosts", max(s.total(), s.allHosts)))
	if s.play != "" {
		second = append(second, "play "+s.play)
	}
	if s.runID != "" {
		second = append(second, "run "+s.runID)
	}
	return []string{l1, s.st.dim.Render(joinFit(second, s.sym.sep, w))}
}

func (s *state) progressLine(w int) string {
	total := s.total()
	bad := s.counts[catBad]
	done := s.counts[catGood] + bad
	failed := func(n int) string {
		if n == 0 {
			return ""
		}
		return ", " + s.st.failed.Render(fmt.Sprintf("%d failed", n))
	}
	svc := fmt.Sprintf("in service %d/%d", s.inService(), total)
	if total > 0 && s.inService()*2 < total {
		svc = s.st.warn.Render(svc)
	}
	var head string
	switch {
	case s.batches == 0:
		head = "preparing"
	case s.batch == 0 && s.batches == 1:
		head = "1 batch"
	case s.batch == 0:
		head = fmt.Sprintf("%d batches", s.batches)
	default:
		head = fmt.Sprintf("batch %d/%d", s.batch, s.batches)
	}
	head = s.st.bold.Render(head)
	// From the most to the least detailed; the first that fits wins. What is
	// in service and where the rollout is never drop out.
	var cands []string
	for _, chips := range []bool{true, false} {
		h := head
		if chips {
			if c := s.batchChips(w / 4); c != "" {
				h += " " + c
			}
		}
		if s.batch > 0 {
			cands = append(cands, h+fmt.Sprintf(" (%d/%d done%s)", s.batchDone, s.batchSize, failed(s.batchFailed))+
				s.sym.sep+fmt.Sprintf("hosts %d/%d done%s", done, total, failed(bad))+s.sym.sep+svc)
		}
		cands = append(cands, h+s.sym.sep+fmt.Sprintf("hosts %d/%d done%s", done, total, failed(bad))+s.sym.sep+svc)
	}
	cands = append(cands, head+s.sym.sep+fmt.Sprintf("%d/%d%s", done, total, failed(bad))+s.sym.sep+svc)
	for _, c := range cands {
		if displayWidth(c) <= w {
			return c
		}
	}
	return truncate(cands[len(cands)-1], w, s.sym.ellipsis)
}

// batchChips draws one mark per batch, windowed around the current one.
func (s *state) batchChips(w int) string {
	n := len(s.batchList)
	if n == 0 || w < 3 {
		return ""
	}
	from, to := 0, n
	if n > w {
		from = clamp(s.batch-1-w/2, 0, n-w)
		to = from + w
	}
	var b strings.Builder
	if from > 0 {
		b.WriteString(s.sym.ellipsis)
	}
	for i := from; i < to; i++ {
		st := s.batchList[i].status
		b.WriteString(s.st.forStatus(st).Render(s.sym.mark(st, s.tick)))
	}
	if to < n {
		b.WriteString(s.sym.ellipsis)
	}
	return b.String()
}

// columns of the host table for width w.
type cols struct {
	name, batch, status, task, marks, time int
}

func (s *state) columns(w int) cols {
	c := cols{status: 11, time: 6}
	c.batch = max(len(strconv.Itoa(max(s.batches, len(s.batchList)))), 1)
	nameW := max(8, s.maxName)
	maxMarks := max(5, s.maxMarks)
	c.name = min(nameW, 28)
	c.marks = min(maxMarks, max(w/4, 5))
	// sel(2) + 5 separators
	c.task = w - 2 - c.name - c.batch - c.status - c.marks - c.time - 5
	if c.task < 12 {
		c.name = max(c.name-(12-c.task), 8)
		c.task = w - 2 - c.name - c.batch - c.status - c.marks - c.time - 5
	}
	// a very wide task column pushes the marks out of sight: cap it
	c.task = min(max(c.task, 4), 64)
	return c
}

func (s *state) tableLines(w int, l layout) []string {
	c := s.columns(w)
	n := len(s.rows)
	s.sel = clamp(s.sel, 0, n-1)
	if s.sel < s.top {
		s.top = s.sel
	}
	if s.sel >= s.top+l.rows {
		s.top = s.sel - l.rows + 1
	}
	s.top = clamp(s.top, 0, max(n-l.rows, 0))

	out := make([]string, 0, l.rows+1)
	taskHead := "TASK"
	if n > l.rows {
		// where the window is, inside the (wide) task column
		taskHead = spread(taskHead, fmt.Sprintf("%d-%d of %d", s.top+1, min(s.top+l.rows, n), n), c.task)
	}
	head := "  " + padRight("HOST", c.name) + " " + padRight("B", c.batch) + " " + padRight("STATUS", c.status) + " " +
		padRight(taskHead, c.task) + " " + padRight("TASKS", c.marks) + " " + padLeft("TIME", c.time)
	out = append(out, s.st.dim.Render(truncate(head, w, "")))
	for i := s.top; i < n && i < s.top+l.rows; i++ {
		out = append(out, s.hostLine(s.rows[i], i == s.sel, c, w))
	}
	for len(out) < l.rows+1 {
		out = append(out, "")
	}
	return out
}

func (s *state) statusWord(h *hostRow) (string, events.Status) {
	switch h.status {
	case "":
		switch {
		case h.taskRun:
			return "running", events.StatusRunning
		case h.batch > 0 && h.batch == s.batch:
			return "queued", ""
		case h.pre == events.StatusOK:
			return "ready", ""
		case h.pseudo && len(h.tasks)+len(h.rb) > 0:
			return "idle", ""
		}
		return "waiting", ""
	case events.StatusRunning:
		if h.inRB {
			return "rollback", events.StatusRolledBack
		}
		return "running", events.StatusRunning
	case events.StatusFailed:
		return "FAILED", events.StatusFailed
	case events.StatusUnreachable:
		return "UNREACHABLE", events.StatusFailed
	case events.StatusRolledBack:
		return "rolled back", events.StatusRolledBack
	}
	return string(h.status), h.status
}

func (s *state) hostLine(h *hostRow, selected bool, c cols, w int) string {
	var b strings.Builder
	if selected {
		b.WriteString(s.st.bold.Render(s.sym.sel) + " ")
	} else {
		b.WriteString("  ")
	}
	name := padRight(truncate(h.name, c.name, s.sym.ellipsis), c.name)
	if selected {
		name = s.st.sel.Render(name)
	}
	b.WriteString(name)
	b.WriteByte(' ')
	bt := ""
	if h.batch > 0 {
		bt = strconv.Itoa(h.batch)
	}
	b.WriteString(s.st.dim.Render(padLeft(bt, c.batch)))
	b.WriteByte(' ')
	word, st := s.statusWord(h)
	b.WriteString(s.st.forStatus(st).Render(padRight(word, c.status)))
	b.WriteByte(' ')
	task := h.cur
	if h.inRB && task != "" {
		task = s.sym.rolled + " " + task
	}
	if badStatus(h.status) || h.status == events.StatusInterrupted {
		// what went wrong matters more than the last task that ran
		switch {
		case h.failMsg != "" && h.msg != "":
			task = h.failMsg + " (" + h.msg + ")"
		case h.failMsg != "":
			task = h.failMsg
		case h.msg != "":
			task = h.msg
		}
	}
	task = padRight(truncate(task, c.task, s.sym.ellipsis), c.task)
	if badStatus(h.status) {
		task = s.st.failed.Render(task)
	}
	b.WriteString(task)
	b.WriteByte(' ')
	b.WriteString(s.marks(h, c.marks))
	b.WriteByte(' ')
	d := ""
	switch {
	case h.cat == catRunning && !h.start.IsZero():
		d = fmtDur(s.now().Sub(h.start))
	case h.dur > 0:
		d = fmtDur(h.dur)
	}
	b.WriteString(s.st.dim.Render(padLeft(d, c.time)))
	return b.String()
}

// marks draws one mark per task (then ↺ and the rollback tasks), windowed
// around the current task when they do not fit.
func (s *state) marks(h *hostRow, w int) string {
	n := len(h.tasks)
	rbn := 0
	if len(h.rb) > 0 {
		rbn = 1 + len(h.rb)
	}
	from, to := 0, n
	if n+rbn > w {
		keep := max(w-rbn, 1)
		if keep < n {
			from = clamp(h.curIdx-keep/2, 0, n-keep)
			to = from + keep
		}
	}
	var b strings.Builder
	used := 0
	for i := from; i < to && used < w; i++ {
		st := h.tasks[i].status
		b.WriteString(s.st.forStatus(st).Render(s.sym.mark(st, s.tick)))
		used++
	}
	if rbn > 0 && used+2 <= w {
		b.WriteString(s.st.rolled.Render(s.sym.rolled))
		used++
		for i := 0; i < len(h.rb) && used < w; i++ {
			st := h.rb[i].status
			b.WriteString(s.st.forStatus(st).Render(s.sym.mark(st, s.tick)))
			used++
		}
	}
	if used < w {
		b.WriteString(strings.Repeat(" ", w-used))
	}
	return b.String()
}

func (s *state) rule(title string, w int) string {
	t := s.sym.rule + s.sym.rule + " " + truncate(title, max(w-6, 1), s.sym.ellipsis) + " "
	return s.st.dim.Render(t + strings.Repeat(s.sym.rule, max(w-displayWidth(t), 0)))
}

func (s *state) outputLines(w int, l layout) []string {
	out := make([]string, 0, l.out+1)
	var h *hostRow
	if s.sel < len(s.rows) {
		h = s.rows[s.sel]
	}
	if h == nil {
		out = append(out, s.rule("output", w))
	} else {
		title := h.name
		if h.cur != "" {
			title += s.sym.sep + h.cur
		}
		if h.log.dropped > 0 {
			title += fmt.Sprintf(" (last %d lines kept)", h.log.len())
		}
		title += s.sym.sep + "enter: full log"
		if s.follow {
			title += s.sym.sep + "following"
		}
		out = append(out, s.rule(title, w))
		n := h.log.len()
		for i := max(n-l.out, 0); i < n; i++ {
			out = append(out, truncate(h.log.at(i), w, s.sym.ellipsis))
		}
		if n == 0 {
			out = append(out, s.st.dim.Render("(no output yet)"))
		}
	}
	for len(out) < l.out+1 {
		out = append(out, "")
	}
	return out
}

func (s *state) warnLines(w int, l layout) []string {
	if l.warn == 0 {
		return nil
	}
	out := []string{s.rule(fmt.Sprintf("warnings (%d)", s.warnTotal), w)}
	for _, x := range s.warnings[len(s.warnings)-l.warn:] {
		out = append(out, s.st.warn.Render(truncate(s.sym.warn+" "+x, w, s.sym.ellipsis)))
	}
	return out
}

func (s *state) logLines(w int, l layout) []string {
	h := s.logHost
	n := h.log.len()
	maxOff := max(n-l.logRows, 0)
	if s.logFollow {
		s.logOff = maxOff
	}
	s.logOff = clamp(s.logOff, 0, maxOff)
	title := fmt.Sprintf("log %s%s%d lines", h.name, s.sym.sep, n)
	if h.log.dropped > 0 {
		title += fmt.Sprintf(" (%d earlier dropped)", h.log.dropped)
	}
	if n > l.logRows {
		title += fmt.Sprintf("%s%d-%d", s.sym.sep, s.logOff+1, min(s.logOff+l.logRows, n))
	}
	out := []string{s.rule(title, w)}
	for i := s.logOff; i < n && i < s.logOff+l.logRows; i++ {
		out = append(out, truncate(h.log.at(i), w, s.sym.ellipsis))
	}
	return out
}

func (s *state) recapLines(w int, l layout) []string {
	t := s.recap
	out := []string{truncate(s.st.bold.Render("RECAP")+"  "+s.recapSum, w, s.sym.ellipsis)}
	head := t.header()
	n := len(t.rows)
	maxOff := max(n-l.rows, 0)
	s.recapOff = clamp(s.recapOff, 0, maxOff)
	if n > l.rows {
		head = padRight(truncate(head, w-12, ""), w-12) + padLeft(fmt.Sprintf("%d-%d of %d", s.recapOff+1, min(s.recapOff+l.rows, n), n), 12)
	}
	out = append(out, s.st.dim.Render(truncate(head, w, "")))
	for i := s.recapOff; i < n && i < s.recapOff+l.rows; i++ {
		out = append(out, truncate(t.line(i, s.st), w, s.sym.ellipsis))
	}
	if n == 0 {
		out = append(out, s.st.dim.Render("(no hosts in the recap)"))
	}
	for len(out) < l.rows+2 {
		out = append(out, "")
	}
	return out
}

func (s *state) footer(w int) string {
	if s.flash != "" {
		return s.st.warn.Render(truncate(s.flash, w, s.sym.ellipsis))
	}
	var items []string
	switch {
	case s.help:
		items = []string{"any key: close help"}
	case s.pausePending:
		items = []string{hint("continue", keys.Approve), hint("abort", keys.Abort), hint("help", keys.Help)}
	case s.mode == modeLog:
		items = []string{hint("scroll", keys.Up, keys.Down, keys.PageUp, keys.PageDown), hint("", keys.Home, keys.End), hint("back", keys.Back)}
		if s.finished {
			items = append(items, hint("back", keys.CloseLog))
		}
	case s.finished:
		items = append(items, hint("quit", keys.Quit), hint("hosts/recap", keys.Tab))
		if s.end != nil && s.end.Record != "" {
			items = append(items, "record "+s.end.Record)
		}
	default:
		items = []string{hint("select", keys.Up, keys.Down), hint("log", keys.Open), hint("pause after batch", keys.Pause), hint("abort", keys.Abort), hint("help", keys.Help)}
	}
	if s.sym.sel == asciiSymbols.sel {
		for i := range items {
			items[i] = strings.ReplaceAll(items[i], "↑↓", "up/down")
		}
	}
	return s.st.dim.Render(joinFit(items, s.sym.sep, w))
}

func (s *state) helpLines(w, h int) []string {
	text := []string{s.st.bold.Render("keys")}
	for _, b := range keys.fullHelp() {
		text = append(text, helpLine(b))
	}
	text = append(text,
		"",
		s.st.bold.Render("marks"),
		fmt.Sprintf("  %s pending  %s running  %s ok  %s changed  %s failed  %s skipped  %s rollback  %s interrupted",
			s.sym.pending, s.sym.spinner[0], s.sym.ok, s.sym.changed, s.sym.failed, s.sym.skipped, s.sym.rolled, s.sym.interrupted),
		"",
		"  in service = hosts not being worked on and not failed",
	)
	out := make([]string, 0, max(h, 0))
	for _, t := range text {
		if len(out) >= h {
			break
		}
		out = append(out, truncate(t, w, s.sym.ellipsis))
	}
	return out
}

// ---- text helpers (ANSI-aware) ----

func displayWidth(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || c < 0x20 {
			return ansi.StringWidth(s)
		}
	}
	return len(s) // printable ASCII: one cell a byte
}

func truncate(s string, w int, tail string) string {
	if w <= 0 {
		return ""
	}
	if displayWidth(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, tail)
}

func padRight(s string, w int) string {
	if d := w - displayWidth(s); d > 0 {
		return s + strings.Repeat(" ", d)
	}
	return s
}

func padLeft(s string, w int) string {
	if d := w - displayWidth(s); d > 0 {
		return strings.Repeat(" ", d) + s
	}
	return s
}

// spread puts right at the right edge of a w-wide line after left.
func spread(left, right string, w int) string {
	gap := w - displayWidth(left) - displayWidth(right)
	if gap < 1 {
		return truncate(left+" "+right, w, "")
	}
	return left + strings.Repeat(" ", gap) + right
}

// joinFit joins parts with sep, dropping trailing parts that do not fit in w.
func joinFit(parts []string, sep string, w int) string {
	var b strings.Builder
	used := 0
	for i, p := range parts {
		pw := displayWidth(p)
		add := pw
		if i > 0 {
			add += displayWidth(sep)
		}
		if used+add > w {
			if i == 0 {
				return truncate(p, w, "")
			}
			break
		}
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(p)
		used += add
	}
	return b.String()
}

func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "0.0s"
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func fmtClock(d time.Duration) string {
	d = d.Truncate(time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

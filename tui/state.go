package tui

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/ferrydeploy/ferry/events"
)

// controllerName labels the pseudo-row for tasks that run on the controller
// (before/after lists), which the runner emits with an empty Host.
const controllerName = "(controller)"

// Host categories, kept as counters so the progress line is O(1) per event.
const (
	catIdle    = iota // not started in this play
	catRunning        // started, not ended
	catGood           // ended without failure (ok, changed, interrupted)
	catBad            // failed, unreachable or rolled back
	numCats
)

// taskMark is one task of a host's list and its latest status.
type taskMark struct {
	name   string
	status events.Status
}

// hostRow is everything the TUI knows about one host. Rows are reused across
// plays (the log survives), per-play fields are reset on PlayStart.
type hostRow struct {
	name    string
	pseudo  bool // the controller row: not counted as a host
	listed  bool // in the current table
	batch   int
	status  events.Status // host status in this play ("" = waiting)
	pre     events.Status // preflight result
	cat     int
	tasks   []taskMark
	rb      []taskMark // rollback tasks that ran
	cur     string     // current (or last) task name
	curIdx  int        // index in tasks, or -1
	inRB    bool       // the current task belongs to the rollback list
	taskRun bool       // a task is running right now
	start   time.Time
	dur     time.Duration // set when the host ended
	msg     string        // the host's last message (HostEnd, preflight)
	failMsg string        // the first failing task and why, kept through rollback
	log     ring
}

func (h *hostRow) active() bool { return h.cat == catRunning || h.taskRun }

func (h *hostRow) resetPlay() {
	h.batch, h.status, h.pre, h.cat = 0, "", "", catIdle
	h.tasks, h.rb = h.tasks[:0], h.rb[:0]
	h.cur, h.curIdx, h.inRB, h.taskRun = "", -1, false, false
	h.start, h.dur, h.msg, h.failMsg = time.Time{}, 0, "", ""
}

// ring keeps the last cap lines of a host's log.
type ring struct {
	buf     []string
	start   int
	dropped int
}

func (r *ring) add(max int, s string) {
	if len(r.buf) < max {
		r.buf = append(r.buf, s)
		return
	}
	r.buf[r.start] = s
	r.start = (r.start + 1) % len(r.buf)
	r.dropped++
}

func (r *ring) len() int { return len(r.buf) }

func (r *ring) at(i int) string { return r.buf[(r.start+i)%len(r.buf)] }

// batchInfo is one batch of the current play.
type batchInfo struct {
	status events.Status // pending, running, ok, failed
}

// state is the TUI's model of the run. It is shared by pointer so that the
// tea.Model value can be copied cheaply while updates stay O(1).
type state struct {
	opts Options
	ctl  Controls
	st   styles
	sym  symbols

	// run header
	runID, playbook, env, version, inventory, play string
	allHosts                                       int
	runStart, runEndAt                             time.Time

	rows   []*hostRow
	byName map[string]*hostRow
	counts [numCats]int

	// widest name and longest mark list in the table, kept for the column widths
	maxName, maxMarks int

	batch, batches       int
	batchList            []batchInfo
	batchSize, batchDone int
	batchFailed          int
	halted               bool
	haltMsg              string
	warnings             []string
	warnTotal            int
	pausePending         bool
	pauseMsg             string
	// a verify gate baking: until when, and each check's latest value
	gateBatch              int
	gateUntil              time.Time
	gateChecks             []string
	gateValues             map[string]string
	pauseRequested         bool
	aborting               int // number of abort requests sent
	refused                bool
	finished, streamClosed bool
	unattended             bool // Options.Unattended was closed
	end                    *events.Event
	recap                  recapTable // sorted once at RunEnd
	recapSum               string

	// view state
	width, height int
	sel, top      int
	follow        bool
	mode          viewMode
	help          bool
	logHost       *hostRow
	logOff        int
	logFollow     bool
	recapOff      int
	flash         string
	flashTick     int
	tick          int

	src <-chan events.Event // set by Run
	ctx interface{ Done() <-chan struct{} }
}

type viewMode int

const (
	modeHosts viewMode = iota
	modeLog
	modeRecap
)

func (s *state) now() time.Time { return s.opts.Now() }

func evTime(e events.Event, now time.Time) time.Time {
	if e.Time.IsZero() {
		return now
	}
	return e.Time
}

func (s *state) row(name string) *hostRow {
	pseudo := false
	if name == "" {
		name, pseudo = controllerName, true
	}
	if h, ok := s.byName[name]; ok {
		if !h.listed {
			s.maxName = max(s.maxName, displayWidth(h.name))
			s.rows = append(s.rows, h)
			h.resetPlay()
			h.listed = true
			if !h.pseudo {
				s.counts[catIdle]++
			}
		}
		return h
	}
	h := &hostRow{name: name, pseudo: pseudo, curIdx: -1}
	s.maxName = max(s.maxName, displayWidth(name))
	h.listed = true
	s.byName[name] = h
	s.rows = append(s.rows, h)
	if !pseudo {
		s.counts[catIdle]++
	}
	return h
}

func (s *state) setCat(h *hostRow, c int) {
	if h.pseudo || h.cat == c {
		h.cat = c
		return
	}
	s.counts[h.cat]--
	s.counts[c]++
	h.cat = c
}

// resetRows makes names the rows of the table (a new play, or the run's host list).
func (s *state) resetRows(names []string) {
	for _, h := range s.rows {
		h.listed = false
	}
	s.rows = s.rows[:0]
	s.counts = [numCats]int{}
	s.maxName, s.maxMarks = 0, 0
	for _, n := range names {
		h := s.row(n)
		h.resetPlay()
	}
	s.sel, s.top = 0, 0
	if s.logHost != nil && !s.logHost.listed {
		s.mode, s.logHost = modeHosts, nil
	}
}

func (s *state) total() int {
	return s.counts[catIdle] + s.counts[catRunning] + s.counts[catGood] + s.counts[catBad]
}

// inService is the capacity still serving: hosts neither being worked on nor failed.
func (s *state) inService() int { return s.total() - s.counts[catRunning] - s.counts[catBad] }

func badStatus(st events.Status) bool {
	switch st {
	case events.StatusFailed, events.StatusUnreachable, events.StatusRolledBack:
		return true
	}
	return false
}

// apply folds one event into the state. Every branch is O(1) except the
// ones that happen once per play/batch/host end.
func (s *state) apply(e events.Event) {
	now := s.now()
	cleanEvent(&e)
	switch e.Kind {
	case events.RunStart:
		s.runID, s.playbook, s.env, s.version, s.inventory = e.RunID, e.Playbook, e.Env, e.Version, e.Inventory
		s.runStart = evTime(e, now)
		s.allHosts = len(e.Hosts)
		if len(e.Hosts) > 0 {
			s.resetRows(e.Hosts)
		}
	case events.PlayStart:
		s.play = e.Play
		s.batch, s.batches, s.batchSize, s.batchDone, s.batchFailed = 0, e.Batches, 0, 0, 0
		s.batchList = make([]batchInfo, max(e.Batches, 0))
		s.halted, s.haltMsg = false, ""
		if len(e.Hosts) > 0 {
			s.resetRows(e.Hosts)
		}
		if s.runStart.IsZero() {
			s.runStart = evTime(e, now)
		}
	case events.Preflight:
		h := s.row(e.Host)
		h.pre = e.Status
		if badStatus(e.Status) {
			h.status, h.msg = e.Status, oneLine(e.Msg)
			s.setCat(h, catBad)
			s.logLine(h, "preflight: "+string(e.Status)+" "+oneLine(e.Msg))
		}
	case events.BatchStart:
		s.batch = e.Batch
		if e.Batches > 0 {
			s.batches = e.Batches
		}
		for len(s.batchList) < s.batches || len(s.batchList) < e.Batch {
			s.batchList = append(s.batchList, batchInfo{})
		}
		if e.Batch >= 1 {
			s.batchList[e.Batch-1].status = events.StatusRunning
		}
		s.batchSize, s.batchDone, s.batchFailed = len(e.Hosts), 0, 0
		for _, n := range e.Hosts {
			s.row(n).batch = e.Batch
		}
	case events.HostStart:
		h := s.row(e.Host)
		h.tasks = h.tasks[:0]
		for _, t := range e.Tasks {
			h.tasks = append(h.tasks, taskMark{name: t, status: events.StatusPending})
		}
		h.rb = h.rb[:0]
		s.maxMarks = max(s.maxMarks, len(h.tasks))
		h.status, h.msg, h.failMsg, h.cur, h.curIdx, h.inRB = events.StatusRunning, "", "", "", -1, false
		h.start, h.dur = evTime(e, now), 0
		if h.batch == 0 {
			h.batch = s.batch
		}
		s.setCat(h, catRunning)
		s.followTo(h)
	case events.GateStart:
		s.gateBatch, s.gateUntil, s.gateChecks, s.gateValues = e.Batch, evTime(e, now).Add(e.Duration), nil, map[string]string{}
	case events.GateCheck:
		if s.gateValues != nil {
			if _, ok := s.gateValues[e.Task]; !ok {
				s.gateChecks = append(s.gateChecks, e.Task)
			}
			s.gateValues[e.Task] = string(e.Status) + ": " + oneLine(e.Msg)
		}
	case events.GateEnd:
		s.gateBatch, s.gateValues = 0, nil
		if e.Status != events.StatusOK {
			// The halt banner says the rollout stopped; the warning says which check and what it measured.
			s.apply(events.Event{Kind: events.Warning, Time: e.Time, Msg: "verify gate after batch " + strconv.Itoa(e.Batch) + " " + string(e.Status) + ": " + e.Msg})
		}
	case events.StageEnd:
		h := s.row(e.Host)
		line := "stage " + string(e.Status)
		if e.Msg != "" {
			line += ": " + oneLine(e.Msg)
		}
		s.logLine(h, line)
	case events.TaskStart:
		h := s.row(e.Host)
		h.cur, h.inRB, h.taskRun = e.Task, e.Rollback, true
		if e.Rollback {
			h.rb = append(h.rb, taskMark{name: e.Task, status: events.StatusRunning})
			s.maxMarks = max(s.maxMarks, len(h.tasks)+1+len(h.rb))
		} else {
			h.curIdx = h.taskIndex(e)
			h.tasks[h.curIdx].status = events.StatusRunning
			s.maxMarks = max(s.maxMarks, len(h.tasks))
		}
		if h.pseudo && h.start.IsZero() {
			h.start = evTime(e, now)
		}
		mod := ""
		if e.Module != "" {
			mod = " (" + e.Module + ")"
		}
		prefix := s.sym.rule + s.sym.rule + " "
		if e.Rollback {
			prefix += "rollback: "
		}
		s.logLine(h, prefix+e.Task+mod)
		s.followTo(h)
	case events.TaskOutput:
		h := s.row(e.Host)
		for _, l := range strings.Split(e.Line, "\n") {
			s.logLine(h, sanitize(l))
		}
	case events.TaskEnd:
		h := s.row(e.Host)
		h.taskRun = false
		if e.Rollback {
			if n := len(h.rb); n > 0 && h.rb[n-1].name == e.Task && h.rb[n-1].status == events.StatusRunning {
				h.rb[n-1].status = e.Status
			} else {
				h.rb = append(h.rb, taskMark{name: e.Task, status: e.Status})
			}
		} else {
			i := h.taskIndex(e)
			h.tasks[i].status = e.Status
			h.curIdx = i
		}
		h.cur = e.Task
		line := "   " + string(e.Status)
		if e.Duration > 0 {
			line += " in " + fmtDur(e.Duration)
		}
		if e.Msg != "" {
			line += ": " + oneLine(e.Msg)
		}
		if (e.Status == events.StatusFailed || e.Status == events.StatusUnreachable) && h.failMsg == "" {
			h.failMsg = e.Task
			if e.Msg != "" {
				h.failMsg += ": " + oneLine(e.Msg)
			}
		}
		s.logLine(h, line)
		if h.pseudo {
			h.dur = evTime(e, now).Sub(h.start)
			s.followAway(h, e.Status)
		}
	case events.HostEnd:
		h := s.row(e.Host)
		h.status, h.taskRun = e.Status, false
		if e.Msg != "" {
			h.msg = oneLine(e.Msg)
		}
		if e.Duration > 0 {
			h.dur = e.Duration
		} else if !h.start.IsZero() {
			h.dur = evTime(e, now).Sub(h.start)
		}
		if badStatus(e.Status) {
			s.setCat(h, catBad)
		} else {
			s.setCat(h, catGood)
		}
		if h.batch == s.batch && s.batch > 0 {
			s.batchDone++
			if badStatus(e.Status) {
				s.batchFailed++
			}
		}
		line := "== host " + string(e.Status)
		if e.Msg != "" {
			line += ": " + oneLine(e.Msg)
		}
		s.logLine(h, line)
		s.followAway(h, e.Status)
	case events.BatchEnd:
		if e.Batch >= 1 && e.Batch <= len(s.batchList) {
			st := events.StatusOK
			if e.Failed > 0 {
				st = events.StatusFailed
			}
			s.batchList[e.Batch-1].status = st
		}
		if e.Halted {
			s.halted, s.haltMsg = true, oneLine(e.Msg)
		}
	case events.PauseWait:
		s.pausePending, s.pauseMsg, s.pauseRequested = true, oneLine(e.Msg), false
	case events.PauseEnd:
		s.pausePending = false
		if e.Status == events.StatusFailed {
			s.refused = true
		}
	case events.Warning:
		w := oneLine(e.Msg)
		if e.Host != "" {
			w = e.Host + ": " + w
		}
		s.warnTotal++
		if len(s.warnings) >= maxWarnings {
			copy(s.warnings, s.warnings[1:])
			s.warnings = s.warnings[:len(s.warnings)-1]
		}
		s.warnings = append(s.warnings, w)
		if e.Host != "" {
			s.logLine(s.row(e.Host), "warning: "+oneLine(e.Msg))
		}
	case events.PlayEnd:
	case events.RunEnd:
		ev := e
		s.end = &ev
		s.recap, s.recapSum = newRecapTable(e.Recap), recapSummary(&ev, s.st)
		s.finished, s.pausePending, s.flash = true, false, ""
		s.runEndAt = evTime(e, now)
		s.recapOff = 0
		if s.mode != modeLog { // do not yank a log the operator is reading
			s.mode = modeRecap
		}
		for _, h := range s.rows {
			if h.taskRun {
				h.taskRun = false
			}
		}
	}
}

const maxWarnings = 200

// cleanEvent makes every name that is drawn on one line safe to draw: no
// newlines, no escape sequences (names come from inventories and playbooks).
func cleanEvent(e *events.Event) {
	for _, p := range []*string{&e.Host, &e.Task, &e.Module, &e.Play, &e.Playbook, &e.Env, &e.Version, &e.Inventory, &e.RunID, &e.Record} {
		if *p != "" {
			*p = oneLine(*p)
		}
	}
	e.Hosts, e.Tasks = cleanList(e.Hosts), cleanList(e.Tasks)
}

// cleanList copies l only when a name needs cleaning: the event's slices
// are shared with the other sinks and must not be written to.
func cleanList(l []string) []string {
	var out []string
	for i, v := range l {
		c := oneLine(v)
		if c != v && out == nil {
			out = slices.Clone(l)
		}
		if out != nil {
			out[i] = c
		}
	}
	if out == nil {
		return l
	}
	return out
}

// taskIndex finds the task a TaskStart/TaskEnd refers to, whether the runner
// counts from 0 or 1, and appends it when the host's list did not name it.
func (h *hostRow) taskIndex(e events.Event) int {
	i := e.TaskIndex
	if i >= 0 && i < len(h.tasks) && h.tasks[i].name == e.Task {
		return i
	}
	if i-1 >= 0 && i-1 < len(h.tasks) && h.tasks[i-1].name == e.Task {
		return i - 1
	}
	// a loop repeats the same task: prefer the current one
	if h.curIdx >= 0 && h.curIdx < len(h.tasks) && h.tasks[h.curIdx].name == e.Task {
		return h.curIdx
	}
	for j := range h.tasks {
		if h.tasks[j].name == e.Task && h.tasks[j].status == events.StatusPending {
			return j
		}
	}
	h.tasks = append(h.tasks, taskMark{name: e.Task, status: events.StatusPending})
	return len(h.tasks) - 1
}

func (s *state) logLine(h *hostRow, l string) { h.log.add(s.opts.LogLines, l) }

// followTo moves the selection to h when following and the selected host is idle.
func (s *state) followTo(h *hostRow) {
	if !s.follow || len(s.rows) == 0 {
		return
	}
	if s.sel < len(s.rows) && s.rows[s.sel].active() && s.rows[s.sel] != h {
		return
	}
	for i, r := range s.rows {
		if r == h {
			s.sel = i
			return
		}
	}
}

// followAway moves the selection off a host that just finished to another
// running one; a failed host stays visible in its row (status and reason).
func (s *state) followAway(h *hostRow, _ events.Status) {
	if !s.follow || s.sel >= len(s.rows) || s.rows[s.sel] != h {
		return
	}
	for i, r := range s.rows {
		if r.active() {
			s.sel = i
			return
		}
	}
}

// oneLine flattens a message for a single-row display.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "\r\n") {
		s = strings.Join(strings.Fields(strings.ReplaceAll(strings.ReplaceAll(s, "\r", " "), "\n", " ")), " ")
	}
	return sanitize(s)
}

// sanitize makes remote output safe to draw: no escape sequences, no
// control characters, tabs expanded, carriage-return progress bars reduced
// to their last state.
func sanitize(s string) string {
	if i := strings.LastIndexByte(strings.TrimRight(s, "\r"), '\r'); i >= 0 {
		s = s[i+1:]
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			clean = false
			break
		}
	}
	if clean && utf8.ValidString(s) {
		return s
	}
	s = ansi.Strip(s)
	var b strings.Builder
	col := 0
	for _, r := range s {
		switch {
		case r == '\t':
			n := 4 - col%4
			b.WriteString("    "[:n])
			col += n
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError:
			// dropped
		default:
			b.WriteRune(r)
			col++
		}
	}
	return b.String()
}

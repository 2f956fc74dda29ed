// Package tui is ferry's terminal UI: it draws a rollout from the event
// stream (the same one the plain and JSON renderers and the run record
// consume) and lets the operator steer it — approve a pause, pause after the
// current batch, abort gracefully — from an SSH terminal, usually in tmux.
//
// The screen is built for hundreds of hosts: per-host state is updated in
// O(1) per event and only the visible rows are rendered.
package tui

import (
	"context"
	"io"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/ferrydeploy/ferry/events"
)

// Controls is how the TUI steers the run; the runner implements it.
// Calls must not block: the TUI calls them from its update loop.
type Controls interface {
	// Approve answers a pending pause (PauseWait event): Enter → true, `a` → false.
	Approve(ok bool)
	// PauseAfterBatch asks the runner not to start the next batch until approved (`p`).
	PauseAfterBatch()
	// Abort asks for a graceful abort, the same as SIGTERM (`a`, Ctrl-C). A
	// second call means "stop at once"; the runner decides what that takes.
	// It must also release a pending pause.
	Abort()
}

// Options configure the TUI. The zero value works: stdin/stdout, colors
// unless NO_COLOR is set, the terminal's size, the real clock.
type Options struct {
	In  io.Reader // keyboard; nil: stdin (or the controlling TTY when stdin is not one)
	Out io.Writer // screen; nil: stdout

	NoColor bool // also set by the NO_COLOR environment variable
	ASCII   bool // draw ASCII marks instead of Unicode ones; Run also sets it for non-UTF-8 locales

	// Width and Height fix the screen size before the terminal reports it (tests).
	Width, Height int

	// Now is the clock (tests fix it); nil: time.Now.
	Now func() time.Time

	// LogLines caps the log lines kept per host; 0: 2000.
	LogLines int

	// ExitOnFinish makes Run return as soon as the event stream closes
	// instead of keeping the recap on screen until q/Enter.
	ExitOnFinish bool

	// NoAltScreen draws inline instead of on the alternate screen.
	NoAltScreen bool

	// Unattended, once closed, makes Run return as soon as the event stream
	// closes, as ExitOnFinish does. The caller closes it when a signal
	// stopped the run (SIGTERM from a CI timeout, SIGHUP from a dropped SSH
	// session): nobody may be at the terminal to press q.
	Unattended <-chan struct{}
}

// EventMsg carries one run event into the model.
type EventMsg events.Event

// eventsMsg is a burst of events read at once by Run, so a busy stream
// costs one redraw per burst instead of one per line of output.
type eventsMsg []events.Event

// streamClosedMsg says the event channel was closed: the run is over.
type streamClosedMsg struct{}

// unattendedMsg says Options.Unattended was closed.
type unattendedMsg struct{}

type tickMsg time.Time

const tickEvery = 120 * time.Millisecond

// flashTicks is how long a one-line notice stays in the footer (about 4s).
const flashTicks = 32

// Model is the bubbletea model of the TUI. Copies share state.
type Model struct{ s *state }

// NewModel returns a model ready to receive EventMsg and key messages.
// ctl may be nil (a read-only view).
func NewModel(opts Options, ctl Controls) Model {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LogLines <= 0 {
		opts.LogLines = 2000
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if noColorFromEnv() {
		opts.NoColor = true
	}
	if ctl == nil {
		ctl = nopControls{}
	}
	s := &state{
		opts:   opts,
		ctl:    ctl,
		st:     newStyles(opts.Out, opts.NoColor),
		sym:    unicodeSymbols,
		byName: map[string]*hostRow{},
		width:  opts.Width,
		height: opts.Height,
		follow: true,
	}
	if opts.ASCII {
		s.sym = asciiSymbols
	}
	if s.width <= 0 {
		s.width = 80
	}
	if s.height <= 0 {
		s.height = 24
	}
	return Model{s: s}
}

type nopControls struct{}

func (nopControls) Approve(bool)     {}
func (nopControls) PauseAfterBatch() {}
func (nopControls) Abort()           {}

// Init starts the spinner clock and, under Run, the event reader.
func (m Model) Init() tea.Cmd {
	cmds := []tea.Cmd{tick()}
	if m.s.src != nil {
		cmds = append(cmds, m.s.wait())
	}
	if m.s.opts.Unattended != nil {
		cmds = append(cmds, m.s.waitUnattended())
	}
	return tea.Batch(cmds...)
}

// waitUnattended reports when Options.Unattended is closed.
func (s *state) waitUnattended() tea.Cmd {
	ch, ctx := s.opts.Unattended, s.ctx
	return func() tea.Msg {
		var done <-chan struct{}
		if ctx != nil {
			done = ctx.Done()
		}
		select {
		case <-ch:
			return unattendedMsg{}
		case <-done:
			return nil
		}
	}
}

func tick() tea.Cmd {
	return tea.Tick(tickEvery, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// wait reads the next burst of events: it blocks for one, then takes what
// is already queued, up to a bound.
func (s *state) wait() tea.Cmd {
	ch, ctx := s.src, s.ctx
	return func() tea.Msg {
		var done <-chan struct{}
		if ctx != nil {
			done = ctx.Done()
		}
		var first events.Event
		var ok bool
		select {
		case first, ok = <-ch:
		case <-done:
			return nil
		}
		if !ok {
			return streamClosedMsg{}
		}
		burst := eventsMsg{first}
		for len(burst) < 512 {
			select {
			case e, ok := <-ch:
				if !ok {
					// deliver what we have; the next read sees the close
					return burst
				}
				burst = append(burst, e)
			default:
				return burst
			}
		}
		return burst
	}
}

// Update implements tea.Model.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	s := m.s
	switch msg := msg.(type) {
	case EventMsg:
		s.apply(events.Event(msg))
	case eventsMsg:
		for _, e := range msg {
			s.apply(e)
		}
		return m, s.wait()
	case streamClosedMsg:
		s.streamClosed, s.finished = true, true
		s.pausePending = false
		if s.end != nil && s.mode == modeHosts {
			s.mode = modeRecap
		}
		if s.opts.ExitOnFinish || s.unattended {
			return m, tea.Quit
		}
	case unattendedMsg:
		s.unattended = true
		if s.streamClosed {
			return m, tea.Quit
		}
		// a signal aborted the run: say so, as for `a`
		s.aborting = max(s.aborting, 1)
	case tickMsg:
		s.tick++
		if s.flash != "" && s.tick-s.flashTick > flashTicks {
			s.flash = ""
		}
		if !s.finished {
			return m, tick()
		}
	case tea.WindowSizeMsg:
		s.width, s.height = msg.Width, msg.Height
	case tea.KeyMsg:
		return m, s.key(msg)
	}
	return m, nil
}

// key handles one key press and returns the command to run (tea.Quit).
// Every key is a binding of the keymap (keys.go).
func (s *state) key(k tea.KeyMsg) tea.Cmd {
	s.flash, s.flashTick = "", s.tick
	if s.help {
		s.help = false
		if matches(k, keys.Help, keys.CloseLog) || k.Type == tea.KeyEsc {
			return nil // closing the help is all these do
		}
	}
	// Steering keys work in every view: a pending pause must never be hidden.
	switch {
	case matches(k, keys.Interrupt):
		if s.finished {
			return tea.Quit
		}
		s.abort()
		return nil
	case matches(k, keys.Approve) && s.pausePending:
		s.pausePending = false
		s.ctl.Approve(true)
		s.flash = "approved: continuing"
		return nil
	case matches(k, keys.Abort):
		if s.pausePending {
			// Refusing a pause is an abort, as the key help says: the same
			// graceful stop as SIGTERM (exit 130), not a failed rollout.
			s.pausePending = false
			s.refused = true
			s.abort()
			return nil
		}
		if !s.finished {
			if s.aborting > 0 {
				// a second `a` is likely a double press: only Ctrl-C
				// escalates to stopping at once
				s.flash = "already aborting; Ctrl-C stops at once"
				return nil
			}
			s.abort()
			return nil
		}
	case matches(k, keys.Pause):
		if !s.finished && !s.pauseRequested && s.aborting == 0 {
			s.pauseRequested = true
			s.ctl.PauseAfterBatch()
		}
		return nil
	case matches(k, keys.Help):
		s.help = true
		return nil
	}
	switch s.mode {
	case modeLog:
		return s.logKey(k)
	case modeRecap:
		return s.recapKey(k)
	}
	return s.hostsKey(k)
}

func (s *state) abort() {
	s.aborting++
	s.ctl.Abort()
}

func (s *state) hostsKey(k tea.KeyMsg) tea.Cmd {
	page := max(s.layout().rows, 1)
	switch {
	case matches(k, keys.Up):
		s.moveSel(-1)
	case matches(k, keys.Down):
		s.moveSel(1)
	case matches(k, keys.PageUp):
		s.moveSel(-page)
	case matches(k, keys.PageDown):
		s.moveSel(page)
	case matches(k, keys.Home):
		s.moveSel(-len(s.rows))
	case matches(k, keys.End):
		s.moveSel(len(s.rows))
	case matches(k, keys.Follow):
		s.follow = true
		s.flash = "following running hosts"
	case matches(k, keys.Quit) && s.finished:
		return tea.Quit
	case matches(k, keys.Open):
		if s.sel < len(s.rows) {
			s.mode, s.logHost, s.logFollow = modeLog, s.rows[s.sel], true
		}
	case matches(k, keys.Tab):
		if s.end != nil {
			s.mode = modeRecap
		}
	case matches(k, keys.Quit):
		s.flash = "the run is still going: a aborts it; q quits once it has finished"
	}
	return nil
}

func (s *state) moveSel(d int) {
	s.follow = false
	s.sel = clamp(s.sel+d, 0, len(s.rows)-1)
}

func (s *state) logKey(k tea.KeyMsg) tea.Cmd {
	h := s.logHost
	if h == nil {
		s.mode = modeHosts
		return nil
	}
	page := max(s.layout().logRows, 1)
	maxOff := max(h.log.len()-page, 0)
	if s.logFollow {
		s.logOff = maxOff
	}
	switch {
	case matches(k, keys.Back, keys.CloseLog):
		s.mode, s.logHost = modeHosts, nil
		if s.end != nil && s.finished {
			s.mode = modeRecap
		}
		return nil
	case matches(k, keys.Up):
		s.logOff--
	case matches(k, keys.Down):
		s.logOff++
	case matches(k, keys.PageUp):
		s.logOff -= page
	case matches(k, keys.PageDown):
		s.logOff += page
	case matches(k, keys.Home):
		s.logOff = 0
	case matches(k, keys.End):
		s.logOff = maxOff
	}
	s.logOff = clamp(s.logOff, 0, maxOff)
	s.logFollow = s.logOff >= maxOff
	return nil
}

func (s *state) recapKey(k tea.KeyMsg) tea.Cmd {
	page := max(s.layout().rows, 1)
	switch {
	case matches(k, keys.Quit):
		return tea.Quit
	case matches(k, keys.Tab, keys.Back):
		s.mode = modeHosts
	case matches(k, keys.Open):
		if s.sel < len(s.rows) {
			s.mode, s.logHost, s.logFollow = modeLog, s.rows[s.sel], true
		}
	case matches(k, keys.Up):
		s.recapOff--
	case matches(k, keys.Down):
		s.recapOff++
	case matches(k, keys.PageUp):
		s.recapOff -= page
	case matches(k, keys.PageDown):
		s.recapOff += page
	case matches(k, keys.Home):
		s.recapOff = 0
	case matches(k, keys.End):
		s.recapOff = 1 << 30
	}
	// View clamps recapOff against the recap's length.
	s.recapOff = max(s.recapOff, 0)
	return nil
}

func clamp(v, lo, hi int) int {
	if hi < lo {
		return lo
	}
	return min(max(v, lo), hi)
}

// withSource attaches the event channel that Init will read.
func (m Model) withSource(ctx context.Context, ch <-chan events.Event) Model {
	m.s.src, m.s.ctx = ch, ctx
	return m
}

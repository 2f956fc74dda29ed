package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/ferrydeploy/ferry/events"
)

// ErrStreamOpen is returned (wrapped) when the TUI stopped before the event
// stream was closed: the caller still owns ch and should keep consuming it
// (for instance with the plain renderer) so the runner never blocks.
var ErrStreamOpen = errors.New("the TUI stopped before the run ended")

// scrollbackWarnings is how many of the last warnings are printed after exit.
const scrollbackWarnings = 20

// Run draws the rollout from ch until ch is closed (the run finished), then
// keeps the recap on screen until the operator presses q or Enter (or
// returns at once with Options.ExitOnFinish). On exit the terminal is
// restored and the recap is printed to the normal scrollback.
//
// Run does not handle signals: the caller turns SIGINT/SIGTERM/SIGHUP into
// ctl.Abort() as for the other renderers. Ctrl-C typed in the TUI arrives as
// a key and calls ctl.Abort() itself. Cancelling ctx tears the TUI down at
// once and returns ctx's error wrapped with ErrStreamOpen.
func Run(ctx context.Context, opts Options, ch <-chan events.Event, ctl Controls) (err error) {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if !opts.ASCII && asciiFromEnv(os.Getenv) {
		opts.ASCII = true
	}
	// stop the event reader when Run returns, so a TUI that failed leaves
	// the rest of ch to the caller
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	m := NewModel(opts, ctl).withSource(readCtx, ch)
	s := m.s

	popts := []tea.ProgramOption{
		tea.WithOutput(opts.Out),
		tea.WithContext(ctx),
		tea.WithoutSignalHandler(),
	}
	if opts.In != nil {
		popts = append(popts, tea.WithInput(opts.In))
	}
	if !opts.NoAltScreen {
		popts = append(popts, tea.WithAltScreen())
	}
	p := tea.NewProgram(m, popts...)

	// bubbletea recovers panics in Update/View/commands and restores the
	// terminal itself; this covers the rest of Run.
	defer func() {
		if r := recover(); r != nil {
			_ = p.ReleaseTerminal()
			err = fmt.Errorf("tui: internal error: %v: %w", r, ErrStreamOpen)
		}
	}()

	_, runErr := p.Run()

	if s.end != nil {
		warn := s.warnings
		if len(warn) > scrollbackWarnings {
			warn = warn[len(warn)-scrollbackWarnings:]
		}
		if err := writeRecap(opts.Out, s.scrollbackTitle(), s.end, s.st, warn, s.warnTotal); err != nil && runErr == nil {
			runErr = err
		}
	}
	switch {
	case runErr == nil:
	case !s.streamClosed:
		return fmt.Errorf("tui: %w: %w", runErr, ErrStreamOpen)
	case errors.Is(runErr, tea.ErrProgramPanic):
		return fmt.Errorf("tui: %w", runErr)
	}
	return nil
}

// scrollbackTitle says which run the printed recap belongs to.
func (s *state) scrollbackTitle() string {
	parts := []string{s.st.title.Render("ferry")}
	for _, p := range []struct{ label, v string }{
		{"", s.playbook}, {"env ", s.env}, {"version ", s.version}, {"run ", s.runID},
	} {
		if p.v != "" {
			parts = append(parts, p.label+p.v)
		}
	}
	parts = append(parts, "elapsed "+fmtClock(s.elapsed()))
	return strings.Join(parts, s.sym.sep)
}

package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// keyMap is every key the TUI answers, in one place: the handlers match
// these bindings, and the footer and the help screen are drawn from them,
// so the three cannot disagree.
type keyMap struct {
	// Steering, in every view: a pending pause must never be hidden.
	Interrupt, Approve, Abort, Pause, Help key.Binding
	// Moving in the host table, a log or the recap.
	Up, Down, PageUp, PageDown, Home, End key.Binding
	// Views.
	Follow, Open, Tab, Back, CloseLog, Quit key.Binding
}

var keys = keyMap{
	Interrupt: key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "abort gracefully; twice: stop at once")),
	Approve:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "when a pause is pending: approve and continue")),
	Abort:     key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "abort gracefully (refuses a pending pause)")),
	Pause:     key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "pause after the current batch, ask before the next")),
	Help:      key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "this help")),

	Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑", "select the host above (stops following)")),
	Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓", "select the host below (stops following)")),
	PageUp:   key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "a page up")),
	PageDown: key.NewBinding(key.WithKeys("pgdown", "ctrl+f", " "), key.WithHelp("pgdn", "a page down")),
	Home:     key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("home", "first host / start of the log")),
	End:      key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("end", "last host / end of the log")),

	Follow:   key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "follow the running hosts again")),
	Open:     key.NewBinding(key.WithKeys("enter", "l"), key.WithHelp("enter", "the selected host's full log (also after the run)")),
	Tab:      key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "after the run: switch between the recap and the hosts")),
	Back:     key.NewBinding(key.WithKeys("esc", "backspace", "left", "h"), key.WithHelp("esc", "back from a log")),
	CloseLog: key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "back from a log")),
	Quit:     key.NewBinding(key.WithKeys("q", "enter"), key.WithHelp("q/enter", "quit (once the run has finished)")),
}

// fullHelp is the help screen's order.
func (km keyMap) fullHelp() []key.Binding {
	return []key.Binding{km.Up, km.Down, km.PageUp, km.PageDown, km.Home, km.End, km.Open, km.Approve,
		km.Follow, km.Pause, km.Abort, km.Interrupt, km.Tab, km.Back, km.Quit, km.Help}
}

// helpLine is one line of the help screen: every key of b, and what it does.
func helpLine(b key.Binding) string {
	ks := make([]string, len(b.Keys()))
	for i, k := range b.Keys() {
		if k == " " {
			k = "space"
		}
		ks[i] = k
	}
	return fmt.Sprintf("  %-22s %s", strings.Join(ks, ", "), b.Help().Desc)
}

// hint is one footer item: the bindings' short names, then what they do
// here. Arrows run together (↑↓); other names are joined with /.
func hint(what string, bs ...key.Binding) string {
	var b strings.Builder
	prevArrow := false
	for i, k := range bs {
		name := k.Help().Key
		arrow := name == "↑" || name == "↓"
		if i > 0 && !(arrow && prevArrow) {
			b.WriteString("/")
		}
		b.WriteString(name)
		prevArrow = arrow
	}
	if what != "" {
		b.WriteString(" " + what)
	}
	return b.String()
}

func matches(k tea.KeyMsg, bs ...key.Binding) bool { return key.Matches(k, bs...) }

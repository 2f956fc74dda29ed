package output

import (
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
)

// Under --check, plain output says what each task would do: that is what
// the operator asked for (a unit that does not exist, not just "ok").
func TestPlainCheckShowsTaskMessages(t *testing.T) {
	for _, check := range []bool{false, true} {
		var b strings.Builder
		p := NewPlain(&b, 0, false)
		p.now = func() time.Time { return time.Unix(0, 0) }
		p.Emit(events.Event{Kind: events.RunStart, RunID: "r", Playbook: "d.yml", Check: check})
		p.Emit(events.Event{Kind: events.TaskEnd, Host: "app1", Task: "Stop", Module: "systemd", Status: events.StatusOK,
			Msg: "unit api does not exist on the host: the run fails here unless an earlier task installs it"})
		got := strings.Contains(b.String(), "Stop: ok: unit api does not exist")
		if got != check {
			t.Errorf("check=%v: message shown %v:\n%s", check, got, b.String())
		}
	}
}

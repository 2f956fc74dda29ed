package output

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
)

// Text from hosts cannot drive the terminal or GitHub Actions: escape
// sequences are shown, not interpreted, and no host line starts with "::".
func TestPlainNeutralisesHostText(t *testing.T) {
	var b bytes.Buffer
	p := NewPlain(&b, 1, true)
	at := time.Date(2026, 11, 23, 15, 4, 5, 0, time.UTC)
	evil := "ok\x1b]0;owned\x07\x1b[2J\x1b[1A\r::add-mask::x\n::error::fake\r\n  ::stop-commands::t\x9b31m\x00"
	for _, e := range []events.Event{
		{Kind: events.TaskOutput, Host: "app1", Line: evil},
		{Kind: events.TaskEnd, Host: "app1", Task: "smoke " + evil, Status: events.StatusFailed, Msg: "stderr: " + evil},
		{Kind: events.Warning, Host: "app1", Msg: evil},
		{Kind: events.HostEnd, Host: "app1", Status: events.StatusFailed, Msg: evil},
	} {
		e.Time = at
		p.Emit(e)
	}
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07\x00\r\u009b") {
		t.Fatalf("control characters reached the output: %q", out)
	}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimLeft(l, " \t")
		if strings.HasPrefix(l, "::") && !strings.HasPrefix(l, "::error title=smoke ") && !strings.HasPrefix(l, "::warning::ok") {
			t.Fatalf("a host line reaches GitHub Actions as a command: %q\nin:\n%s", l, out)
		}
	}
	if !strings.Contains(out, `ok\x1b]0;owned\x07`) {
		t.Fatalf("escape sequences should be shown as text:\n%s", out)
	}
	// In annotations, only %, CR and LF are escaped in the message.
	if !strings.Contains(out, "::error title=smoke ok") || !strings.Contains(out, "::stderr: ok") ||
		!strings.Contains(out, "%0A::error::fake%0A  ::stop-commands::t") {
		t.Fatalf("annotation:\n%s", out)
	}
	var g bytes.Buffer
	NewPlain(&g, 0, true).Emit(events.Event{Kind: events.TaskEnd, Host: "app1", Task: "check", Status: events.StatusFailed, Msg: "GET http://10.0.0.1:8080/health: 50% lost, retry"})
	if !strings.Contains(g.String(), "::GET http://10.0.0.1:8080/health: 50%25 lost, retry\n") {
		t.Fatalf("message escaping: %q", g.String())
	}
}

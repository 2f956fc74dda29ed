package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/environments"
	"github.com/ferrydeploy/ferry/events"
)

// hostile is what a request, a record or a host's file may claim as who,
// origin or version: a terminal escape (OSC title, bell), and a line that
// GitHub Actions would take as a command.
const hostile = "mallory\x1b]0;owned\x07\x1b[2J\n::add-mask::x"

func assertTame(t *testing.T, what, out string) {
	t.Helper()
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("%s prints a raw escape sequence:\n%q", what, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "::") {
			t.Errorf("%s prints a line starting with '::': %q", what, l)
		}
	}
	if !strings.Contains(out, `mallory\x1b]0;owned\x07`) {
		t.Errorf("%s does not show the claimed text escaped:\n%s", what, out)
	}
}

func TestHistoryEscapesClaimedText(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	t0 := time.Now().UTC()
	for _, e := range []events.Event{
		{Time: t0, RunID: "20260101-000000-abcdef", Kind: events.RunStart, Playbook: "deploy.yml", Env: "staging", Version: hostile, User: hostile, Origin: hostile},
		{Time: t0, RunID: "20260101-000000-abcdef", Kind: events.RunEnd, Status: events.StatusFailed, Msg: hostile},
	} {
		j, _ := json.Marshal(e)
		b.Write(append(j, '\n'))
	}
	os.WriteFile(filepath.Join(dir, "20260101-000000-abcdef.jsonl"), []byte(b.String()), 0o600)
	r := ferry(t, nil, "history", "--record-dir", dir)
	assertTame(t, "ferry history", r.stdout)
	r = ferry(t, nil, "history", "--record-dir", dir, "20260101-000000-abcdef")
	assertTame(t, "ferry history RUN", r.stdout)
}

func TestStatusAndLockEscapeClaimedText(t *testing.T) {
	st := &envStatus{Env: "staging", Versions: map[string]string{"demo": hostile},
		Hosts: []*hostStatus{{Host: "app1", Releases: map[string]environments.Release{"demo": {App: "demo", Version: hostile, User: hostile, RunID: "r1"}}}},
		Locks: []environments.LockInfo{{Env: "staging", Holder: hostile, Origin: hostile, Version: hostile, RunID: "r2", Host: "app1"}}}
	var out bytes.Buffer
	printStatus(&out, st)
	assertTame(t, "ferry status", out.String())
	held := (&environments.HeldError{Env: "staging", Holder: st.Locks[0]}).Error()
	assertTame(t, "a held lock's error", held)
}

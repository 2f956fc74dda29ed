package tasks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeSystemctl keeps unit states as files under dir and logs every call.
const fakeSystemctl = `#!/bin/sh
d=$FAKE_SYSTEMD; echo "$*" >> "$d/log"
cmd=$1; shift
case "$cmd" in
show) for u; do :; done; if [ "$u" = missing ]; then echo LoadState=not-found; else echo LoadState=loaded; fi
  echo "ActiveState=$(cat "$d/$u.state" 2>/dev/null || echo inactive)"
  if [ "$u" = job ]; then echo Type=oneshot; else echo Type=simple; fi;;
is-active) s=$(cat "$d/$1.state" 2>/dev/null || echo inactive); echo "$s"; [ "$s" = active ];;
is-enabled) s=$(cat "$d/$1.enabled" 2>/dev/null || echo disabled); echo "$s"; [ "$s" = enabled ];;
start|restart) case $1 in crashy) echo failed > "$d/$1.state";; job) echo ran >> "$d/job.runs"; echo inactive > "$d/$1.state";; *) echo active > "$d/$1.state";; esac;;
reload) ;;
stop) echo inactive > "$d/$1.state";;
enable) echo enabled > "$d/$1.enabled";;
disable) echo disabled > "$d/$1.enabled";;
daemon-reload) ;;
*) echo "unknown command $cmd" >&2; exit 1;;
esac
`

func fakeSystemd(t *testing.T) (*Host, string) {
	h, c, _ := testHost(t)
	d := t.TempDir()
	c.fakeBin(t, "systemctl", fakeSystemctl)
	c.fakeBin(t, "journalctl", "#!/bin/sh\necho 'api[1]: boom'\n")
	c.env = append(c.env, "FAKE_SYSTEMD="+d)
	return h, d
}

func calls(t *testing.T, d string) string {
	b, _ := os.ReadFile(filepath.Join(d, "log"))
	return string(b)
}

func TestSystemdStartStopEnable(t *testing.T) {
	h, d := fakeSystemd(t)
	out := runModule(t, h, "systemd", map[string]any{"name": "api", "state": "started", "enabled": true, "daemon_reload": true})
	if !out.Changed || out.Failed || out.Result["state"] != "active" {
		t.Fatalf("%+v", out)
	}
	log := calls(t, d)
	for _, want := range []string{"daemon-reload", "enable api", "start api"} {
		if !strings.Contains(log, want+"\n") {
			t.Fatalf("no %q in %q", want, log)
		}
	}
	// show tells the state before the start: is-active only confirms it after.
	if n := strings.Count(log, "is-active"); n != 1 || strings.Count(log, "show") != 1 {
		t.Errorf("calls %q: want one show, and one is-active after the start", log)
	}
	os.Remove(filepath.Join(d, "log"))
	out = runModule(t, h, "systemd", map[string]any{"name": "api", "state": "started", "enabled": true})
	if out.Changed || strings.Contains(calls(t, d), "start api") {
		t.Fatalf("second start: %+v %q", out, calls(t, d))
	}
	out = runModule(t, h, "systemd", map[string]any{"name": "api", "state": "stopped"})
	if !out.Changed || out.Result["state"] != "inactive" {
		t.Fatalf("stop: %+v", out)
	}
	out = runModule(t, h, "systemd", map[string]any{"name": "api", "state": "restarted"})
	if !out.Changed || out.Result["state"] != "active" {
		t.Fatalf("restart: %+v", out)
	}
}

// A oneshot unit (a migration, a cache warm-up) is done when its start
// job ends, inactive again: started runs it and reports ok at once, as
// Ansible does, instead of waiting wait_timeout for it to be active.
func TestSystemdOneshot(t *testing.T) {
	h, d := fakeSystemd(t)
	for i := 1; i <= 2; i++ {
		out := runModule(t, h, "systemd", map[string]any{"name": "job", "state": "started", "wait_timeout": "30s"})
		if out.Failed || !out.Changed || out.Result["state"] != "inactive" {
			t.Fatalf("run %d: %+v", i, out)
		}
		if b, _ := os.ReadFile(filepath.Join(d, "job.runs")); strings.Count(string(b), "ran") != i {
			t.Fatalf("run %d: the job ran %d times", i, strings.Count(string(b), "ran"))
		}
	}
}

func TestSystemdCheckModeAndFailures(t *testing.T) {
	h, d := fakeSystemd(t)
	h.Check = true
	out := runModule(t, h, "systemd", map[string]any{"name": "api", "state": "started"})
	if !out.Changed || strings.Contains(calls(t, d), "start") {
		t.Fatalf("check mode: %+v %q", out, calls(t, d))
	}
	// --check says a unit does not exist (an earlier task may install it).
	out = runModule(t, h, "systemd", map[string]any{"name": "missing", "state": "stopped"})
	if out.Failed || out.Changed || !strings.Contains(out.Msg, "unit missing does not exist") {
		t.Fatalf("check mode, missing unit: %+v", out)
	}
	h.Check = false
	out = runModule(t, h, "systemd", map[string]any{"name": "missing", "state": "started"})
	if !out.Failed || !strings.Contains(out.Msg, "not found") || !out.Untouched {
		t.Fatalf("missing unit: %+v (want failed, and untouched: nothing was stopped)", out)
	}
	out = runModule(t, h, "systemd", map[string]any{"name": "crashy", "state": "started", "wait_timeout": "2s"})
	if !out.Failed || !strings.Contains(out.Msg, "crashy failed to start") {
		t.Fatalf("crashing unit: %+v", out)
	}
}

func TestSystemdWaitIsBounded(t *testing.T) {
	h, c, _ := testHost(t)
	// A unit that never leaves "activating".
	c.fakeBin(t, "systemctl", "#!/bin/sh\ncase $1 in is-active) echo activating; exit 3;; show) echo LoadState=loaded; echo ActiveState=activating;; esac\n")
	start := time.Now()
	out := runModule(t, h, "systemd", map[string]any{"name": "slow", "state": "restarted", "wait_timeout": 1})
	if !out.Failed || !strings.Contains(out.Msg, "activating after 1s") {
		t.Fatalf("%+v", out)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatal("wait not bounded")
	}
}

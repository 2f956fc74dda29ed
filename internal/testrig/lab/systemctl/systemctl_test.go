package systemctl

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stand is the stand-in run outside a lab, on directories of its own.
type stand struct {
	t                    *testing.T
	bin, units, st, logs string
}

func newStand(t *testing.T) *stand {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash")
	}
	for _, tool := range []string{"setsid", "flock"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (util-linux)", tool)
		}
	}
	d := t.TempDir()
	s := &stand{t: t, bin: filepath.Join(d, "systemctl"), units: filepath.Join(d, "units"), st: filepath.Join(d, "state"), logs: filepath.Join(d, "log")}
	if err := os.WriteFile(s.bin, Script, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(s.units, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Stop whatever a test left running.
		ents, _ := os.ReadDir(s.st)
		for _, e := range ents {
			if e.IsDir() {
				s.run("stop", e.Name())
			}
		}
	})
	return s
}

func (s *stand) unit(name, content string) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.units, name+".service"), []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// run runs the stand-in and returns stdout, stderr and the exit code.
func (s *stand) run(args ...string) (string, string, int) {
	s.t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(), "FERRY_SYSTEMCTL_UNIT_DIR="+s.units, "FERRY_SYSTEMCTL_STATE_DIR="+s.st, "FERRY_SYSTEMCTL_LOG_DIR="+s.logs)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("systemctl %v: %v", args, err)
	}
	return strings.TrimSpace(out.String()), strings.TrimSpace(errb.String()), code
}

func (s *stand) ok(args ...string) string {
	s.t.Helper()
	out, errs, code := s.run(args...)
	if code != 0 {
		s.t.Fatalf("systemctl %s: exit %d: %s %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// show returns one property's value.
func (s *stand) show(unit, prop string) string {
	s.t.Helper()
	return s.ok("show", unit, "-p", prop, "--value")
}

// eventually polls cond (bounded) for effects of asynchronous processes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

func TestStartStop(t *testing.T) {
	s := newStand(t)
	work := t.TempDir()
	s.unit("svc", `[Unit]
Description=test service

[Service]
Environment="GREETING=hello world" OTHER=2
WorkingDirectory=`+work+`
ExecStart=/bin/bash -c 'echo "$GREETING|$OTHER|$PWD" > env.txt; exec sleep 600'

[Install]
WantedBy=multi-user.target
`)
	if out, _, code := s.run("is-active", "svc"); out != "inactive" || code != 3 {
		t.Fatalf("is-active before start = %q, exit %d; want inactive, 3", out, code)
	}
	s.ok("start", "svc.service")
	if out, _, code := s.run("is-active", "svc"); out != "active" || code != 0 {
		t.Fatalf("is-active = %q, exit %d", out, code)
	}
	pid, err := strconv.Atoi(s.show("svc", "MainPID"))
	if err != nil || !alive(pid) {
		t.Fatalf("MainPID %d (%v) is not a live process", pid, err)
	}
	// The ExecStart process itself: bash until it execs sleep (a wrapper
	// process would never become sleep).
	eventually(t, "MainPID to exec sleep", func() bool {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		return strings.TrimSpace(string(comm)) == "sleep"
	})
	eventually(t, "env.txt", func() bool {
		b, _ := os.ReadFile(filepath.Join(work, "env.txt"))
		return len(b) > 0
	})
	if b, _ := os.ReadFile(filepath.Join(work, "env.txt")); strings.TrimSpace(string(b)) != "hello world|2|"+work {
		t.Errorf("service environment = %q", b)
	}
	// Starting an active unit changes nothing.
	s.ok("start", "svc")
	if got := s.show("svc", "MainPID"); got != strconv.Itoa(pid) {
		t.Errorf("second start changed MainPID %d -> %s", pid, got)
	}
	show := s.ok("show", "svc", "--property=ActiveState,SubState", "-p", "LoadState")
	if show != "SubState=running\nLoadState=loaded\nActiveState=active" && !(strings.Contains(show, "ActiveState=active") && strings.Contains(show, "SubState=running") && strings.Contains(show, "LoadState=loaded")) {
		t.Errorf("show = %q", show)
	}
	if strings.Count(show, "\n") != 2 {
		t.Errorf("show printed other properties: %q", show)
	}
	status, _, code := s.run("status", "svc", "--no-pager", "-l")
	if code != 0 || !strings.Contains(status, "active (running)") || !strings.Contains(status, "Main PID: "+strconv.Itoa(pid)) {
		t.Errorf("status (exit %d):\n%s", code, status)
	}

	s.ok("stop", "svc")
	if alive(pid) {
		t.Errorf("pid %d still runs after stop", pid)
	}
	if out, _, code := s.run("is-active", "svc"); out != "inactive" || code != 3 {
		t.Errorf("is-active after stop = %q, exit %d", out, code)
	}
	if _, _, code := s.run("status", "svc"); code != 3 {
		t.Errorf("status of a stopped unit: exit %d, want 3", code)
	}
	if out, _, code := s.run("is-active", "-q", "svc"); out != "" || code != 3 {
		t.Errorf("is-active -q = %q, exit %d", out, code)
	}
	// Stopping a stopped unit is fine.
	s.ok("stop", "svc")
}

func TestRestartReload(t *testing.T) {
	s := newStand(t)
	work := t.TempDir()
	s.unit("hup", `[Service]
ExecStart=/bin/bash -c 'trap "echo hup >> `+work+`/hups" HUP; while :; do sleep 0.05; done'
`)
	s.ok("start", "hup")
	pid := s.show("hup", "MainPID")
	s.ok("reload", "hup")
	eventually(t, "SIGHUP to reach the service", func() bool {
		b, _ := os.ReadFile(filepath.Join(work, "hups"))
		return strings.Contains(string(b), "hup")
	})
	if got := s.show("hup", "MainPID"); got != pid {
		t.Errorf("reload changed MainPID %s -> %s", pid, got)
	}
	s.ok("restart", "hup")
	if got := s.show("hup", "MainPID"); got == pid || got == "0" {
		t.Errorf("restart kept MainPID %s (now %s)", pid, got)
	}
	if got := s.show("hup", "ActiveState"); got != "active" {
		t.Errorf("after restart ActiveState = %s", got)
	}
	s.ok("stop", "hup")
	if _, errs, code := s.run("reload", "hup"); code == 0 || !strings.Contains(errs, "not active") {
		t.Errorf("reload of a stopped unit: exit %d, %q", code, errs)
	}
}

func TestFailedService(t *testing.T) {
	s := newStand(t)
	s.unit("crash", "[Service]\nExecStart=/bin/bash -c 'exit 7'\n")
	s.run("start", "crash") // may report the failure itself, or not yet
	eventually(t, "the unit to fail", func() bool {
		out, _, _ := s.run("is-active", "crash")
		return out == "failed"
	})
	if _, _, code := s.run("is-active", "crash"); code != 3 {
		t.Errorf("is-active exit %d for a failed unit, want 3", code)
	}
	if got := s.show("crash", "Result"); got != "exit-code" {
		t.Errorf("Result = %s", got)
	}
	if got := s.show("crash", "ExecMainStatus"); got != "7" {
		t.Errorf("ExecMainStatus = %s", got)
	}
	if out, _, code := s.run("is-failed", "crash"); out != "failed" || code != 0 {
		t.Errorf("is-failed = %q, exit %d", out, code)
	}
	s.ok("reset-failed", "crash")
	if got := s.show("crash", "ActiveState"); got != "inactive" {
		t.Errorf("after reset-failed ActiveState = %s", got)
	}

	s.unit("noexec", "[Service]\nExecStart=/nonexistent/binary\n")
	s.run("start", "noexec")
	eventually(t, "a unit whose binary is missing to fail", func() bool {
		out, _, _ := s.run("is-active", "noexec")
		return out == "failed"
	})
}

func TestStopTimeoutKills(t *testing.T) {
	s := newStand(t)
	s.unit("stubborn", "[Service]\nExecStart=/bin/bash -c 'trap \"\" TERM; while :; do sleep 0.05; done'\nTimeoutStopSec=300ms\n")
	s.ok("start", "stubborn")
	pid, _ := strconv.Atoi(s.show("stubborn", "MainPID"))
	s.ok("stop", "stubborn")
	if alive(pid) {
		t.Errorf("pid %d survived stop", pid)
	}
	if got := s.show("stubborn", "Result"); got != "timeout" {
		t.Errorf("Result = %s, want timeout", got)
	}
}

func TestEnableDisable(t *testing.T) {
	s := newStand(t)
	s.unit("web", "[Service]\nExecStart=/bin/sleep 600\n[Install]\nWantedBy=multi-user.target\n")
	s.unit("static", "[Service]\nExecStart=/bin/sleep 600\n")
	if out, _, code := s.run("is-enabled", "web"); out != "disabled" || code != 1 {
		t.Errorf("is-enabled = %q, exit %d", out, code)
	}
	if _, errs, _ := s.run("enable", "web"); !strings.Contains(errs, "Created symlink") {
		t.Errorf("enable said %q", errs)
	}
	if _, err := os.Lstat(filepath.Join(s.units, "multi-user.target.wants", "web.service")); err != nil {
		t.Errorf("enable made no symlink: %v", err)
	}
	if out, _, code := s.run("is-enabled", "web", "-l"); out != "enabled" || code != 0 {
		t.Errorf("is-enabled after enable = %q, exit %d", out, code)
	}
	if got := s.show("web", "UnitFileState"); got != "enabled" {
		t.Errorf("UnitFileState = %s", got)
	}
	s.ok("disable", "web")
	if out, _, _ := s.run("is-enabled", "web"); out != "disabled" {
		t.Errorf("is-enabled after disable = %q", out)
	}
	if out, _, code := s.run("is-enabled", "static"); out != "static" || code != 0 {
		t.Errorf("is-enabled of a unit without [Install] = %q, exit %d", out, code)
	}
	s.ok("enable", "--now", "web")
	if got := s.show("web", "ActiveState"); got != "active" {
		t.Errorf("enable --now: ActiveState = %s", got)
	}
	s.ok("disable", "--now", "web")
	if got := s.show("web", "ActiveState"); got != "inactive" {
		t.Errorf("disable --now: ActiveState = %s", got)
	}
}

func TestNotFound(t *testing.T) {
	s := newStand(t)
	show := s.ok("show", "ghost")
	for _, want := range []string{"LoadState=not-found", "ActiveState=inactive", "Id=ghost.service", "LoadError="} {
		if !strings.Contains(show, want) {
			t.Errorf("show of a missing unit lacks %s:\n%s", want, show)
		}
	}
	if _, errs, code := s.run("status", "ghost"); code != 4 || !strings.Contains(errs, "could not be found") {
		t.Errorf("status: exit %d, %q", code, errs)
	}
	if _, errs, code := s.run("start", "ghost"); code == 0 || !strings.Contains(errs, "not found") {
		t.Errorf("start: exit %d, %q", code, errs)
	}
	if _, errs, code := s.run("is-enabled", "ghost"); code != 1 || !strings.Contains(errs, "No such file") {
		t.Errorf("is-enabled: exit %d, %q", code, errs)
	}
	if _, errs, code := s.run("frobnicate", "ghost"); code == 0 || !strings.Contains(errs, "Unknown command") {
		t.Errorf("unknown verb: exit %d, %q", code, errs)
	}
	if _, errs, code := s.run("--bogus", "status"); code == 0 || !strings.Contains(errs, "unrecognized option") {
		t.Errorf("unknown flag: exit %d, %q", code, errs)
	}
}

func TestDaemonReload(t *testing.T) {
	s := newStand(t)
	s.unit("cfg", "[Unit]\nDescription=first\n[Service]\nExecStart=/bin/sleep 600\n")
	s.ok("start", "cfg")
	s.unit("cfg", "[Unit]\nDescription=second\n[Service]\nExecStart=/bin/sleep 601\n")
	if got := s.show("cfg", "NeedDaemonReload"); got != "yes" {
		t.Errorf("NeedDaemonReload after edit = %s", got)
	}
	// A running unit keeps the configuration it was started with.
	if got := s.show("cfg", "Description"); got != "first" {
		t.Errorf("Description before daemon-reload = %s", got)
	}
	if _, errs, _ := s.run("status", "cfg"); !strings.Contains(errs, "daemon-reload") {
		t.Errorf("status does not warn about the changed unit: %q", errs)
	}
	s.ok("daemon-reload")
	if got := s.show("cfg", "NeedDaemonReload"); got != "no" {
		t.Errorf("NeedDaemonReload after daemon-reload = %s", got)
	}
	if got := s.show("cfg", "Description"); got != "second" {
		t.Errorf("Description after daemon-reload = %s", got)
	}
}

func TestOneshot(t *testing.T) {
	s := newStand(t)
	work := t.TempDir()
	s.unit("once", "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/touch "+work+"/done\n")
	s.ok("start", "once")
	if _, err := os.Stat(filepath.Join(work, "done")); err != nil {
		t.Errorf("oneshot did not run before start returned: %v", err)
	}
	if out, _, code := s.run("is-active", "once"); out != "active" || code != 0 {
		t.Errorf("RemainAfterExit unit is-active = %q, exit %d", out, code)
	}
	s.ok("stop", "once")
	if out, _, _ := s.run("is-active", "once"); out != "inactive" {
		t.Errorf("after stop is-active = %q", out)
	}
	s.unit("oncefail", "[Service]\nType=oneshot\nExecStart=/bin/false\n")
	if _, _, code := s.run("start", "oncefail"); code == 0 {
		t.Error("failing oneshot started successfully")
	}
	if out, _, _ := s.run("is-active", "oncefail"); out != "failed" {
		t.Errorf("failing oneshot is-active = %q", out)
	}
}

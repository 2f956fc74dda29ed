package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/shell"
)

// These tests run `ferry run --output tui` in a real terminal — a tmux pane
// on a private tmux server — against the lab, drive it with keys and read
// the screen back, as an operator on the bastion would.

// tmuxWait bounds every wait for the screen or the process.
const tmuxWait = 60 * time.Second

// pane is one ferry process in a detached tmux session.
type pane struct {
	t                *testing.T
	sock             string // private server: tmux -L sock
	exitFile, pidDir string
}

// startPane starts `ferry args...` in a new w×h tmux session. env is added
// to the process's environment. When ferry exits, the shell writes
// EXIT=<code> to a file and prints a marker line, then keeps the pane open
// so the test can read what the terminal shows after the TUI.
func startPane(t *testing.T, w, h int, env []string, args ...string) *pane {
	t.Helper()
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux is not installed: the TUI end-to-end tests need a real terminal")
	}
	bin, binEnv := ferryBinary(t)
	dir := t.TempDir()
	p := &pane{
		t:        t,
		sock:     fmt.Sprintf("ferry-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()),
		exitFile: filepath.Join(dir, "exit"),
		pidDir:   dir,
	}
	words := []string{"env", "-u", "TMUX", "LC_ALL=C.UTF-8", "TERM=xterm-256color"}
	for _, kv := range append(append(binEnv, env...), "HOME="+commandEnv(t).Get("HOME"), "SSH_AUTH_SOCK=") {
		words = append(words, shell.Quote(kv))
	}
	// sh writes its pid then becomes ferry, so signals reach ferry itself.
	words = append(words, "sh", "-c", shell.Quote(`echo $$ > "$0"; exec "$@"`), shell.Quote(filepath.Join(dir, "pid")), shell.Quote(bin))
	for _, a := range args {
		words = append(words, shell.Quote(a))
	}
	script := strings.Join(words, " ") + fmt.Sprintf(`; echo EXIT=$? > %s; echo "shell after ferry: done"; exec sleep 600`, shell.Quote(p.exitFile))

	cmd := exec.Command(tmux, "-L", p.sock, "-f", "/dev/null", "new-session", "-d", "-x", strconv.Itoa(w), "-y", strconv.Itoa(h), script)
	cmd.Env = append(os.Environ(), "TMUX=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	sockPath := strings.TrimSpace(p.tmux("display-message", "-p", "#{socket_path}"))
	t.Cleanup(func() {
		// only this test's server, by its socket; tmux leaves the socket file
		_ = exec.Command(tmux, "-L", p.sock, "kill-server").Run()
		if strings.Contains(sockPath, p.sock) {
			_ = os.Remove(sockPath)
		}
	})
	return p
}

func (p *pane) tmux(args ...string) string {
	p.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", p.sock}, args...)...).Output()
	if err != nil {
		p.t.Fatalf("tmux %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// screen is what the pane shows now, as text.
func (p *pane) screen() string { return p.tmux("capture-pane", "-p") }

// history is the pane's scrollback and screen.
func (p *pane) history() string { return p.tmux("capture-pane", "-p", "-S", "-") }

// keys types into the pane (tmux key names: Enter, C-c, a...).
func (p *pane) keys(k ...string) { p.tmux(append([]string{"send-keys"}, k...)...) }

// waitFor polls the screen until ok accepts it and returns that screen.
func (p *pane) waitFor(what string, ok func(string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(tmuxWait)
	var s string
	for time.Now().Before(deadline) {
		s = p.screen()
		if ok(s) {
			return s
		}
		if p.exited() {
			s = p.screen()
			if ok(s) {
				return s
			}
			p.t.Fatalf("ferry exited before the screen showed %s; last screen:\n%s", what, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("the screen never showed %s within %v; last screen:\n%s", what, tmuxWait, s)
	return ""
}

func (p *pane) waitText(text string) string {
	p.t.Helper()
	return p.waitFor(strconv.Quote(text), func(s string) bool { return strings.Contains(s, text) })
}

func (p *pane) exited() bool {
	_, err := os.Stat(p.exitFile)
	return err == nil
}

// exitCode waits for ferry to exit and returns its exit code.
func (p *pane) exitCode() int {
	p.t.Helper()
	deadline := time.Now().Add(tmuxWait)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(p.exitFile)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			code, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(string(b), "EXIT=")))
			if err != nil {
				p.t.Fatalf("exit file: %q", b)
			}
			return code
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("ferry did not exit within %v; screen:\n%s", tmuxWait, p.screen())
	return -1
}

// pid is ferry's process id.
func (p *pane) pid() int {
	p.t.Helper()
	deadline := time.Now().Add(tmuxWait)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(p.pidDir, "pid"))
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && strings.HasSuffix(string(b), "\n") {
			return pid
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatal("no pid file")
	return 0
}

// checkTerminalSane asserts the TUI left the terminal as it found it: the
// normal screen is back (no alternate-screen leftovers), the cursor shows,
// and the shell's next output shows (below the recap, when there is one).
func (p *pane) checkTerminalSane(wantRecap bool) {
	p.t.Helper()
	p.waitText("shell after ferry: done")
	if alt := strings.TrimSpace(p.tmux("display-message", "-p", "#{alternate_on}")); alt != "0" {
		p.t.Errorf("the terminal is still on the alternate screen after ferry exited (alternate_on=%s)", alt)
	}
	if c := strings.TrimSpace(p.tmux("display-message", "-p", "#{cursor_flag}")); c != "1" {
		p.t.Errorf("the cursor is still hidden after ferry exited (cursor_flag=%s)", c)
	}
	if mode := p.tmux("display-message", "-p", "#{keypad_cursor_flag}#{mouse_any_flag}"); strings.TrimSpace(mode) != "00" {
		p.t.Errorf("terminal modes left on after ferry exited (keypad cursor, mouse): %s", mode)
	}
	hist := p.history()
	p.t.Logf("terminal after ferry exited:\n%s", strings.TrimRight(hist, "\n"))
	if !wantRecap {
		return
	}
	recap := strings.LastIndex(hist, "RECAP")
	shell := strings.LastIndex(hist, "shell after ferry: done")
	if recap < 0 || !strings.Contains(hist[recap:], "record: ") {
		p.t.Errorf("the recap is not in the scrollback after exit:\n%s", hist)
	} else if shell < recap {
		p.t.Errorf("the shell's output is not below the recap:\n%s", hist)
	}
	// the live screen (footer keys, the host table) must not linger
	for _, leftover := range []string{"a abort", "q/enter quit", "HOST     B STATUS"} {
		if strings.Contains(hist, leftover) {
			p.t.Errorf("the TUI's screen (%q) is left in the terminal:\n%s", leftover, hist)
		}
	}
}

// slowDeploy writes a copy of the example deploy with a slow task before the
// smoke test (so a host is caught mid-run) and the given play-level lines.
func slowDeploy(t *testing.T, playExtra string) string {
	t.Helper()
	src, err := os.ReadFile(example("deploy.yml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(src), "    - name: Smoke test\n", "    - name: Warm up\n      shell: sleep 4\n    - name: Smoke test\n", 1)
	s = strings.Replace(s, "  max_fail_percentage: 0\n", "  max_fail_percentage: 0\n"+playExtra, 1)
	if !strings.Contains(s, "Warm up") || (playExtra != "" && !strings.Contains(s, playExtra)) {
		t.Fatal("the example deploy changed shape: update slowDeploy")
	}
	pb := filepath.Join(t.TempDir(), "deploy.yml")
	if err := os.WriteFile(pb, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return pb
}

// hostRow finds host's row in the TUI's host table.
func hostRow(screen, host string) string {
	re := regexp.MustCompile(`(?m)^[ ›>] ` + regexp.QuoteMeta(host) + ` .*$`)
	return re.FindString(screen)
}

func (d *deployLab) versions(t *testing.T, hosts ...string) map[string]string {
	m := map[string]string{}
	for _, h := range hosts {
		m[h], _ = d.status(t, h)
	}
	return m
}

// TestTUIRollout drives the TUI through real rollouts on a 5-host lab
// (batches of 1, 2 and 2): the live view, the canary pause, the abort key,
// a signal, NO_COLOR, an 80x24 terminal, and Ctrl-C twice.
func TestTUIRollout(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: the TUI end-to-end tests need a real terminal")
	}
	d := startDeployLab(t, 5)
	all := []string{"app1", "app2", "app3", "app4", "app5"}
	run := func(t *testing.T, w, h int, env []string, pb, version string) *pane {
		return startPane(t, w, h, append(env, d.env...), "run", pb, "-i", d.Inventory, "-e", "dist="+d.dist, "-e", "version="+version, "--output", "tui")
	}

	t.Run("pause after the canary", func(t *testing.T) {
		p := run(t, 120, 40, nil, slowDeploy(t, "  pause_after: 1\n"), "v2")

		// Mid-rollout: the canary's row says it is running, and which task.
		s := p.waitFor("app1 running its Warm up task", func(s string) bool {
			r := hostRow(s, "app1")
			return strings.Contains(r, "running") && strings.Contains(r, "Warm up")
		})
		if !strings.Contains(s, "batch 1/3") || !strings.Contains(s, "version v2") {
			t.Errorf("the header does not say where the rollout is:\n%s", s)
		}
		if !strings.Contains(s, "── app1 · Warm up") {
			t.Errorf("the output pane does not follow the running host:\n%s", s)
		}

		// After batch 1 the run waits for Enter, and batch 2 has not started.
		s = p.waitText("PAUSED")
		if !strings.Contains(s, "Continue with batch 2") || !strings.Contains(s, "enter continue") {
			t.Errorf("the pause prompt does not say what Enter does:\n%s", s)
		}
		if v := d.versions(t, all...); fmt.Sprint(v) != "map[app1:v2 app2:v1 app3:v1 app4:v1 app5:v1]" {
			t.Fatalf("while paused: versions %v, want only the canary on v2", v)
		}
		if r := hostRow(p.screen(), "app2"); strings.Contains(r, "running") {
			t.Errorf("app2 runs while the rollout is paused: %q", r)
		}

		p.keys("Enter")
		s = p.waitText("RECAP")
		if !strings.Contains(s, "run OK (exit 0)") || !strings.Contains(s, "5 hosts: 5 ok") {
			t.Errorf("recap:\n%s", s)
		}
		if v := d.versions(t, all...); fmt.Sprint(v) != "map[app1:v2 app2:v2 app3:v2 app4:v2 app5:v2]" {
			t.Errorf("after approval: versions %v, want v2 everywhere", v)
		}
		// The recap stays until the operator leaves.
		if p.exited() {
			t.Fatal("ferry exited without waiting for q on the recap")
		}
		p.keys("q")
		if code := p.exitCode(); code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
		p.checkTerminalSane(true)
	})

	t.Run("abort in an 80x24 terminal without color", func(t *testing.T) {
		p := run(t, 80, 24, []string{"NO_COLOR=1"}, slowDeploy(t, ""), "v1")
		s := p.waitFor("app1 running Warm up", func(s string) bool {
			r := hostRow(s, "app1")
			return strings.Contains(r, "running") && strings.Contains(r, "Warm up")
		})
		checkFits(t, s, 80, 24)
		if esc := p.tmux("capture-pane", "-p", "-e"); colorSGR(esc) {
			t.Errorf("NO_COLOR is set but the screen has colors:\n%q", esc)
		}

		p.keys("a")
		p.waitText("aborting")
		s = p.waitText("RECAP")
		checkFits(t, s, 80, 24)
		if !strings.Contains(s, "run INTERRUPTED (exit 130)") {
			t.Errorf("the recap does not say the run was interrupted:\n%s", s)
		}
		p.keys("q")
		if code := p.exitCode(); code != exitcode.Interrupted {
			t.Errorf("exit %d, want %d", code, exitcode.Interrupted)
		}
		// No host is left stopped; the hosts after the canary were not touched.
		v := d.versions(t, all...)
		for _, h := range all {
			if v[h] == "down" {
				t.Errorf("%s left stopped after the abort", h)
			}
		}
		for _, h := range all[1:] {
			if v[h] != "v2" {
				t.Errorf("%s runs %s after an abort during batch 1, want v2 (untouched)", h, v[h])
			}
		}
		p.checkTerminalSane(true)
	})

	t.Run("SIGTERM ends the TUI on its own", func(t *testing.T) {
		// Nobody may be at the terminal (a dropped SSH session sends SIGHUP,
		// a CI timeout SIGTERM): the run stops gracefully and ferry exits
		// without waiting for a key, leaving the recap in the scrollback.
		p := run(t, 120, 40, nil, slowDeploy(t, ""), "v1")
		p.waitFor("app1 running Warm up", func(s string) bool {
			return strings.Contains(hostRow(s, "app1"), "Warm up")
		})
		if err := syscall.Kill(p.pid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := p.exitCode(); code != exitcode.Interrupted {
			t.Errorf("exit %d, want %d", code, exitcode.Interrupted)
		}
		for h, v := range d.versions(t, all...) {
			if v == "down" {
				t.Errorf("%s left stopped after SIGTERM", h)
			}
		}
		p.checkTerminalSane(true)
	})

	t.Run("dropped terminal", func(t *testing.T) {
		// The SSH session to the bastion drops: the terminal goes away and
		// ferry gets SIGHUP. It aborts gracefully and exits; nothing waits
		// for a key that cannot come.
		p := run(t, 120, 40, nil, slowDeploy(t, ""), "v2")
		p.waitFor("app1 running Warm up", func(s string) bool {
			return strings.Contains(hostRow(s, "app1"), "Warm up")
		})
		pid := p.pid()
		p.tmux("kill-server")
		deadline := time.Now().Add(tmuxWait)
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("ferry (pid %d) still runs %v after its terminal went away", pid, tmuxWait)
			}
			time.Sleep(100 * time.Millisecond)
		}
		var end *events.Event
		for _, e := range d.lastRecord(t) {
			if e.Kind == events.RunEnd {
				end = &e
			}
		}
		if end == nil || end.Status != events.StatusInterrupted || end.ExitCode != exitcode.Interrupted {
			t.Errorf("the record's run_end: %+v, want interrupted (130)", end)
		}
		for h, v := range d.versions(t, all...) {
			if v == "down" {
				t.Errorf("%s left stopped after the terminal went away", h)
			}
		}
	})

	// Last: it may leave a host half-done, as the operator asked.
	t.Run("Ctrl-C twice stops at once", func(t *testing.T) {
		p := run(t, 100, 30, nil, slowDeploy(t, ""), "v2")
		p.waitFor("app1 running Warm up", func(s string) bool {
			return strings.Contains(hostRow(s, "app1"), "Warm up")
		})
		p.keys("C-c")
		p.waitText("aborting")
		if p.exited() {
			t.Fatal("the first Ctrl-C ended ferry")
		}
		p.keys("C-c")
		if code := p.exitCode(); code != exitcode.Interrupted {
			t.Errorf("exit %d, want %d", code, exitcode.Interrupted)
		}
		// the terminal is given back even though ferry did not unwind
		p.checkTerminalSane(false)
		if h := p.history(); !strings.Contains(h, "ferry: Ctrl-C twice, stopping now") {
			t.Errorf("ferry did not say it stopped at once:\n%s", h)
		}
	})
}

// alive reports whether pid is a process that has not exited (a zombie has).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: comm may hold spaces, the state follows the last ')'
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// checkFits asserts a captured screen is the terminal's size: the header on
// the first line, the key help on the last, nothing wrapped.
func checkFits(t *testing.T, s string, w, h int) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) != h {
		t.Errorf("%d lines on a %d-line terminal:\n%s", len(lines), h, s)
	}
	if !strings.HasPrefix(lines[0], "ferry ") {
		t.Errorf("the first line is not the header (did something wrap or scroll?):\n%s", s)
	}
	last := lines[len(lines)-1]
	if !strings.Contains(last, "abort") && !strings.Contains(last, "quit") {
		t.Errorf("the last line is not the key help:\n%s", s)
	}
	for i, l := range lines {
		if n := len([]rune(l)); n > w {
			t.Errorf("line %d is %d cells wide on a %d-column terminal: %q", i+1, n, w, l)
		}
	}
}

// colorSGR reports whether text has an SGR sequence that sets a color.
func colorSGR(text string) bool {
	for _, m := range regexp.MustCompile(`\x1b\[([0-9;:]*)m`).FindAllStringSubmatch(text, -1) {
		for _, p := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ';' || r == ':' }) {
			n, _ := strconv.Atoi(p)
			if (n >= 30 && n <= 38) || (n >= 40 && n <= 48) || (n >= 90 && n <= 97) || (n >= 100 && n <= 107) {
				return true
			}
		}
	}
	return false
}

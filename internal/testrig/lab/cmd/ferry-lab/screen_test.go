package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/shell"
)

// The escape tracker says "safe" exactly between sequences and characters.
func TestEscStateSafePoints(t *testing.T) {
	for _, tc := range []struct {
		in   string
		safe bool
	}{
		{"plain text", true},
		{"\x1b", false},
		{"\x1b[", false},
		{"\x1b[1;3", false},
		{"\x1b[1;3H", true},
		{"\x1b[?1049h", true},
		{"\x1b]2;title", false},
		{"\x1b]2;title\x07", true},
		{"\x1b]8;;http://x\x1b", false},
		{"\x1b]8;;http://x\x1b\\", true},
		{"\x1b(", false},
		{"\x1b(B", true},
		{"\x1b7", true},
		{"é"[:1], false},
		{"é", true},
		{"─"[:2], false},
		{"─", true},
		{"🚀"[:3], false},
		{"🚀 ok", true},
	} {
		var e escState
		e.feed([]byte(tc.in))
		if e.safe() != tc.safe {
			t.Errorf("after %q: safe=%v, want %v", tc.in, e.safe(), tc.safe)
		}
	}
}

// Feeding a stream in pieces ends where feeding it whole does, and a
// stream made of whole sequences and characters always ends safe.
func FuzzEscState(f *testing.F) {
	f.Add([]byte("\x1b[1;3Hhello\x1b]2;t\x07─"), 5)
	f.Add([]byte("\x1bP q\x1b\\é"), 2)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		var whole, parts escState
		whole.feed(b)
		if cut < 0 {
			cut = -cut
		}
		if len(b) > 0 {
			cut %= len(b) + 1
		} else {
			cut = 0
		}
		parts.feed(b[:cut])
		parts.feed(b[cut:])
		if whole != parts {
			t.Fatalf("%q cut at %d: %+v, whole %+v", b, cut, parts, whole)
		}
		var e escState
		e.feed(b)
		e.feed([]byte("\x07\x1b\\\x1b[m"))
		e.feed([]byte("\x07\x1b\\\x1b[m"))
		if !e.safe() {
			t.Fatalf("%q then terminators: not safe: %+v", b, e)
		}
	})
}

// In a real terminal (a tmux pane of 120×40), `ferry-lab load -- ferry
// run` keeps the load's live counters on the last row while ferry's TUI
// draws the 39 rows above, keys still reach ferry (q leaves its recap),
// and the recap that follows says how many requests failed.
func TestLoadCountersUnderTUI(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: this test needs a real terminal")
	}
	if testing.Short() {
		t.Skip("builds ferry and ferry-lab")
	}
	dir := t.TempDir()
	buildBins(t, dir)

	// Every fifth request fails, so that the recap has failures to count.
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%5 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	// Two local hosts, one at a time, slow enough to be seen running.
	inv := filepath.Join(dir, "inv")
	// Local hosts keep their release state in the machine's /var/lib/ferry:
	// a name of this test's own, removed after it.
	app := fmt.Sprintf("ferry-lab-screen-%d", os.Getpid())
	pb := filepath.Join(dir, app+".yml")
	t.Cleanup(func() { os.Remove(filepath.Join("/var/lib/ferry", app+".json")) })
	write(t, inv, "[app]\nweb1 ansible_connection=local\nweb2 ansible_connection=local\n")
	write(t, pb, "- hosts: app\n  serial: 1\n  gather_facts: false\n  tasks:\n    - name: Upgrade\n      command: sleep 3\n    - name: Smoke test\n      command: sleep 1\n")

	exitFile := filepath.Join(dir, "exit")
	words := []string{"env", "-u", "TMUX", "LC_ALL=C.UTF-8", "TERM=xterm-256color",
		"FERRY_RECORD_DIR=" + shell.Quote(filepath.Join(dir, "runs")), "HOME=" + shell.Quote(dir),
		shell.Quote(filepath.Join(dir, "ferry-lab")), "load", "--rate", "40", "--url", shell.Quote(srv.URL), "--",
		shell.Quote(filepath.Join(dir, "ferry")), "run", shell.Quote(pb), "-i", shell.Quote(inv)}
	script := strings.Join(words, " ") + fmt.Sprintf(`; echo EXIT=$? > %s; echo "shell after the load: done"; exec sleep 600`, shell.Quote(exitFile))
	p := startPane(t, script)
	tm, waitRows := p.tmux, func(what string, ok func([]string) bool) []string { return p.waitRows(what, time.Minute, ok) }

	counters := regexp.MustCompile(`^ load 40/s through 127\.0\.0\.1:\d+: (\d+) requests, (\d+) failed\s*$`)
	count := func(row string) (int, int) {
		m := counters.FindStringSubmatch(row)
		if m == nil {
			return -1, -1
		}
		req, _ := strconv.Atoi(m[1])
		bad, _ := strconv.Atoi(m[2])
		return req, bad
	}
	// Mid-rollout: a host runs in the TUI above, the counters are the last
	// row, and the TUI's own last row (its keys) is the one above them.
	s := waitRows("a host running above the counters", func(r []string) bool {
		return len(r) == 40 && strings.Contains(strings.Join(r, "\n"), "running") && counters.MatchString(r[39])
	})
	if !strings.Contains(s[38], "quit") && !strings.Contains(s[38], "abort") {
		t.Errorf("ferry's TUI does not end on the row above the counters (its keys line); screen:\n%s", strings.Join(s, "\n"))
	}
	first, _ := count(s[39])
	// The counters are live: they grow while the rollout runs.
	s = waitRows("the counters growing", func(r []string) bool {
		req, bad := count(r[len(r)-1])
		return req > first && bad > 0
	})
	t.Logf("mid-rollout screen:\n%s", strings.Join(s, "\n"))

	// The terminal shrinks: the counters follow its last row and ferry's
	// TUI redraws in the rows above (the pty got the new size).
	tm("resize-window", "-x", "100", "-y", "30")
	s = waitRows("the counters on row 30 of 30, ferry's keys on row 29", func(r []string) bool {
		return len(r) == 30 && counters.MatchString(r[29]) && (strings.Contains(r[28], "quit") || strings.Contains(r[28], "abort"))
	})
	t.Logf("after resizing to 100x30:\n%s", strings.Join(s, "\n"))

	// ferry finishes and shows its recap, counters still below; q (typed
	// on the real terminal, passed through the pty) leaves it.
	waitRows("ferry's recap", func(r []string) bool {
		return strings.Contains(strings.Join(r, "\n"), "RECAP") && counters.MatchString(r[len(r)-1])
	})
	tm("send-keys", "q")
	s = waitRows("the shell after the load", func(r []string) bool {
		return strings.Contains(strings.Join(r, "\n"), "shell after the load: done")
	})
	screen := strings.Join(s, "\n")
	t.Logf("after:\n%s", screen)
	recap := regexp.MustCompile(`== load through 127\.0\.0\.1:\d+ during the run: (\d+) requests, (\d+) failed, p99 `).FindStringSubmatch(screen)
	if recap == nil {
		t.Fatalf("no load recap saying how many requests failed:\n%s", screen)
	}
	if req, _ := strconv.Atoi(recap[1]); req <= first {
		t.Errorf("recap: %s requests, want more than the %d seen mid-rollout", recap[1], first)
	}
	if bad, _ := strconv.Atoi(recap[2]); bad == 0 {
		t.Errorf("recap: 0 failed, but the server failed every fifth request")
	}
	if strings.Contains(screen, " load 40/s through") {
		t.Errorf("the counters row is left on the terminal after the command:\n%s", screen)
	}
	if b, err := os.ReadFile(exitFile); err != nil || strings.TrimSpace(string(b)) != "EXIT=0" {
		t.Errorf("exit: %q %v, want ferry's 0", b, err)
	}
	// The terminal is whole again: margins reset, so the shell's lines
	// scroll the full screen (the last row gets used).
	if alt := strings.TrimSpace(tm("display-message", "-p", "#{alternate_on}")); alt != "0" {
		t.Errorf("the terminal is still on the alternate screen (alternate_on=%s)", alt)
	}
	if lower := strings.TrimSpace(tm("display-message", "-p", "#{scroll_region_lower}")); lower != "29" {
		t.Errorf("scroll region lower = %s, want 29 (the whole 30 rows: margins reset)", lower)
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// built holds ferry and ferry-lab, linked once per test process: both
// terminal tests need them, and linking ferry costs seconds of CPU.
var built struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// buildBins puts ferry and ferry-lab into dir (hard links to the binaries
// built once for the process).
func buildBins(t *testing.T, dir string) {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "ferry-lab-bins-"); built.err != nil {
			return
		}
		for name, pkg := range map[string]string{"ferry": "../../../../../cmd/ferry", "ferry-lab": "."} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			out, err := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(built.dir, name), pkg).CombinedOutput()
			cancel()
			if err != nil {
				built.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	for _, name := range []string{"ferry", "ferry-lab"} {
		if err := os.Link(filepath.Join(built.dir, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// pane is a shell script in a detached 120×40 tmux session on a private
// tmux server, as a real terminal.
type pane struct {
	t    *testing.T
	sock string
}

func startPane(t *testing.T, script string) *pane {
	t.Helper()
	p := &pane{t: t, sock: fmt.Sprintf("ferry-lab-load-%d-%d", os.Getpid(), time.Now().UnixNano())}
	cmd := exec.Command("tmux", "-L", p.sock, "-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "40", script)
	cmd.Env = append(os.Environ(), "TMUX=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	sockPath := strings.TrimSpace(p.tmux("display-message", "-p", "#{socket_path}"))
	t.Cleanup(func() {
		// only this test's server, by its socket
		_ = exec.Command("tmux", "-L", p.sock, "kill-server").Run()
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

// rows is the screen now, one string a row.
func (p *pane) rows() []string {
	return strings.Split(strings.TrimSuffix(p.tmux("capture-pane", "-p"), "\n"), "\n")
}

// waitRows polls the screen until ok accepts it, for at most limit.
func (p *pane) waitRows(what string, limit time.Duration, ok func([]string) bool) []string {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	var r []string
	for time.Now().Before(deadline) {
		if r = p.rows(); ok(r) {
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("the screen never showed %s within %v; last screen:\n%s", what, limit, strings.Join(r, "\n"))
	return nil
}

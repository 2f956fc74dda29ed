package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/internal/testrig/lab"
)

// make demo in a real terminal (scripts/demo.sh on a 2-host lab in a
// 120×40 tmux pane, at 100 requests/s): while ferry's TUI rolls v2 out,
// the load's live counters are the terminal's last row under it; after
// ferry's recap (q), the load's recap says how many requests failed — 0,
// as the demo promises (the load starts once every host is in service).
func TestDemoInTerminal(t *testing.T) {
	if err := lab.Available(); err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: this test needs a real terminal")
	}
	if testing.Short() {
		t.Skip("starts a lab and builds ferry")
	}
	root, err := filepath.Abs("../../../../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	buildBins(t, bin)
	exitFile := filepath.Join(t.TempDir(), "exit")
	script := fmt.Sprintf(`cd %s && env -u TMUX LC_ALL=C.UTF-8 TERM=xterm-256color BIN=%s DEMO_RATE=100 scripts/demo.sh 2; echo EXIT=$? > %s; echo "shell after the demo: done"; exec sleep 600`,
		shell.Quote(root), shell.Quote(bin), shell.Quote(exitFile))
	p := startPane(t, script)

	counters := regexp.MustCompile(`^ load 100/s through the ALB and the ELB: (\d+) requests, (\d+) failed\s*$`)
	s := p.waitRows("the rollout running above the load's counters", 4*time.Minute, func(r []string) bool {
		return len(r) == 40 && strings.Contains(strings.Join(r, "\n"), "running") && strings.Contains(r[0], "deploy.yml") && counters.MatchString(r[39])
	})
	t.Logf("mid-rollout:\n%s", strings.Join(s, "\n"))
	p.waitRows("ferry's recap", 4*time.Minute, func(r []string) bool {
		return strings.Contains(strings.Join(r, "\n"), "RECAP") && counters.MatchString(r[len(r)-1])
	})
	p.tmux("send-keys", "q")
	p.waitRows("the end of the demo", 2*time.Minute, func(r []string) bool {
		return strings.Contains(strings.Join(r, "\n"), "shell after the demo: done")
	})
	hist := p.tmux("capture-pane", "-p", "-S", "-")
	if b, _ := os.ReadFile(exitFile); strings.TrimSpace(string(b)) != "EXIT=0" {
		t.Fatalf("demo: %q, want EXIT=0:\n%s", b, hist)
	}
	m := regexp.MustCompile(`== load through the ALB and the ELB during the run: (\d+) requests, (\d+) failed, p99 `).FindStringSubmatch(hist)
	if m == nil {
		t.Fatalf("the demo's load recap does not say how many requests failed:\n%s", hist)
	}
	if req, _ := strconv.Atoi(m[1]); req == 0 || m[2] != "0" {
		t.Errorf("load during the rollout: %s requests, %s failed; want some, 0 failed:\n%s", m[1], m[2], hist)
	}
	if !strings.Contains(hist, `"version":"v2"`) {
		t.Errorf("the hosts do not report v2 at the end:\n%s", hist)
	}
}

package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/shell"
)

// A SIGKILLed run: `ferry status` names what it left and a resume command
// that works as printed (the record holds the version and -e values); once
// resumed, the line is gone.
func TestStatusResumeCommandWorks(t *testing.T) {
	t.Parallel()
	d := startDeployLab(t, 3)
	victim := ""
	cmd, done := startRun(t, d.env, func(cmd *exec.Cmd, e events.Event) bool {
		if e.Kind == events.TaskEnd && e.Task == "Stop" && e.Status == events.StatusChanged {
			victim = e.Host
			cmd.Process.Signal(syscall.SIGKILL)
			return true
		}
		return false
	}, "run", example("deploy.yml"), "-i", d.Inventory, "-e", "dist="+d.dist, "-e", "version=v2", "-o", "json")
	if code := waitExit(t, cmd, done); code != -1 || victim == "" {
		t.Fatalf("exit %d, victim %q: want the run SIGKILLed after a host stopped", code, victim)
	}
	st := ferry(t, d.env, "status", "-i", d.Inventory)
	m := regexp.MustCompile(`LEFT BY RUN \S+ \(it did not finish\): ` + victim + ` UNIT APP STOPPED; restore with: (.+)`).FindStringSubmatch(st.stdout)
	if m == nil {
		// What the records say (the killed run's intent should be there).
		var recs strings.Builder
		files, _ := filepath.Glob(filepath.Join(d.records, "*.jsonl"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			fmt.Fprintf(&recs, "%s: %d lines, last: %.300s\n", filepath.Base(f), len(lines), lines[len(lines)-1])
			for _, l := range lines {
				if strings.Contains(l, `"event":"intent"`) {
					fmt.Fprintf(&recs, "  %.300s\n", l)
				}
			}
		}
		t.Fatalf("ferry status does not say what the killed run left on %s:\n%s\nrecords in %s:\n%s", victim, st.stdout, d.records, recs.String())
	}
	argv, err := shell.Split(m[1])
	if err != nil || len(argv) < 2 || argv[0] != "ferry" {
		t.Fatalf("resume command %q", m[1])
	}
	if strings.Contains(m[1], " -e ") {
		t.Errorf("the resume command asks for -e again: %q", m[1])
	}
	r := ferry(t, d.env, append(argv[1:], "--output", "plain")...)
	if r.code != 0 {
		t.Fatalf("%s: exit %d\n%s%s", m[1], r.code, r.stdout, r.stderr)
	}
	for _, h := range []string{"app1", "app2", "app3"} {
		if v, _ := d.status(t, h); v != "v2" {
			t.Errorf("%s runs %s after the resume, want v2", h, v)
		}
	}
	if st := ferry(t, d.env, "status", "-i", d.Inventory); strings.Contains(st.stdout, "LEFT BY RUN") {
		t.Errorf("status still lists what the resumed run left:\n%s", st.stdout)
	}
}

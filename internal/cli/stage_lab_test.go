package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/events"
)

// TestLabStage: the example deploy stages the release on every host before
// batch 1, so no upload happens while a host is out of its load balancers:
// each host's window (its deregistration to its registration, from the
// emulator's calls) holds no stage task, the batch's release task copies
// nothing, and the recap reports the window.
func TestLabStage(t *testing.T) {
	t.Parallel()
	d := startAWSDeployLab(t, 4)
	serial1 := filepath.Join(t.TempDir(), "deploy-serial1.yml")
	src, _ := os.ReadFile(example("deploy.yml"))
	os.WriteFile(serial1, []byte(strings.Replace(string(src), `serial: [1, "50%"]`, "serial: 1", 1)), 0o600)
	r := d.run(t, "run", serial1, "-e", "version=v2")
	if r.code != 0 {
		t.Fatalf("deploy v2: exit %d", r.code)
	}
	evs := d.lastRecord(t)
	names := []string{"app1", "app2", "app3", "app4"}
	firstBatch := -1
	staged := map[string]bool{}
	var lastStage events.Event
	for i, e := range evs {
		switch {
		case e.Kind == events.BatchStart && firstBatch < 0:
			firstBatch = i
		case e.Kind == events.StageEnd:
			if e.Status != events.StatusOK || e.Version != "v2" || firstBatch >= 0 {
				t.Errorf("%s: stage_end %s (version %s) at %d, batch 1 at %d", e.Host, e.Status, e.Version, i, firstBatch)
			}
			staged[e.Host] = true
		case e.Kind == events.TaskEnd && e.Stage:
			if e.Status != events.StatusChanged || !strings.Contains(e.Msg, "staged") {
				t.Errorf("%s: stage task %s: %s", e.Host, e.Status, e.Msg)
			}
			lastStage = e
		case e.Kind == events.TaskEnd && e.Task == "Upload release":
			if strings.Contains(e.Msg, "new file") || strings.Contains(e.Msg, "updated") || !strings.Contains(e.Msg, "current -> v2") {
				t.Errorf("%s: the batch's release task copied files: %s", e.Host, e.Msg)
			}
		}
	}
	if len(staged) != len(names) {
		t.Fatalf("staged %v, want every host", staged)
	}
	calls := d.aws.Calls()
	recap := recapOf(t, evs)
	for _, h := range names {
		out := oneCall(t, calls, "DeregisterTargets", h)
		back := oneCall(t, calls, "RegisterTargets", h)
		if !lastStage.Time.Before(out.Time) {
			t.Errorf("%s left its target group at %s, before the last stage task ended at %s", h, out.Time.Format("15:04:05.000"), lastStage.Time.Format("15:04:05.000"))
		}
		// The recap's window covers the emulator's and is not the whole run.
		window := back.Time.Sub(out.Time)
		if rc := recap[h]; rc.OutOfService < window || rc.OutOfService <= 0 {
			t.Errorf("%s: recap says out of service %s, the load balancer saw %s", h, rc.OutOfService, window)
		}
		t.Logf("%s: out of service %s (target group: %s)", h, recap[h].OutOfService, window)
	}
	if !strings.Contains(r.stdout, "out of service") || !strings.Contains(r.stdout, "STAGED v2") {
		t.Errorf("plain output lacks the stage lines or the window:\n%s", r.stdout)
	}
}

package playbooks

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
)

// writeRecord writes evs as a record named after the run, plus a torn
// last line when torn (a run killed mid-write).
func writeRecord(t *testing.T, dir string, torn bool, evs ...events.Event) {
	t.Helper()
	var b strings.Builder
	for _, e := range evs {
		j, _ := json.Marshal(e)
		b.Write(j)
		b.WriteByte('\n')
	}
	if torn {
		b.WriteString(`{"event":"task_st`)
	}
	if err := os.WriteFile(filepath.Join(dir, evs[0].RunID+".jsonl"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadJournal(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pb := filepath.Join(dir, "deploy.yml")
	undo := &events.Undo{Module: "systemd", Args: map[string]any{"name": "app", "state": "started"}}
	// An older run that finished, and a killed one: app1 done, app2 left
	// drained and stopped (its drain undone, its stop not), app3 untouched.
	writeRecord(t, dir, false,
		events.Event{Time: t0, RunID: "old", Kind: events.RunStart, Playbook: pb},
		events.Event{Time: t0, RunID: "old", Kind: events.RunEnd, Status: events.StatusOK})
	writeRecord(t, dir, true,
		events.Event{Time: t0.Add(time.Hour), RunID: "killed", Kind: events.RunStart, Playbook: pb, Version: "v2"},
		events.Event{RunID: "killed", Kind: events.PlayStart, Play: "p", Hosts: []string{"app1", "app2", "app3"}},
		events.Event{RunID: "killed", Kind: events.HostStart, Host: "app1", Tasks: []string{"a", "b"}},
		events.Event{RunID: "killed", Kind: events.HostEnd, Host: "app1", Status: events.StatusChanged},
		events.Event{RunID: "killed", Kind: events.Intent, Host: "app2", Change: "elb", Msg: "out of load balancer", Undo: undo},
		events.Event{RunID: "killed", Kind: events.Intent, Host: "app2", Change: "unit:app", Msg: "unit app stopped", Undo: undo},
		events.Event{RunID: "killed", Kind: events.Undone, Host: "app2", Change: "elb"})
	r, err := LoadJournal(dir, "", pb, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.RunID != "killed" || r.Version != "v2" {
		t.Fatalf("picked %s (version %s), want the killed run", r.RunID, r.Version)
	}
	if !r.done["p"]["app1"] || r.done["p"]["app2"] || r.done["p"]["app3"] {
		t.Errorf("done: %v", r.done)
	}
	if got := r.open["app2"].left(); got != "unit app stopped" {
		t.Errorf("app2 left %q", got)
	}
	if got := r.skipDone(&Play{Name: "p"}, [][]string{{"app1"}, {"app2", "app3"}}); len(got) != 1 || len(got[0]) != 2 {
		t.Errorf("batches without done hosts: %v", got)
	}

	// Once a run resumed it, it is not picked again; a finished run never is.
	writeRecord(t, dir, false,
		events.Event{Time: t0.Add(2 * time.Hour), RunID: "resume", Kind: events.RunStart, Playbook: pb, ResumeOf: "killed"},
		events.Event{Time: t0.Add(2 * time.Hour), RunID: "resume", Kind: events.RunEnd, Status: events.StatusOK})
	if _, err := LoadJournal(dir, "", pb, ""); err == nil || !strings.Contains(err.Error(), "nothing to resume") {
		t.Errorf("after the resume: %v", err)
	}
	if _, err := LoadJournal(dir, "killed", pb, ""); err == nil || !strings.Contains(err.Error(), "already resumed") {
		t.Errorf("resuming a resumed run: %v", err)
	}
	if _, err := LoadJournal(dir, "nope", pb, ""); err == nil || !strings.Contains(err.Error(), "no such run") {
		t.Errorf("unknown run: %v", err)
	}
}

package playbooks

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
)

// stage runs on every host before batch 1; what it sets, the host's tasks see.
func TestRunnerStageBeforeBatches(t *testing.T) {
	res, rec := runPB(t, `
- hosts: app
  serial: 1
  stage:
    - name: Stage artifact
      set_fact: {artifact: "a-{{ inventory_hostname }}"}
  tasks:
    - fail: {msg: "artifact {{ artifact }}"}
      when: "artifact != 'a-' + inventory_hostname"
`, 3, nil)
	if res.ExitCode != exitcode.OK {
		t.Fatalf("exit %d", res.ExitCode)
	}
	firstBatch := -1
	staged := map[string]int{}
	for i, e := range rec.evs {
		switch {
		case e.Kind == events.BatchStart && firstBatch < 0:
			firstBatch = i
		case e.Kind == events.StageEnd:
			if e.Status != events.StatusOK {
				t.Errorf("%s: stage %s: %s", e.Host, e.Status, e.Msg)
			}
			staged[e.Host] = i
		case e.Kind == events.TaskEnd && e.Task == "Stage artifact" && !e.Stage:
			t.Errorf("%s: a stage task's events are not marked Stage", e.Host)
		}
	}
	if len(staged) != 3 {
		t.Fatalf("staged %v, want every host", staged)
	}
	for h, i := range staged {
		if i > firstBatch {
			t.Errorf("%s staged after batch 1 started", h)
		}
	}
}

// A failed stage halts before any batch: nothing is taken out of service,
// and no rollback runs.
func TestRunnerStageFailureHalts(t *testing.T) {
	res, rec := runPB(t, `
- hosts: app
  serial: 1
  stage:
    - fail: {msg: "no space left"}
      when: "inventory_hostname == 'h2'"
  tasks:
    - debug: {msg: deploy}
  rollback:
    - debug: {msg: undo}
`, 3, nil)
	if res.ExitCode != exitcode.Failed {
		t.Fatalf("exit %d", res.ExitCode)
	}
	if n := len(rec.kinds(events.BatchStart)); n != 0 {
		t.Errorf("%d batches started after a failed stage", n)
	}
	for _, e := range rec.kinds(events.TaskEnd) {
		if e.Rollback {
			t.Errorf("%s rolled back after a failed stage", e.Host)
		}
	}
	end := rec.kinds(events.RunEnd)[0]
	if !strings.Contains(end.Msg, "stage failed on 1 host(s) (h2)") {
		t.Errorf("run message %q", end.Msg)
	}
	var h2 events.Event
	for _, e := range rec.kinds(events.HostEnd) {
		if e.Host == "h2" {
			h2 = e
		}
	}
	if h2.Status != events.StatusFailed || !strings.Contains(h2.Msg, "no space left") {
		t.Errorf("h2 ended %s: %q", h2.Status, h2.Msg)
	}
}

// A resumed run does not stage again the hosts its predecessor staged for
// the same version.
func TestRunnerResumeSkipsStagedHosts(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pbPath := filepath.Join(dir, "deploy.yml")
	writeRecord(t, dir, true,
		events.Event{Time: t0, RunID: "killed", Kind: events.RunStart, Playbook: pbPath, Version: "v2"},
		events.Event{RunID: "killed", Kind: events.PlayStart, Play: "p", Hosts: []string{"h1", "h2"}},
		events.Event{RunID: "killed", Kind: events.StageEnd, Host: "h1", Status: events.StatusOK, Version: "v2"},
		events.Event{RunID: "killed", Kind: events.StageEnd, Host: "h2", Status: events.StatusFailed, Version: "v2"})
	r, err := LoadJournal(dir, "", pbPath, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.stagedBy("p", "h1", "v2") != "killed" || r.stagedBy("p", "h2", "v2") != "" || r.stagedBy("p", "h1", "v3") != "" {
		t.Fatalf("staged %v", r.staged)
	}
	_, rec := runPB(t, `
- name: p
  hosts: app
  stage:
    - name: Upload
      debug: {msg: upload}
  tasks:
    - debug: {msg: deploy}
`, 2, func(o *Options) { o.Resume, o.Version = r, "v2" })
	got := map[string]events.Status{}
	for _, e := range rec.kinds(events.StageEnd) {
		got[e.Host] = e.Status
	}
	if got["h1"] != events.StatusSkipped || got["h2"] != events.StatusOK {
		t.Errorf("stage on resume: %v, want h1 skipped, h2 staged", got)
	}
	for _, e := range rec.kinds(events.TaskStart) {
		if e.Stage && e.Host == "h1" {
			t.Errorf("h1 staged again")
		}
	}
}

// ferry check refuses, in stage:, any module whose Spec says it changes
// service state; preparing modules load.
func TestLoadStageRefusesServiceChanges(t *testing.T) {
	_, err := Parse("deploy.yml", []byte(`
- hosts: app
  stage:
    - copy: {src: a, dest: /opt/a}
    - shell: tar xf /opt/a
    - systemd: {name: app, state: stopped}
    - elb: {state: drained}
    - docker: {name: app, image: "app:2"}
    - haproxy: {state: drain, host: web1}
  tasks:
    - systemd: {name: app, state: restarted}
`))
	if err == nil {
		t.Fatal("loaded")
	}
	msg := err.Error()
	for _, want := range []string{"deploy.yml:6:7", "stage: systemd changes the state of a running service", "deploy.yml:7:7", "stage: elb takes hosts in or out of service",
		"stage: docker", "stage: haproxy", "move it to `tasks:`"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	for _, bad := range []string{":4:", ":5:", ":11:"} {
		if strings.Contains(msg, "deploy.yml"+bad) {
			t.Errorf("a preparing task or a batch task was refused (%s):\n%s", bad, msg)
		}
	}
}

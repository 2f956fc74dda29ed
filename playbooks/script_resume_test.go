package playbooks

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/tasks"
)

// More of the runner's rules over the scripted connection (script_test.go)
// with the fx_run/fx_stop/fx_start modules (fake_test.go), whose commands
// are exactly what the test names: what --resume undoes, in which order
// and by whose word, what it skips (finished hosts, staged hosts), a killed
// run's torn record, any_errors_fatal, handler order, a rollback that goes
// on past a failed task.

// newFleet is a script where each of fail ("host: cmd", or "cmd" on every
// host) exits 1.
func newFleet(fail ...string) *script {
	s := &script{}
	for _, f := range fail {
		host, cmd, ok := strings.Cut(f, ": ")
		if !ok {
			host, cmd = "", f
		}
		s.on(host, "^"+regexp.QuoteMeta(cmd)+"$", tasks.Result{ExitCode: 1, Stderr: []byte(cmd + ": failed\n")}, nil)
	}
	return s
}

// ranAny reports whether any host ran a command containing sub.
func ranAny(s *script, sub string) bool { return len(s.ran(regexp.QuoteMeta(sub))) > 0 }

// fleetRun runs the playbook src (written to dir/deploy.yml) as run id on
// hosts h1..hn of the fleet.
func fleetRun(t *testing.T, dir, id, src string, n int, fleet *script, mod func(*Options)) (Result, *recorder) {
	t.Helper()
	path := filepath.Join(dir, "deploy.yml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	pb, err := Parse(path, []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	rec := &recorder{}
	opts := Options{Inventory: hostsInv(t, n), Connector: fleet, Sink: rec, RunID: id, Playbook: path, Version: "v2"}
	if mod != nil {
		mod(&opts)
	}
	return NewRunner(pb, opts).Run(context.Background()), rec
}

func recapOf(res Result) map[string]events.HostRecap {
	m := map[string]events.HostRecap{}
	for _, rc := range res.Recap {
		m[rc.Host] = rc
	}
	return m
}

func hostEnd(rec *recorder, host string) events.Event {
	for _, e := range rec.kinds(events.HostEnd) {
		if e.Host == host {
			return e
		}
	}
	return events.Event{}
}

func wantCmds(t *testing.T, fleet *script, host string, want ...string) {
	t.Helper()
	if got := fleet.cmdsOn(host, ""); !slices.Equal(got, want) {
		t.Errorf("%s ran %q, want %q", host, got, want)
	}
}

const deploySrc = `
- name: deploy
  hosts: app
  serial: 1
  tasks:
    - name: Stop app
      fx_stop: {name: app}
    - name: Install
      fx_run: install {{ run.version }}
    - name: Start app
      fx_start: {name: app}
`

func TestScriptJournalLeavesWhatAFailureLeft(t *testing.T) {
	fleet := newFleet("h2: install v2")
	res, rec := fleetRun(t, t.TempDir(), "r1", deploySrc, 3, fleet, nil)
	if res.ExitCode != exitcode.Failed {
		t.Fatalf("exit %d", res.ExitCode)
	}
	wantCmds(t, fleet, "h1", "stop app", "install v2", "start app")
	wantCmds(t, fleet, "h2", "stop app", "install v2")
	wantCmds(t, fleet, "h3") // the rollout halted after h2
	// The intent precedes the stop, and only h1's is closed.
	var journal []string
	for _, e := range rec.evs {
		if e.Kind == events.Intent || e.Kind == events.Undone {
			journal = append(journal, string(e.Kind)+" "+e.Host+" "+e.Change)
		}
	}
	if want := []string{"intent h1 unit:app", "undone h1 unit:app", "intent h2 unit:app"}; !slices.Equal(journal, want) {
		t.Errorf("journal %q, want %q", journal, want)
	}
	rc := recapOf(res)
	if rc["h1"].Left != events.LeftInService || rc["h2"].Left != "unit app stopped" || !rc["h3"].Untouched {
		t.Errorf("recap %+v", res.Recap)
	}
	if msg := hostEnd(rec, "h2").Msg; !strings.Contains(msg, "left unit app stopped") {
		t.Errorf("h2's end says %q, not what it was left as", msg)
	}
}

// killedRun runs deploySrc with h2's install failing and writes its
// events as run r1's record in dir, cut before its run_end when killed.
func killedRun(t *testing.T, dir, src string, killed bool) {
	t.Helper()
	_, rec := fleetRun(t, dir, "r1", src, 3, newFleet("h2: install v2"), nil)
	evs := rec.evs
	if killed {
		evs = slices.DeleteFunc(slices.Clone(evs), func(e events.Event) bool { return e.Kind == events.RunEnd })
	}
	writeRecord(t, dir, killed, evs...)
}

func resumeRun(t *testing.T, dir, src string, fleet *script) (Result, *recorder) {
	t.Helper()
	j, err := LoadJournal(dir, "", filepath.Join(dir, "deploy.yml"), "")
	if err != nil {
		t.Fatalf("load journal: %v", err)
	}
	if j.RunID != "r1" {
		t.Fatalf("resuming %s, want r1", j.RunID)
	}
	return fleetRun(t, dir, "r2", src, 3, fleet, func(o *Options) { o.Resume = j })
}

func TestScriptResumeRestoresThenGoesOn(t *testing.T) {
	for _, killed := range []bool{false, true} {
		dir := t.TempDir()
		killedRun(t, dir, deploySrc, killed)
		fleet := newFleet()
		res, rec := resumeRun(t, dir, deploySrc, fleet)
		if res.ExitCode != exitcode.OK {
			t.Fatalf("killed=%v: resumed run exit %d: %+v", killed, res.ExitCode, rec.kinds(events.HostEnd))
		}
		wantCmds(t, fleet, "h1") // finished by r1: not deployed again
		// h2 is restored first (its unit started), then deployed whole.
		wantCmds(t, fleet, "h2", "start app", "stop app", "install v2", "start app")
		wantCmds(t, fleet, "h3", "stop app", "install v2", "start app")
		if msg := hostEnd(rec, "h1").Msg; !strings.Contains(msg, "finished by run r1") {
			t.Errorf("killed=%v: h1's end says %q", killed, msg)
		}
		for _, e := range rec.evs {
			if e.Kind == events.TaskEnd && e.Host == "h2" && strings.HasPrefix(e.Task, "Restore: ") && !e.Rollback {
				t.Errorf("the restore task %q is not marked as a rollback", e.Task)
			}
		}
		if rc := recapOf(res); rc["h2"].Left != events.LeftInService || rc["h3"].Left != events.LeftInService {
			t.Errorf("killed=%v: recap %+v", killed, res.Recap)
		}
	}
}

func TestScriptResumeRestoresNewestFirst(t *testing.T) {
	src := `
- name: deploy
  hosts: app
  serial: 1
  tasks:
    - fx_stop: {name: app}
    - fx_stop: {name: worker}
    - fx_run: install {{ run.version }}
    - fx_start: {name: worker}
    - fx_start: {name: app}
`
	dir := t.TempDir()
	killedRun(t, dir, src, true)
	fleet := newFleet()
	if res, _ := resumeRun(t, dir, src, fleet); res.ExitCode != exitcode.OK {
		t.Fatalf("exit %d", res.ExitCode)
	}
	if got := fleet.cmdsOn("h2", ""); len(got) < 2 || got[0] != "start worker" || got[1] != "start app" {
		t.Errorf("h2 ran %q: the restore undoes the newest change first", got)
	}
}

// A record is data: what undoes a change comes from the playbook's task
// that makes it, never from the undo the record names; a change no task
// makes is not undone, and the rollout does not go on.
func TestScriptResumeUndoComesFromThePlaybook(t *testing.T) {
	dir := t.TempDir()
	t0 := events.Event{RunID: "r1", Kind: events.RunStart, Playbook: filepath.Join(dir, "deploy.yml"), Version: "v2"}
	forged := &events.Undo{Module: "fx_run", Args: map[string]any{"cmd": "rm -rf /"}}
	writeRecord(t, dir, true, t0,
		events.Event{RunID: "r1", Kind: events.PlayStart, Play: "deploy", Hosts: []string{"h1", "h2", "h3"}},
		events.Event{RunID: "r1", Kind: events.HostStart, Host: "h1", Tasks: []string{"Stop app", "Install", "Start app"}},
		events.Event{RunID: "r1", Kind: events.Intent, Host: "h1", Change: "unit:app", Msg: "unit app stopped", Undo: forged},
		events.Event{RunID: "r1", Kind: events.Intent, Host: "h1", Change: "unit:ghost", Msg: "unit ghost stopped", Undo: forged})
	// The record has no digest; the runner does not check (Resumed.Check does).
	fleet := newFleet()
	res, _ := resumeRun(t, dir, deploySrc, fleet)
	if ranAny(fleet, "rm -rf") {
		t.Fatalf("ran the record's undo: %v", fleet.log)
	}
	if res.ExitCode != exitcode.Failed {
		t.Errorf("exit %d: a change nothing can undo must stop the rollout", res.ExitCode)
	}
	wantCmds(t, fleet, "h1", "start app") // the playbook's undo, and no deploy after
	wantCmds(t, fleet, "h2")
}

func TestScriptResumeSkipsWhatWasStaged(t *testing.T) {
	src := `
- name: deploy
  hosts: app
  serial: 1
  stage:
    - fx_run: upload {{ run.version }}
  tasks:
    - fx_stop: {name: app}
    - fx_run: install {{ run.version }}
    - fx_start: {name: app}
`
	dir := t.TempDir()
	killedRun(t, dir, src, true)
	fleet := newFleet()
	res, rec := resumeRun(t, dir, src, fleet)
	if res.ExitCode != exitcode.OK {
		t.Fatalf("exit %d", res.ExitCode)
	}
	if ranAny(fleet, "upload") {
		t.Errorf("staged again what r1 staged for v2: %v", fleet.log)
	}
	skipped := 0
	for _, e := range rec.kinds(events.StageEnd) {
		if e.Status == events.StatusSkipped && strings.Contains(e.Msg, "by run r1") {
			skipped++
		}
	}
	if skipped != 2 { // h2 and h3; h1 is finished, so not in the plan
		t.Errorf("%d stage_end skipped by r1, want 2: %+v", skipped, rec.kinds(events.StageEnd))
	}

	// Another version is staged afresh.
	fleet = newFleet()
	j, err := LoadJournal(dir, "r1", filepath.Join(dir, "deploy.yml"), "")
	if err != nil {
		t.Fatal(err)
	}
	fleetRun(t, dir, "r3", src, 3, fleet, func(o *Options) { o.Resume, o.Version = j, "v3" })
	if !ranAny(fleet, "upload v3") {
		t.Errorf("v3 was not staged: %v", fleet.log)
	}
}

func TestScriptAnyErrorsFatalAndMaxFailPercentage(t *testing.T) {
	dir := t.TempDir()
	play := func(rule string) string {
		return `
- hosts: app
  serial: 2
  ` + rule + `
  tasks:
    - fx_run: install
    - fx_run: check
`
	}
	// any_errors_fatal: the failed host's batch mate finishes, no batch follows.
	fleet := newFleet("h1: install")
	res, _ := fleetRun(t, dir, "a", play("any_errors_fatal: true"), 4, fleet, nil)
	if res.ExitCode != exitcode.Failed {
		t.Errorf("any_errors_fatal: exit %d", res.ExitCode)
	}
	wantCmds(t, fleet, "h1", "install")
	wantCmds(t, fleet, "h2", "install", "check")
	wantCmds(t, fleet, "h3")

	// max_fail_percentage: 50 of a batch of 2 is not over 50; both failing is.
	fleet = newFleet("h1: install", "h3: install", "h4: install")
	res, _ = fleetRun(t, dir, "b", play("max_fail_percentage: 50"), 6, fleet, nil)
	if res.ExitCode != exitcode.Failed {
		t.Errorf("max_fail_percentage: exit %d", res.ExitCode)
	}
	wantCmds(t, fleet, "h3", "install")
	wantCmds(t, fleet, "h5") // batch 2 failed whole: halt

	// ignore_errors: the host goes on and counts the failure as ok.
	src := `
- hosts: app
  tasks:
    - fx_run: install
      ignore_errors: true
    - fx_run: check
`
	fleet = newFleet("install")
	res, _ = fleetRun(t, dir, "c", src, 2, fleet, nil)
	if res.ExitCode != exitcode.OK {
		t.Errorf("ignore_errors: exit %d", res.ExitCode)
	}
	wantCmds(t, fleet, "h1", "install", "check")
	if rc := recapOf(res)["h1"]; rc.Failed != 0 || rc.OK != 2 {
		t.Errorf("ignore_errors: recap %+v", rc)
	}
}

func TestScriptHandlersInPlayOrder(t *testing.T) {
	src := `
- hosts: app
  tasks:
    - fx_run: install
      notify: restart
    - fx_run: configure
      notify: [restart, reload]
    - fx_run: probe
      changed_when: false
      notify: never
    - fx_run: verify
  handlers:
    - name: never
      fx_run: never
    - name: reload
      fx_run: reload
    - name: restart
      fx_run: restart
`
	fleet := newFleet("h2: verify")
	res, _ := fleetRun(t, t.TempDir(), "h", src, 2, fleet, nil)
	if res.ExitCode != exitcode.Failed {
		t.Fatalf("exit %d", res.ExitCode)
	}
	// Once each, after the task list, in the order the play lists them;
	// an unchanged task notifies nothing; a failed host runs none.
	wantCmds(t, fleet, "h1", "install", "configure", "probe", "verify", "reload", "restart")
	wantCmds(t, fleet, "h2", "install", "configure", "probe", "verify")
}

func TestScriptRollbackGoesOnPastAFailedTask(t *testing.T) {
	src := `
- hosts: app
  serial: 1
  tasks:
    - fx_stop: {name: app}
    - fx_run: install
    - fx_start: {name: app}
  rollback:
    - fx_run: restore previous
    - fx_start: {name: app}
`
	fleet := newFleet("h1: install", "h1: restore previous")
	res, rec := fleetRun(t, t.TempDir(), "rb", src, 2, fleet, nil)
	if res.ExitCode != exitcode.Failed {
		t.Fatalf("exit %d", res.ExitCode)
	}
	// The rollback runs on the failed host, in the order listed, and goes on
	// past a failed rollback task: its unit is started, so it is in service.
	wantCmds(t, fleet, "h1", "stop app", "install", "restore previous", "start app")
	wantCmds(t, fleet, "h2")
	rc := recapOf(res)["h1"]
	if rc.RolledBack || rc.Left != events.LeftInService {
		t.Errorf("recap %+v: a rollback with a failed task is not a rollback, but the unit is started", rc)
	}
	if msg := hostEnd(rec, "h1").Msg; !strings.Contains(msg, "ROLLBACK FAILED") {
		t.Errorf("h1's end says %q", msg)
	}
}

package report_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/output"
	"github.com/ferrydeploy/ferry/report"
	"github.com/ferrydeploy/ferry/report/reporttest"
)

// sampleRecord is a canary that failed and was rolled back: app1 failed
// its smoke test, two hosts were never touched, the controller drained
// nothing. The hostile task name must stay text.
func sampleRecord(t *testing.T) string {
	t.Helper()
	t0 := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	hosts := []string{"app1", "app2", "app3"}
	evs := []events.Event{
		{Time: at(0), Kind: events.RunStart, RunID: "r1", Playbook: "deploy.yml", Env: "prod", Version: "v2", User: "alice", Origin: "laptop (branch main)", Hosts: hosts},
		{Time: at(1), Kind: events.PlayStart, Play: "deploy", Hosts: hosts, Batches: 2},
		{Time: at(2), Kind: events.TaskStart, Task: "Suspend scaling", Module: "asg"},
		{Time: at(40), Kind: events.TaskEnd, Task: "Suspend scaling", Module: "asg", Status: events.StatusChanged, Msg: "suspended Launch"},
		{Kind: events.Lock, Env: "prod", Status: events.StatusOK, Msg: "taken"}, // the CLI's events carry no time
		{Time: at(41), Kind: events.TaskStart, Host: "app1", Task: "Stage release", Module: "release", Stage: true},
		{Time: at(45), Kind: events.TaskEnd, Host: "app1", Task: "Stage release", Module: "release", Stage: true, Status: events.StatusChanged, Msg: "release v2 staged: copied 1 file"},
		{Time: at(46), Kind: events.StageEnd, Host: "app1", Status: events.StatusOK, Version: "v2"},
		{Time: at(50), Kind: events.BatchStart, Play: "deploy", Batch: 1, Batches: 2, Hosts: []string{"app1"}},
		{Time: at(51), Kind: events.HostStart, Host: "app1", Batch: 1},
		{Time: at(52), Kind: events.TaskStart, Host: "app1", Task: "Upload release", Module: "release"},
		{Time: at(300), Kind: events.TaskEnd, Host: "app1", Task: "Upload release", Module: "release", Status: events.StatusChanged, Msg: "release v2: copied 1 file; current -> v2 (was v1)"},
		{Time: at(301), Kind: events.TaskStart, Host: "app1", Task: "<script>alert(1)</script>", TaskIndex: 1, Module: "http"},
		{Time: at(305), Kind: events.TaskOutput, Host: "app1", Task: "<script>alert(1)</script>", TaskIndex: 1, Line: "connection refused"},
		{Time: at(900), Kind: events.TaskEnd, Host: "app1", Task: "<script>alert(1)</script>", TaskIndex: 1, Module: "http", Status: events.StatusFailed, Msg: "status 500, want 200"},
		{Time: at(901), Kind: events.TaskStart, Host: "app1", Task: "Previous release", Module: "release", Rollback: true},
		{Time: at(950), Kind: events.TaskEnd, Host: "app1", Task: "Previous release", Module: "release", Rollback: true, Status: events.StatusChanged, Msg: "rolled back: current -> v1 (was v2)"},
		{Time: at(960), Kind: events.HostEnd, Host: "app1", Batch: 1, Status: events.StatusRolledBack, Msg: "Smoke test failed; rolled back"},
		{Time: at(700), Kind: events.GateStart, Batch: 1, Hosts: []string{"app1"}, Duration: 5 * time.Second},
		{Time: at(750), Kind: events.GateCheck, Batch: 1, Task: "pages", Module: "http", TaskIndex: 1, Status: events.StatusOK, Msg: "app1: 200 in 2ms"},
		{Time: at(800), Kind: events.GateCheck, Batch: 1, Task: "pages", Module: "http", TaskIndex: 2, Status: events.StatusFailed, Msg: "app1: status 500"},
		{Time: at(850), Kind: events.GateEnd, Batch: 1, Status: events.StatusFailed, Msg: "pages (http) failed: app1: status 500"},
		{Time: at(961), Kind: events.BatchEnd, Play: "deploy", Batch: 1, Batches: 2, Failed: 1, Halted: true},
		{Time: at(970), Kind: events.RunEnd, Status: events.StatusFailed, ExitCode: 2, Recap: []events.HostRecap{
			{Host: "app1", Changed: 2, Failed: 1, RolledBack: true, Left: events.LeftInService, OutOfService: 700 * time.Millisecond},
			{Host: "app2", Untouched: true}, {Host: "app3", Untouched: true}}},
	}
	dir := t.TempDir()
	rec, err := output.NewRecord(dir, "r1")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		rec.Emit(e)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	return rec.Path()
}

func TestBuild(t *testing.T) {
	evs, err := output.ReadRecord(sampleRecord(t))
	if err != nil {
		t.Fatal(err)
	}
	r := report.Build(evs, "r1.jsonl")
	if len(r.Hosts) != 3 || r.Controller == nil || len(r.AWS) != 1 {
		t.Fatalf("hosts %d, controller %v, AWS calls %d", len(r.Hosts), r.Controller, len(r.AWS))
	}
	if got := r.End.Sub(r.Start); got != 970*time.Millisecond {
		t.Errorf("run took %s, want 970ms", got)
	}
	app1 := r.Hosts[0]
	if app1.Status != "rolled_back" || !app1.Failed() || app1.Before != "v1" || app1.After != "v1" || len(app1.Tasks) != 4 {
		t.Errorf("app1: %s failed=%v %s→%s, %d tasks", app1.Status, app1.Failed(), app1.Before, app1.After, len(app1.Tasks))
	}
	if app1.Staged != "ok" || !app1.Tasks[0].Stage || app1.OutOfService != 700*time.Millisecond || r.Stage == nil || r.Stage.End.Sub(r.Stage.Start) != 5*time.Millisecond {
		t.Errorf("app1: staged %q, out of service %s; stage span %+v", app1.Staged, app1.OutOfService, r.Stage)
	}
	if len(r.Gates) != 1 || r.Gates[0].Status != "failed" || len(r.Gates[0].LastChecks()) != 1 || r.Gates[0].LastChecks()[0].TaskIndex != 2 {
		t.Errorf("gates %+v", r.Gates)
	}
	if got := app1.Tasks[2].Output; len(got) != 1 {
		t.Errorf("output of the smoke test: %q", got)
	}
	if r.Hosts[1].Status != "untouched" || r.Hosts[1].Failed() {
		t.Errorf("app2: %s", r.Hosts[1].Status)
	}
	// A record cut anywhere still renders.
	for n := range evs {
		var b bytes.Buffer
		if err := report.Write(&b, report.Build(evs[:n], "")); err != nil {
			t.Fatalf("first %d events: %v", n, err)
		}
	}
}

// TestReportInBrowser loads the page in headless chromium: no console
// error, nothing fetched but the file, one row per host, the failed
// host's bar marked and linked to its output.
func TestReportInBrowser(t *testing.T) {
	record := sampleRecord(t)
	page := filepath.Join(t.TempDir(), "r1.html")
	if err := report.WriteFile(record, page); err != nil {
		t.Fatal(err)
	}
	reporttest.CheckPage(t, page, map[string]string{"app1": "rolled_back", "app2": "untouched", "app3": "untouched"}, "app1")
	b, _ := os.ReadFile(page)
	if strings.Contains(string(b), "<script") {
		t.Error("the page holds a script element: record text was not escaped")
	}
}

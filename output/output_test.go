package output

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
)

func TestPlainAndGitHub(t *testing.T) {
	var b bytes.Buffer
	p := NewPlain(&b, 0, true)
	at := time.Date(2026, 11, 23, 15, 4, 5, 0, time.UTC)
	for _, e := range []events.Event{
		{Kind: events.PlayStart, Play: "deploy", Hosts: []string{"app1", "app2"}, Batches: 2},
		{Kind: events.BatchStart, Batch: 1, Batches: 2, Hosts: []string{"app1"}},
		{Kind: events.TaskOutput, Host: "app1", Line: "hidden at -v0"},
		{Kind: events.TaskEnd, Host: "app1", Task: "Smoke test", Status: events.StatusFailed, Msg: "status 500, want 200", Duration: 1500 * time.Millisecond},
		{Kind: events.BatchEnd, Batch: 1, Batches: 2, Failed: 1, Halted: true},
		{Kind: events.RunEnd, RunID: "r1", Status: events.StatusFailed, ExitCode: 2, Record: ".ferry/runs/r1.jsonl",
			Recap: []events.HostRecap{{Host: "app1", OK: 2, Failed: 1, RolledBack: true}, {Host: "app2", Untouched: true}}},
	} {
		e.Time = at
		p.Emit(e)
	}
	out := b.String()
	for _, want := range []string{
		"::group::batch 1/2: app1",
		"15:04:05 app1     | Smoke test: failed (1.5s): status 500, want 200",
		"::error title=Smoke test failed on app1::status 500, want 200",
		"BATCH 1/2 done: 1 failed — HALTING the rollout",
		"::endgroup::",
		"app1 : ok=2   changed=0   failed=1   skipped=0   unreachable=0  (rolled back)",
		"app2 : ok=0", "(untouched)",
		"run r1: FAILED (exit 2)",
		"record: .ferry/runs/r1.jsonl",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hidden at -v0") {
		t.Error("command output printed without -v")
	}
}

func TestMaskAndRecord(t *testing.T) {
	dir := t.TempDir()
	rec, err := NewRecord(dir, "run1")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMask(rec)
	m.Add("hunter22", "x")
	m.Emit(events.Event{Kind: events.TaskOutput, Host: "a", Line: "password=hunter22 x"})
	m.Emit(events.Event{Kind: events.RunEnd, Status: events.StatusOK})
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	evs, err := ReadRecord(filepath.Join(dir, "run1.jsonl"))
	if err != nil || len(evs) != 2 {
		t.Fatalf("record: %v %v", evs, err)
	}
	if evs[0].Line != "password=******** x" {
		t.Fatalf("not masked: %q", evs[0].Line)
	}
	if _, err := NewRecord(dir, "run1"); err == nil {
		t.Fatal("record overwritten")
	}
}

// The runner adds a play's secrets before every task on every host: the
// mask must keep one entry per distinct value, or every event would walk a
// list that grows with hosts × tasks.
func TestMaskAddIsIdempotent(t *testing.T) {
	var got []events.Event
	m := NewMask(events.SinkFunc(func(e events.Event) { got = append(got, e) }))
	for i := 0; i < 1000; i++ {
		m.Add("hunter22", "s3cret-token")
	}
	if n := len(m.secrets); n != 2 {
		t.Fatalf("mask holds %d entries after adding the same 2 values 1000 times", n)
	}
	tasks := []string{"login hunter22"}
	m.Emit(events.Event{Kind: events.HostStart, Play: "deploy s3cret-token", Version: "v-hunter22", Tasks: tasks, Msg: "pw hunter22"})
	e := got[0]
	for _, s := range []string{e.Play, e.Version, e.Tasks[0], e.Msg} {
		if strings.Contains(s, "hunter22") || strings.Contains(s, "s3cret") {
			t.Errorf("unmasked field: %q", s)
		}
	}
	if tasks[0] != "login hunter22" {
		t.Errorf("Emit rewrote the emitter's slice: %q", tasks[0])
	}
}

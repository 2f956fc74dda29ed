package playbooks

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
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

// Check refuses a resume that would finish a different rollout, saying
// what differs; the same playbook, env, version and hosts pass.
func TestResumedCheckRefusesWhatChanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deploy.yml")
	load := func(src string) *Playbook {
		t.Helper()
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		pb, err := Parse(path, []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return pb
	}
	pb := load(deploySrc)
	r := &Resumed{RunID: "r1", Env: "prod", Version: "v2", Digest: PlaybookDigest(path), plays: []string{"deploy"},
		order: map[string][]string{"deploy": {"h1", "h2"}}, tasks: map[string][]string{"deploy": {"Stop app", "Install", "Start app"}},
		openOrd: []string{"h3"}}
	if err := r.Check(pb, hostsInv(t, 3), "prod", "v2"); err != nil {
		t.Fatalf("the same rollout: %v", err)
	}
	noDigest := *r
	noDigest.Digest = ""
	for _, c := range []struct {
		name     string
		r        *Resumed
		pb       *Playbook
		hosts    int
		env, ver string
		want     string
	}{
		{"env", r, pb, 3, "staging", "v2", `it deployed to env "prod", this run to "staging"`},
		{"no version", r, pb, 3, "prod", "", "without its version: pass the same -e version=v2"},
		{"version", r, pb, 3, "prod", "v3", `it deployed version "v2", this run version "v3"`},
		{"no digest", &noDigest, pb, 3, "prod", "v2", "holds no playbook digest"},
		{"hosts gone", r, pb, 1, "prod", "v2", "no longer in the inventory: h2, h3"},
	} {
		err := c.r.Check(c.pb, hostsInv(t, c.hosts), c.env, c.ver)
		var ie *inputError
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, &ie) {
			t.Errorf("%s: %v, want an input error saying %q", c.name, err, c.want)
		}
	}
	// The playbook changed: its task list (named) or only its text.
	renamed := load(strings.Replace(deploySrc, "name: Install", "name: Install it", 1))
	if err := r.Check(renamed, hostsInv(t, 3), "prod", "v2"); err == nil || !strings.Contains(err.Error(), `the tasks of play "deploy" changed: they were [Stop app, Install, Start app], they are [Stop app, Install it, Start app]`) {
		t.Errorf("renamed task: %v", err)
	}
	edited := load(deploySrc + "# a comment\n")
	if err := r.Check(edited, hostsInv(t, 3), "prod", "v2"); err == nil || !strings.Contains(err.Error(), "changed since") {
		t.Errorf("edited playbook: %v", err)
	}
}

// replan keeps the resumed run's host order (a shuffle stays the same),
// drops hosts no longer planned and deploys new ones after the rest.
func TestResumedReplanKeepsTheOrder(t *testing.T) {
	p := &Play{Name: "deploy"}
	var none *Resumed
	if got := none.replan(p, []string{"h1", "h2"}); !slices.Equal(got, []string{"h1", "h2"}) {
		t.Errorf("not resuming: %v", got)
	}
	r := &Resumed{order: map[string][]string{"deploy": {"h3", "h1", "h2"}}}
	if got := r.replan(p, []string{"h1", "h2", "h4"}); !slices.Equal(got, []string{"h1", "h2", "h4"}) {
		t.Errorf("replan: %v, want h1, h2 (the run's order, h3 gone), then the new h4", got)
	}
	if got := r.replan(&Play{Name: "other"}, []string{"h2", "h1"}); !slices.Equal(got, []string{"h2", "h1"}) {
		t.Errorf("a play the run did not reach: %v", got)
	}
}

// LeftByDeadRuns (ferry status) lists what runs that died left open, and
// forgets it once a later run finished the host or a run resumed it.
func TestLeftByDeadRuns(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	undo := &events.Undo{Module: "systemd", Args: map[string]any{"name": "app", "state": "started"}}
	start := func(id string, at time.Duration, env string, check bool, resumes string) events.Event {
		return events.Event{Time: t0.Add(at), RunID: id, Kind: events.RunStart, Playbook: "deploy.yml", Env: env, Check: check, ResumeOf: resumes}
	}
	intent := func(id, host string) events.Event {
		return events.Event{RunID: id, Kind: events.Intent, Host: host, Change: "unit:app", Msg: "unit app stopped", Undo: undo}
	}
	writeRecord(t, dir, true, start("dead", 0, "", false, ""), intent("dead", "h1"), intent("dead", "h2"),
		events.Event{RunID: "dead", Kind: events.Undone, Host: "h2", Change: "unit:app"})
	writeRecord(t, dir, false, start("check", time.Minute, "", true, ""), intent("check", "h3"))
	writeRecord(t, dir, false, start("prod", 2*time.Minute, "prod", false, ""), intent("prod", "h9"))
	left := func(env string) []string {
		t.Helper()
		out, err := LeftByDeadRuns(dir, env)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, l := range out {
			s = append(s, l.RunID+" "+l.Host+": "+l.Left)
		}
		return s
	}
	// No --env is the environment called default; a --check run changes nothing.
	if got := left("default"); !slices.Equal(got, []string{"dead h1: unit app stopped"}) {
		t.Errorf("default: %q", got)
	}
	if got := left("prod"); !slices.Equal(got, []string{"prod h9: unit app stopped"}) {
		t.Errorf("prod: %q", got)
	}
	// A later run finished h1: what the dead run left there is gone.
	writeRecord(t, dir, false, start("later", 3*time.Minute, "", false, ""),
		events.Event{RunID: "later", Kind: events.HostEnd, Host: "h1", Status: events.StatusChanged})
	if got := left("default"); len(got) != 0 {
		t.Errorf("after a later run finished h1: %q", got)
	}
	// A run that resumed prod's owns what it left.
	writeRecord(t, dir, false, start("resume", 4*time.Minute, "prod", false, "prod"),
		events.Event{Time: t0.Add(4 * time.Minute), RunID: "resume", Kind: events.RunEnd, Status: events.StatusOK})
	if got := left("prod"); len(got) != 0 {
		t.Errorf("after a resume: %q", got)
	}
}

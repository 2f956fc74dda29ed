package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/output"
	"github.com/ferrydeploy/ferry/playbooks"
)

// forgeRecord writes, as a writer of the record directory could, the record
// of a killed run of pb that left change on app1 with the given undo.
func forgeRecord(t *testing.T, dir, runID, pb, digest, change string, undo *events.Undo) string {
	t.Helper()
	t0 := time.Now().UTC().Add(-time.Minute)
	var b strings.Builder
	for _, e := range []events.Event{
		{Time: t0, RunID: runID, Kind: events.RunStart, Playbook: pb, Version: "v1", Digest: digest},
		{Time: t0, RunID: runID, Kind: events.PlayStart, Play: "deploy", Hosts: []string{"app1"}},
		{Time: t0, RunID: runID, Kind: events.HostStart, Host: "app1", Tasks: []string{"stop app", "ship"}},
		{Time: t0, RunID: runID, Kind: events.Intent, Host: "app1", Change: change, Msg: "unit app stopped", Undo: undo},
	} {
		j, _ := json.Marshal(e)
		b.Write(j)
		b.WriteByte('\n')
	}
	p := filepath.Join(dir, runID+".jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// --resume acts on what the playbook says, never on what a record says:
// the undo of a journaled change comes from the playbook's task that makes
// it, a change no task makes is not undone, a record without a digest is
// refused, and so are records another user owns or can write.
func TestLabResumeRecordIsData(t *testing.T) {
	t.Parallel()
	l := lab.StartT(t, lab.Options{Hosts: 1})
	isolate(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	records := filepath.Join(t.TempDir(), "runs")
	if err := os.Mkdir(records, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{"FERRY_KNOWN_HOSTS=" + l.KnownHosts, "FERRY_RECORD_DIR=" + records}
	pb := filepath.Join(t.TempDir(), "deploy.yml")
	os.WriteFile(pb, []byte(`- name: deploy
  hosts: app
  become: true
  tasks:
    - name: stop app
      systemd: {name: app, state: stopped}
      when: false
    - name: ship
      command: "true"
`), 0o600)
	digest := playbooks.PlaybookDigest(pb)
	evil := &events.Undo{Module: "command", Args: map[string]any{"cmd": "touch /tmp/pwned-by-record"}, Become: true}
	pwned := func() bool {
		out, _ := l.Exec(ctx, "app1", "test -e /tmp/pwned-by-record && echo yes")
		return strings.TrimSpace(out) == "yes"
	}
	resume := func(args ...string) result {
		return ferry(t, env, append([]string{"run", pb, "-i", l.Inventory, "-e", "version=v1", "--output", "plain", "--resume"}, args...)...)
	}

	// A change no task of the playbook makes: nothing runs.
	forgeRecord(t, records, "20260101-000001-aaaaa1", pb, digest, "x:anything", evil)
	r := resume("20260101-000001-aaaaa1")
	if pwned() {
		t.Fatal("the resumed run ran the command the record named, as root")
	}
	if r.code == exitcode.OK || !strings.Contains(r.stdout+r.stderr, "no task of") {
		t.Errorf("a change no task makes: exit %d, want a failure saying no task makes it", r.code)
	}

	// A change the playbook makes: undone as the playbook's module says
	// (systemd start), whatever module and args the record names.
	forgeRecord(t, records, "20260101-000002-aaaaa2", pb, digest, "unit:app", evil)
	resume("20260101-000002-aaaaa2")
	if pwned() {
		t.Fatal("the resumed run ran the record's undo instead of the playbook's")
	}
	var undo *events.Undo
	for _, f := range mustGlob(t, filepath.Join(records, "*.jsonl")) {
		evs, _ := output.ReadRecord(f)
		if len(evs) > 0 && evs[0].ResumeOf == "20260101-000002-aaaaa2" {
			for _, e := range evs {
				if e.Kind == events.Intent && e.Change == "unit:app" {
					undo = e.Undo
				}
			}
		}
	}
	if undo == nil || undo.Module != "systemd" || undo.Args["state"] != "started" || undo.Args["name"] != "app" {
		t.Errorf("the resumed run journaled undo %+v, want the playbook's: systemd app started", undo)
	}

	// No digest: refused, not a skipped check.
	forgeRecord(t, records, "20260101-000003-aaaaa3", pb, "", "unit:app", evil)
	if r := resume("20260101-000003-aaaaa3"); r.code != exitcode.Invalid || !strings.Contains(r.stderr, "no playbook digest") {
		t.Errorf("a record without digest: exit %d, stderr %q; want exit 4", r.code, r.stderr)
	}

	// Another user's record, or one others can write: refused by ID, and
	// never picked by a bare --resume.
	other := forgeRecord(t, records, "20260101-000004-aaaaa4", pb, digest, "unit:app", evil)
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if r := resume("20260101-000004-aaaaa4"); r.code != exitcode.Invalid || !strings.Contains(r.stderr, "not by you") {
		t.Errorf("another user's record: exit %d, stderr %q; want exit 4", r.code, r.stderr)
	}
	writable := forgeRecord(t, records, "20260101-000005-aaaaa5", pb, digest, "unit:app", evil)
	os.Chmod(writable, 0o666)
	if r := resume("20260101-000005-aaaaa5"); r.code != exitcode.Invalid || !strings.Contains(r.stderr, "others can write it") {
		t.Errorf("a world-writable record: exit %d, stderr %q; want exit 4", r.code, r.stderr)
	}
	// The newest unfinished run is one of those two: a bare --resume
	// passes over them to the newest run the user may resume.
	os.Chtimes(other, time.Now(), time.Now())
	r = ferry(t, env, "run", pb, "-i", l.Inventory, "-e", "version=v1", "--output", "plain", "--resume")
	if strings.Contains(r.stdout+r.stderr, "aaaaa4") || strings.Contains(r.stdout+r.stderr, "aaaaa5") {
		t.Errorf("a bare --resume considered another user's or a writable record:\n%s%s", r.stdout, r.stderr)
	}
	// A record directory others can write is refused as a whole.
	os.Chmod(records, 0o777)
	if r := resume(); r.code != exitcode.Invalid || !strings.Contains(r.stderr, "others can write the directory") {
		t.Errorf("a world-writable record dir: exit %d, stderr %q; want exit 4", r.code, r.stderr)
	}
	os.Chmod(records, 0o700)
	if pwned() {
		t.Fatal("a resumed run ran the command a record named")
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

package playbooks

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferrydeploy/ferry/events"
)

// The record keeps the run's -e values but the plays' secrets, and
// --resume reads them back: the suggested resume command needs no -e.
func TestRecordKeepsExtraVarsButSecrets(t *testing.T) {
	_, rec := runPB(t, "- hosts: app\n  secrets: [token]\n  tasks:\n    - debug: {msg: hi}\n", 1, func(o *Options) {
		o.Extra = map[string]any{"version": "v9", "dist": "/srv/dist", "token": "s3cret"}
		o.Version = "v9"
	})
	starts := rec.kinds(events.RunStart)
	if len(starts) != 1 {
		t.Fatalf("%d run starts", len(starts))
	}
	got := starts[0].Extra
	if starts[0].Version != "v9" || got["dist"] != "/srv/dist" {
		t.Errorf("extra vars recorded: %v", got)
	}
	if _, ok := got["token"]; ok {
		t.Errorf("a secret reached the record: %v", got)
	}

	dir := t.TempDir()
	f, _ := os.Create(filepath.Join(dir, "20261201-100000-aaaaaa.jsonl"))
	enc := json.NewEncoder(f)
	start := starts[0]
	start.RunID = "20261201-100000-aaaaaa"
	enc.Encode(start)
	f.Close()
	r, err := LoadJournal(dir, "20261201-100000-aaaaaa", start.Playbook, start.Env)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != "v9" || r.Extra["dist"] != "/srv/dist" {
		t.Errorf("resume reads version %q, extra %v", r.Version, r.Extra)
	}
}

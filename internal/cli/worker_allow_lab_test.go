package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/worker"
)

// A queue message is data: the worker runs only what its allow-list lets a
// message ask for (a playbook under --playbook-dir, an allowed and, if
// protected, listed environment, allowed -e names with matching values),
// and logs what a message claims of itself escaped and marked as claimed,
// next to the sender SQS names.
func TestWorkerAllowList(t *testing.T) {
	t.Parallel()
	isolate(t)
	s := startSQS(t, "1", false)
	dir := t.TempDir()
	pbDir := filepath.Join(dir, "playbooks")
	os.Mkdir(pbDir, 0o700)
	// The playbook would leave a mark if it ever ran.
	mark := filepath.Join(dir, "ran")
	pb := "- hosts: localhost\n  tasks:\n    - command: touch " + mark + "\n      delegate_to: localhost\n"
	os.WriteFile(filepath.Join(pbDir, "deploy.yml"), []byte(pb), 0o600)
	outside := filepath.Join(dir, "outside.yml")
	os.WriteFile(outside, []byte(pb), 0o600)
	os.Symlink(outside, filepath.Join(pbDir, "link.yml"))
	cfg := filepath.Join(dir, "ferry.yml")
	os.WriteFile(cfg, []byte("environments:\n  prod: {inventory: inv.ini, protected: true}\n  staging: {inventory: inv.ini}\n  qa: {inventory: inv.ini}\n"), 0o600)
	setTestEnv(t, "FERRY_CONFIG="+cfg)
	records := filepath.Join(dir, "runs")

	send := func(name string, r worker.Request) {
		t.Helper()
		r.Kind, r.DedupID, r.Time = worker.RequestKind, name, time.Now().UTC()
		if r.Who == "" {
			r.Who = "ci"
		}
		body, _ := json.Marshal(r)
		if _, err := s.q.Send(context.Background(), string(body), name, name); err != nil {
			t.Fatal(err)
		}
	}
	refused := []struct {
		name string
		req  worker.Request
		want string
	}{
		{"absolute", worker.Request{Playbook: outside, Environment: "staging"}, "relative to the worker's --playbook-dir"},
		{"dotdot", worker.Request{Playbook: "../outside.yml", Environment: "staging"}, `".." is not allowed`},
		{"symlink", worker.Request{Playbook: "link.yml", Environment: "staging"}, "leads out of the worker's --playbook-dir"},
		{"flag", worker.Request{Playbook: "--check", Environment: "staging"}, "relative to the worker's --playbook-dir"},
		{"protected", worker.Request{Playbook: "deploy.yml", Environment: "prod"}, `environment "prod" is protected`},
		{"unlisted", worker.Request{Playbook: "deploy.yml", Environment: "qa"}, `environment "qa" is not in the worker's --allow-env`},
		{"var-name", worker.Request{Playbook: "deploy.yml", Environment: "staging", ExtraVars: map[string]any{"target": "localhost"}}, "-e target: not a variable"},
		{"var-value", worker.Request{Playbook: "deploy.yml", Environment: "staging", ExtraVars: map[string]any{"version": "v1; rm -rf /"}}, "does not match the worker's --allow-var version="},
		{"var-type", worker.Request{Playbook: "deploy.yml", Environment: "staging", ExtraVars: map[string]any{"version": map[string]any{"a": 1}}}, "not map"},
		{"who", worker.Request{Playbook: "../x.yml", Environment: "staging", Who: "\x1b]0;pwned\x07evil\n::add-mask::x"}, `claims to be from \x1b]0;pwned\x07evil\n::add-mask::x`},
	}
	for _, c := range refused {
		send(c.name, c.req)
	}
	w := startWorker(t, "--queue", s.url, "--visibility", "30s", "--record-dir", records,
		"--playbook-dir", pbDir, "--allow-env", "staging,prod-*")
	for _, c := range refused {
		w.waitLog(t, c.want, time.Minute)
	}
	w.stop(t)
	log := w.out.String()
	if n := strings.Count(log, "worker refused message"); n != len(refused) {
		t.Errorf("%d messages refused, want %d", n, len(refused))
	}
	if strings.Contains(log, "\x1b") || strings.Contains(log, "\n::") {
		t.Errorf("the worker log carries a sender's escape sequence or a line starting with '::'")
	}
	// local-aws-sqs gives every message the same SenderId.
	if !strings.Contains(log, "sent by sqs:ABCDEFGHI1JKLMNOPQ23R, claims to be from ci") {
		t.Errorf("the worker log does not name the SQS sender next to the claimed requester")
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("a refused request ran its playbook")
	}
	if files, _ := filepath.Glob(filepath.Join(records, "*.jsonl")); len(files) != 0 {
		t.Errorf("refused requests left run records: %v", files)
	}
}

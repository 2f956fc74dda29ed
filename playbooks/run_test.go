package playbooks

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/tasks"
)

// These tests drive the runner's rules (batches, failure limits, rollback,
// pauses, tags, loops, retries) with controller-side modules, so no host
// connection is needed; the lab tests in internal/cli cover real hosts.

type nopConn struct{}

func (nopConn) Run(context.Context, string, tasks.RunOptions) (tasks.Result, error) {
	return tasks.Result{}, nil
}
func (nopConn) SFTP(context.Context, string) (*sftp.Client, error) { return nil, fmt.Errorf("no sftp") }
func (nopConn) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, fmt.Errorf("no dial")
}

type nopConnector struct{ unreachable map[string]bool }

func (c nopConnector) Connect(_ context.Context, h *inventory.Host) (tasks.Conn, error) {
	if c.unreachable[h.Name] {
		return nil, fmt.Errorf("%s: cannot reach it", h.Name)
	}
	return nopConn{}, nil
}

type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) Emit(e events.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
}

func (r *recorder) kinds(k events.Kind) []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []events.Event
	for _, e := range r.evs {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func hostsInv(t *testing.T, n int) *inventory.Inventory {
	inv := inventory.New()
	for i := 1; i <= n; i++ {
		inv.AddHost(&inventory.Host{Name: fmt.Sprintf("h%d", i), Vars: map[string]any{}}, "app")
	}
	return inv
}

func runPB(t *testing.T, src string, n int, mod func(*Options)) (Result, *recorder) {
	t.Helper()
	pb, err := Parse("test.yml", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	rec := &recorder{}
	opts := Options{Inventory: hostsInv(t, n), Connector: nopConnector{}, Sink: rec, RunID: "t"}
	if mod != nil {
		mod(&opts)
	}
	return NewRunner(pb, opts).Run(context.Background()), rec
}

func batchesOf(rec *recorder) string {
	var out []string
	for _, e := range rec.kinds(events.BatchStart) {
		out = append(out, strings.Join(e.Hosts, ","))
	}
	return strings.Join(out, " | ")
}

func TestRunnerRollbackCompletedNewestFirst(t *testing.T) {
	res, rec := runPB(t, `
- hosts: app
  serial: 1
  rollback_completed: true
  tasks:
    - fail: {msg: boom}
      when: "inventory_hostname == 'h3'"
  rollback:
    - debug: {msg: "undo {{ inventory_hostname }}"}
`, 4, nil)
	if res.ExitCode != exitcode.Failed {
		t.Fatalf("exit %d", res.ExitCode)
	}
	if got := batchesOf(rec); got != "h1 | h2 | h3" {
		t.Fatalf("batches %q: the rollout did not halt after h3", got)
	}
	var order []string
	for _, e := range rec.kinds(events.TaskEnd) {
		if e.Rollback {
			order = append(order, e.Host)
		}
	}
	// h3 rolls back as the failing host, then the finished hosts newest first.
	if strings.Join(order, ",") != "h3,h2,h1" {
		t.Fatalf("rollback order %v, want h3,h2,h1", order)
	}
	rc := map[string]events.HostRecap{}
	for _, r := range res.Recap {
		rc[r.Host] = r
	}
	if !rc["h1"].RolledBack || !rc["h3"].RolledBack || !rc["h4"].Untouched {
		t.Fatalf("recap %+v", res.Recap)
	}
}

func TestRunnerMaxFailures(t *testing.T) {
	src := `
- hosts: app
  serial: 2
  max_fail_percentage: 100
  max_failures: 1
  tasks:
    - fail: {msg: boom}
      when: "inventory_hostname in extra.bad"
`
	// One failure is within max_failures: 1, every batch runs, the run still fails.
	res, rec := runPB(t, src, 6, func(o *Options) { o.Extra = map[string]any{"bad": []any{"h1"}} })
	if res.ExitCode != exitcode.Failed || batchesOf(rec) != "h1,h2 | h3,h4 | h5,h6" {
		t.Fatalf("exit %d, batches %q", res.ExitCode, batchesOf(rec))
	}
	// Two failures exceed it: halt. A wholly failed batch alone would not (100%).
	res, rec = runPB(t, src, 6, func(o *Options) { o.Extra = map[string]any{"bad": []any{"h1", "h3"}} })
	if res.ExitCode != exitcode.Failed || batchesOf(rec) != "h1,h2 | h3,h4" {
		t.Fatalf("exit %d, batches %q", res.ExitCode, batchesOf(rec))
	}
}

func TestRunnerPauseAfter(t *testing.T) {
	src := `
- hosts: app
  serial: 1
  pause_after: 1
  tasks:
    - debug: {msg: hi}
`
	// Nobody to ask and no --yes: refused before anything runs.
	res, rec := runPB(t, src, 2, nil)
	if res.ExitCode != exitcode.Invalid || len(rec.kinds(events.TaskStart)) != 0 {
		t.Fatalf("exit %d, tasks run %d", res.ExitCode, len(rec.kinds(events.TaskStart)))
	}
	// The operator refuses: batch 2 never starts.
	var asked []string
	res, rec = runPB(t, src, 2, func(o *Options) {
		o.Approve = func(_ context.Context, msg string) (bool, error) { asked = append(asked, msg); return false, nil }
	})
	if res.ExitCode != exitcode.Failed || batchesOf(rec) != "h1" || len(asked) != 1 {
		t.Fatalf("exit %d, batches %q, asked %v", res.ExitCode, batchesOf(rec), asked)
	}
	// --yes approves in advance.
	res, rec = runPB(t, src, 2, func(o *Options) { o.Yes = true })
	if res.ExitCode != 0 || batchesOf(rec) != "h1 | h2" || len(rec.kinds(events.PauseWait)) != 1 {
		t.Fatalf("exit %d, batches %q", res.ExitCode, batchesOf(rec))
	}
}

func TestRunnerTaskKeys(t *testing.T) {
	res, rec := runPB(t, `
- hosts: app
  vars:
    base: 10
  tasks:
    - name: loop and register
      set_fact: {last: "{{ item * base }}"}
      loop: [1, 2, 3]
      register: looped
    - name: registered results
      assert: {that: ["len(looped.results) == 3", "last == 30"]}
    - name: ignored failure
      fail: {msg: nope}
      ignore_errors: true
    - name: failed_when false turns a failure into ok
      fail: {msg: nope}
      failed_when: "false"
    - name: changed_when
      debug: {msg: x}
      changed_when: "true"
    - name: tagged away
      fail: {msg: should not run}
      tags: [slow]
    - name: until gives up
      debug: {msg: x}
      register: r
      until: "false"
      retries: 2
      delay: 1ms
`, 1, func(o *Options) { o.SkipTags = []string{"slow"} })
	if res.ExitCode != exitcode.Failed {
		t.Fatalf("exit %d", res.ExitCode)
	}
	st := map[string]events.Status{}
	for _, e := range rec.kinds(events.TaskEnd) {
		st[e.Task] = e.Status
	}
	want := map[string]events.Status{
		"loop and register": events.StatusOK, "registered results": events.StatusOK,
		"ignored failure": events.StatusFailed, "failed_when false turns a failure into ok": events.StatusOK,
		"changed_when": events.StatusChanged, "until gives up": events.StatusFailed,
	}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("%s: %s, want %s", k, st[k], v)
		}
	}
	if _, ran := st["tagged away"]; ran {
		t.Error("--skip-tags task ran")
	}
	retries := 0
	for _, e := range rec.kinds(events.TaskOutput) {
		if strings.Contains(e.Line, "retrying") {
			retries++
		}
	}
	if retries != 2 {
		t.Errorf("%d retries, want 2", retries)
	}
}

func TestRunnerPreflightUnreachable(t *testing.T) {
	src := "- hosts: app\n  tasks:\n    - debug: {msg: hi}\n"
	res, rec := runPB(t, src, 3, func(o *Options) { o.Connector = nopConnector{unreachable: map[string]bool{"h2": true}} })
	if res.ExitCode != exitcode.Unreachable || len(rec.kinds(events.TaskStart)) != 0 {
		t.Fatalf("exit %d, %d tasks started: an unreachable host must stop the run before anything runs", res.ExitCode, len(rec.kinds(events.TaskStart)))
	}
	res, rec = runPB(t, src, 3, func(o *Options) {
		o.Connector = nopConnector{unreachable: map[string]bool{"h2": true}}
		o.AllowUnreachable = true
	})
	// The reachable hosts are deployed (the unreachable one does not fail
	// the batch under max_fail_percentage 0); exit 3 still says h2 was not.
	if res.ExitCode != exitcode.Unreachable || len(rec.kinds(events.HostEnd)) != 2 {
		t.Fatalf("--allow-unreachable: exit %d, %d hosts ran; want 3 and 2", res.ExitCode, len(rec.kinds(events.HostEnd)))
	}
}

func TestRunnerInterrupt(t *testing.T) {
	pb, err := Parse("t.yml", []byte(`
- hosts: app
  serial: 1
  tasks:
    - pause: {seconds: 30}
  rollback:
    - debug: {msg: undo}
  after:
    - debug: {msg: "after sees {{ run.status }}"}
`))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	r := NewRunner(pb, Options{Inventory: hostsInv(t, 3), Connector: nopConnector{}, Sink: events.SinkFunc(func(e events.Event) {
		rec.Emit(e)
		if e.Kind == events.TaskStart && e.Host == "h1" && !e.Rollback {
			cancel()
		}
	}), Grace: 100 * time.Millisecond})
	res := r.Run(ctx)
	if res.ExitCode != exitcode.Interrupted {
		t.Fatalf("exit %d, want 130", res.ExitCode)
	}
	if got := batchesOf(rec); got != "h1" {
		t.Fatalf("batches after interrupt %q", got)
	}
	var after string
	rolledBack := false
	for _, e := range rec.kinds(events.TaskEnd) {
		if e.Host == "" {
			after = e.Msg
		}
		if e.Host == "h1" && e.Rollback && e.Status == events.StatusOK {
			rolledBack = true // after the grace period ended the running task
		}
	}
	if !rolledBack {
		t.Fatal("the interrupted host did not run its rollback")
	}
	if !strings.Contains(after, "interrupted") {
		t.Fatalf("after task saw %q, want run.status interrupted", after)
	}
}

// A no_log task's failure reason must not reach any event: not its TaskEnd,
// not the host's failure line (HostEnd), not the retry notices.
func TestRunnerNoLogHidesFailureEverywhere(t *testing.T) {
	res, rec := runPB(t, `
- hosts: app
  tasks:
    - name: fetch token
      fail: {msg: "token=s3cr3t-value"}
      no_log: true
      retries: 1
      delay: 1ms
`, 1, nil)
	if res.ExitCode != exitcode.Failed {
		t.Fatalf("exit %d, want %d", res.ExitCode, exitcode.Failed)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	sawHostEnd := false
	for _, e := range rec.evs {
		if strings.Contains(e.Msg, "s3cr3t") || strings.Contains(e.Line, "s3cr3t") {
			t.Errorf("%s event leaks the no_log message: msg=%q line=%q", e.Kind, e.Msg, e.Line)
		}
		if e.Kind == events.HostEnd {
			sawHostEnd = true
			if !strings.Contains(e.Msg, "fetch token") {
				t.Errorf("host_end should still name the failed task: %q", e.Msg)
			}
		}
	}
	if !sawHostEnd {
		t.Fatal("no host_end event")
	}
}

// A secret that is a mapping is masked field by field (debug may print
// db.password alone), and ferry's own credentials never reach env_vars.
func TestRunnerSecretsMaskedLeafByLeaf(t *testing.T) {
	var mu sync.Mutex
	masked := map[string]bool{}
	res, rec := runPB(t, `
- hosts: app
  secrets: [db]
  vars:
    db: {user: app, password: hunter22, ports: [5432]}
  tasks:
    - debug: {msg: "{{ db.password }}"}
    - debug: {msg: "{{ env_vars.FERRY_SSH_KEY ?? 'absent' }} {{ env_vars.FERRY_BECOME_PASSWORD ?? 'absent' }}"}
`, 1, func(o *Options) {
		o.Environ = []string{"FERRY_SSH_KEY=-----BEGIN OPENSSH PRIVATE KEY-----", "FERRY_BECOME_PASSWORD=sudo-pass-123"} // the controller's environment, passed in
		o.Mask = func(vs ...string) {
			mu.Lock()
			defer mu.Unlock()
			for _, v := range vs {
				masked[v] = true
			}
		}
	})
	if res.ExitCode != exitcode.OK {
		t.Fatalf("exit %d", res.ExitCode)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"hunter22", "app", "5432"} {
		if !masked[want] {
			t.Errorf("%q (a field of secret db) is not masked; masked: %v", want, masked)
		}
	}
	ends := rec.kinds(events.TaskEnd)
	if len(ends) != 2 || ends[1].Msg != "absent absent" {
		t.Fatalf("env_vars exposes ferry's credentials to playbooks: %+v", ends)
	}
}

// runOK runs pb, recording its events, and fails the test (logging every
// task's end) unless it exits OK. It returns the hosts each task ran on,
// skips left out.
func runOK(t *testing.T, pb *Playbook, opts Options) map[string][]string {
	t.Helper()
	rec := &recorder{}
	opts.Sink = rec
	res := NewRunner(pb, opts).Run(context.Background())
	if res.ExitCode != exitcode.OK {
		for _, e := range rec.kinds(events.TaskEnd) {
			t.Logf("%s %s %s: %s", e.Host, e.Task, e.Status, e.Msg)
		}
		t.Fatalf("exit %d", res.ExitCode)
	}
	ran := map[string][]string{}
	for _, e := range rec.kinds(events.TaskEnd) {
		if e.Status != events.StatusSkipped {
			ran[e.Task] = append(ran[e.Task], e.Host)
		}
	}
	return ran
}

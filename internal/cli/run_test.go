package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/output"
)

// repoRoot is the module root: tests run in internal/cli. (Not
// runtime.Caller's file: make test builds with -trimpath.)
func repoRoot() string {
	wd, _ := os.Getwd() // "" on an error: the paths below fail, saying which
	return filepath.Join(wd, "..", "..")
}

// buildDist builds the example app once per version into dist/<version>/app.
func buildDist(t *testing.T, versions ...string) string {
	t.Helper()
	dist := t.TempDir()
	for _, v := range versions {
		addBuild(t, dist, v)
	}
	return dist
}

// addBuild puts the example app of version (main.version) in
// dist/VERSION/app: a copy of the one this test process built (each
// version is built once per process, not once per test: the lab tests
// run in parallel and each wants the same few versions).
func addBuild(t *testing.T, dist, version string) {
	t.Helper()
	b, _ := appBuilds.LoadOrStore(version, &appBuild{})
	ab := b.(*appBuild)
	ab.once.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-app-"+version+"-")
		if err != nil {
			ab.err = err
			return
		}
		ab.path = filepath.Join(dir, "app")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version="+version, "-o", ab.path, "./playbooks/examples/app")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			ab.err = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if ab.err != nil {
		t.Fatalf("build app %s: %v", version, ab.err)
	}
	src, err := os.ReadFile(ab.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dist, version), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dist, version, "app"), src, 0o755); err != nil {
		t.Fatal(err)
	}
}

// appBuilds holds, by version, the example app this process built.
var appBuilds sync.Map // string → *appBuild

type appBuild struct {
	once sync.Once
	path string
	err  error
}

// removeAppBuilds deletes the builds (TestMain, after the tests).
func removeAppBuilds() {
	appBuilds.Range(func(_, b any) bool {
		if p := b.(*appBuild).path; p != "" {
			os.RemoveAll(filepath.Dir(p))
		}
		return true
	})
}

// deployLab is a lab with v1 installed on every host by the setup playbook.
type deployLab struct {
	*lab.Lab
	dist    string
	records string
	env     []string
}

func startDeployLab(t *testing.T, hosts int) *deployLab {
	l := lab.StartT(t, lab.Options{Hosts: hosts})
	isolate(t)
	d := &deployLab{Lab: l, dist: buildDist(t, "v1", "v2", "v3-broken"), records: t.TempDir()}
	d.env = []string{"FERRY_KNOWN_HOSTS=" + l.KnownHosts, "FERRY_RECORD_DIR=" + d.records}
	r := d.ferry(t, "run", example("setup.yml"), "-e", "version=v1")
	if r.code != 0 {
		t.Fatalf("setup: exit %d", r.code)
	}
	return d
}

func example(name string) string {
	return filepath.Join(repoRoot(), "playbooks", "examples", name)
}

// ferry runs `ferry ARGS -i <lab inventory> -e dist=... --output plain`.
func (d *deployLab) ferry(t *testing.T, args ...string) result {
	t.Helper()
	args = append(args, "-i", d.Inventory, "-e", "dist="+d.dist, "--output", "plain")
	return ferry(t, d.env, args...)
}

// status asks the app on host for /status, from inside the host (no curl needed).
func (d *deployLab) status(t *testing.T, host string) (version string, pid int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := d.Exec(ctx, host, `exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /status HTTP/1.0\r\nHost: x\r\n\r\n' >&3 && cat <&3 | sed -n '/^{/,$p'`)
	if err != nil {
		return "down", 0
	}
	var s struct {
		Version string `json:"version"`
		PID     int    `json:"pid"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &s); err != nil {
		// Not JSON: the app is still starting (it answers 503 until it is
		// ready); the caller sees version "" and waits or fails.
		t.Logf("%s: /status answered %q", host, out)
		return "", 0
	}
	return s.Version, s.PID
}

// lastRecord reads the newest run record.
func (d *deployLab) lastRecord(t *testing.T) []events.Event {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(d.records, "*.jsonl"))
	if len(files) == 0 {
		t.Fatal("no run record")
	}
	sort.Slice(files, func(i, j int) bool {
		a, _ := os.Stat(files[i])
		b, _ := os.Stat(files[j])
		return a.ModTime().Before(b.ModTime())
	})
	evs, err := output.ReadRecord(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

type span struct{ start, end time.Time }

// hostSpans returns each host's start and end, and the batches, from a record.
func hostSpans(evs []events.Event) (map[string]*span, [][]string) {
	spans := map[string]*span{}
	var batches [][]string
	for _, e := range evs {
		switch e.Kind {
		case events.HostStart:
			spans[e.Host] = &span{start: e.Time}
		case events.HostEnd:
			if s, ok := spans[e.Host]; ok {
				s.end = e.Time
			}
		case events.BatchStart:
			batches = append(batches, e.Hosts)
		}
	}
	return spans, batches
}

func recapOf(t *testing.T, evs []events.Event) map[string]events.HostRecap {
	for _, e := range evs {
		if e.Kind == events.RunEnd {
			m := map[string]events.HostRecap{}
			for _, r := range e.Recap {
				m[r.Host] = r
			}
			return m
		}
	}
	t.Fatal("record has no run_end")
	return nil
}

func TestRollingDeploy(t *testing.T) {
	t.Parallel()
	d := startDeployLab(t, 5)
	names := []string{"app1", "app2", "app3", "app4", "app5"}
	pids := map[string]int{}
	for _, h := range names {
		v, pid := d.status(t, h)
		if v != "v1" {
			t.Fatalf("%s runs %q after setup", h, v)
		}
		pids[h] = pid
	}

	// 1. v1 → v2, serial 1: one host at a time, in inventory order.
	serial1 := filepath.Join(t.TempDir(), "deploy-serial1.yml")
	src, _ := os.ReadFile(example("deploy.yml"))
	os.WriteFile(serial1, []byte(strings.Replace(string(src), `serial: [1, "50%"]`, "serial: 1", 1)), 0o600)
	r := d.ferry(t, "run", serial1, "-e", "version=v2")
	if r.code != 0 {
		t.Fatalf("deploy v2: exit %d", r.code)
	}
	spans, batches := hostSpans(d.lastRecord(t))
	if fmt.Sprint(batches) != "[[app1] [app2] [app3] [app4] [app5]]" {
		t.Fatalf("batches %v, want one host each, in order", batches)
	}
	for i := 1; i < len(names); i++ {
		if spans[names[i]].start.Before(spans[names[i-1]].end) {
			t.Errorf("%s started before %s ended", names[i], names[i-1])
		}
	}
	for _, h := range names {
		v, pid := d.status(t, h)
		if v != "v2" || pid == pids[h] {
			t.Errorf("%s: version %s pid %d (was %d), want v2 in a new process", h, v, pid, pids[h])
		}
		pids[h] = pid
	}

	// A second run changes nothing: every task ok or skipped, the copy skipped by checksum.
	r = d.ferry(t, "run", example("deploy.yml"), "-e", "version=v2")
	if r.code != 0 {
		t.Fatalf("second deploy: exit %d", r.code)
	}
	for h, rc := range recapOf(t, d.lastRecord(t)) {
		if rc.Changed != 0 || rc.Failed != 0 {
			t.Errorf("second run changed %s: %+v", h, rc)
		}
	}
	for _, h := range names {
		if _, pid := d.status(t, h); pid != pids[h] {
			t.Errorf("second run restarted %s", h)
		}
	}

	// 2. serial: [1, "50%"] on 5 hosts gives batches of 1, 2, 2 (back to v1).
	r = d.ferry(t, "run", example("deploy.yml"), "-e", "version=v1")
	if r.code != 0 {
		t.Fatalf("deploy v1: exit %d", r.code)
	}
	spans, batches = hostSpans(d.lastRecord(t))
	if fmt.Sprint(batches) != "[[app1] [app2 app3] [app4 app5]]" {
		t.Fatalf("batches %v, want [[app1] [app2 app3] [app4 app5]]", batches)
	}
	for i := 1; i < len(batches); i++ {
		for _, h := range batches[i] {
			for _, prev := range batches[i-1] {
				if spans[h].start.Before(spans[prev].end) {
					t.Errorf("%s (batch %d) started before %s (batch %d) ended", h, i+1, prev, i)
				}
			}
		}
	}
	for _, h := range names {
		v, pid := d.status(t, h)
		if v != "v1" {
			t.Errorf("%s runs %s, want v1", h, v)
		}
		pids[h] = pid
	}

	// 8. --check prints the plan and changes nothing.
	r = d.ferry(t, "run", example("deploy.yml"), "-e", "version=v2", "--check", "-v")
	if r.code != 0 {
		t.Fatalf("--check: exit %d", r.code)
	}
	if !strings.Contains(r.stdout, "CHECK MODE") || !strings.Contains(r.stdout, "would") {
		t.Errorf("--check output does not show the plan")
	}
	for _, h := range names {
		if v, pid := d.status(t, h); v != "v1" || pid != pids[h] {
			t.Errorf("--check changed %s: %s pid %d", h, v, pid)
		}
	}

	// 3. A broken v3 with serial 1: the canary fails its smoke test, rolls
	// back to v1, the rollout halts, the other hosts are untouched.
	r = d.ferry(t, "run", serial1, "-e", "version=v3-broken")
	if r.code != exitcode.Failed {
		t.Fatalf("broken deploy: exit %d, want 2", r.code)
	}
	if v, pid := d.status(t, "app1"); v != "v1" || pid == pids["app1"] {
		t.Errorf("app1 after rollback: %s pid %d, want v1 restarted", v, pid)
	}
	for _, h := range names[1:] {
		if v, pid := d.status(t, h); v != "v1" || pid != pids[h] {
			t.Errorf("%s was touched: %s pid %d", h, v, pid)
		}
	}
	rc := recapOf(t, d.lastRecord(t))
	if !rc["app1"].RolledBack || rc["app1"].Failed == 0 {
		t.Errorf("recap app1: %+v", rc["app1"])
	}
	for _, h := range names[1:] {
		if !rc[h].Untouched {
			t.Errorf("recap %s not untouched: %+v", h, rc[h])
		}
	}
	if !strings.Contains(r.stdout, "HALTING") || !strings.Contains(r.stdout, "(rolled back, in service)") || !strings.Contains(r.stdout, "(untouched)") {
		t.Errorf("plain output does not say the rollout halted and what happened")
	}
}

func TestMaxFailPercentage(t *testing.T) {
	t.Parallel()
	l := lab.StartT(t, lab.Options{Hosts: 4})
	isolate(t)
	pb := filepath.Join(t.TempDir(), "failing.yml")
	os.WriteFile(pb, []byte(`
- name: some hosts fail
  hosts: app
  serial: 2
  max_fail_percentage: 50
  tasks:
    - name: work
      command: "true"
    - name: bad hosts fail
      fail: {msg: "this host is bad"}
      when: "inventory_hostname in extra.bad"
`), 0o600)
	env := []string{"FERRY_KNOWN_HOSTS=" + l.KnownHosts, "FERRY_RECORD_DIR=" + t.TempDir()}
	// One bad host in a batch of 2 is 50%: not above the limit, the rollout goes on.
	r := ferry(t, env, "run", pb, "-i", l.Inventory, "-o", "plain", "-e", `{"bad": ["app2"]}`)
	if r.code != exitcode.Failed || !strings.Contains(r.stdout, "BATCH 2/2") || strings.Contains(r.stdout, "HALTING") {
		t.Fatalf("one bad host: exit %d; want the rollout to finish with exit 2", r.code)
	}
	// Two bad hosts in one batch is 100%: halt before batch 2.
	r = ferry(t, env, "run", pb, "-i", l.Inventory, "-o", "plain", "-e", `{"bad": ["app1", "app2"]}`)
	if r.code != exitcode.Failed || strings.Contains(r.stdout, "BATCH 2/2") || !strings.Contains(r.stdout, "HALTING") {
		t.Fatalf("two bad hosts: exit %d; want a halt after batch 1", r.code)
	}
}

func TestBadPlaybooksTouchNothing(t *testing.T) {
	t.Parallel()
	isolate(t)
	setTestEnv(t, "FERRY_RECORD_DIR="+t.TempDir())
	dir := t.TempDir()
	// Hosts that do not exist: connecting would fail with exit 3, not 4.
	inv := filepath.Join(dir, "hosts.ini")
	os.WriteFile(inv, []byte("[app]\napp1 ansible_host=127.0.0.1 ansible_port=1\n"), 0o600)
	cases := map[string]struct{ src, want string }{
		"unknown module": {"- hosts: app\n  tasks:\n    - name: x\n      shel: {cmd: ls}\n", "did you mean \"shell\""},
		"typo'd key":     {"- hosts: app\n  seriall: 1\n  tasks:\n    - command: ls\n", "did you mean \"serial\""},
		"wrong type":     {"- hosts: app\n  tasks:\n    - command: ls\n      retries: many\n", ":4:"},
		"undefined var":  {"- hosts: app\n  tasks:\n    - debug: {msg: \"{{ verison }}\"}\n  vars:\n    version: 1\n", "verison"},
		"bad expression": {"- hosts: app\n  tasks:\n    - command: ls\n      when: \"a ==\"\n", ":4:"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			pb := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yml")
			os.WriteFile(pb, []byte(c.src), 0o600)
			r := ferry(t, nil, "run", pb, "-i", inv, "-o", "plain")
			if r.code != exitcode.Invalid || !strings.Contains(r.stderr, pb+":") || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit 4, a position in %s and %q", r.code, r.stderr, pb, c.want)
			}
			if r := ferry(t, nil, "check", pb, "-i", inv); r.code != exitcode.Invalid {
				t.Fatalf("ferry check: exit %d", r.code)
			}
		})
	}
}

// TestSIGTERMDuringRollout runs the real binary and sends it SIGTERM while
// the first batch is in flight: the host finishes or rolls back, no host is
// left stopped, and the exit code is 130.
func TestSIGTERMDuringRollout(t *testing.T) {
	t.Parallel()
	d := startDeployLab(t, 3)
	bin, binEnv := ferryBinary(t)
	// A deploy with a slow smoke test gives the signal time to land mid-host.
	pb := filepath.Join(t.TempDir(), "slow.yml")
	src, _ := os.ReadFile(example("deploy.yml"))
	slow := strings.Replace(string(src), "    - name: Smoke test\n", "    - name: Warm up\n      shell: sleep 2\n    - name: Smoke test\n", 1)
	os.WriteFile(pb, []byte(slow), 0o600)

	cmd := exec.Command(bin, "run", pb, "-i", d.Inventory, "-e", "dist="+d.dist, "-e", "version=v2", "-o", "json")
	cmd.Env = append(append(os.Environ(), d.env...), binEnv...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	signalled := false
	for sc.Scan() {
		var e events.Event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		t.Logf("%s %s %s %s %s %s", e.Time.Format("15:04:05.000"), e.Kind, e.Host, e.Task, e.Status, e.Msg)
		if !signalled && e.Kind == events.TaskStart && e.Task == "Warm up" {
			cmd.Process.Signal(syscall.SIGTERM)
			signalled = true
		}
	}
	err := cmd.Wait()
	if !signalled {
		t.Fatal("the run never reached the Warm up task")
	}
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitcode.Interrupted {
		t.Fatalf("exit %v, want 130", err)
	}
	for _, h := range []string{"app1", "app2", "app3"} {
		if v, _ := d.status(t, h); v == "down" {
			t.Errorf("%s left stopped", h)
		}
	}
	rc := recapOf(t, d.lastRecord(t))
	if !rc["app1"].RolledBack && rc["app1"].Failed == 0 {
		t.Logf("app1 finished its task list before stopping: %+v", rc["app1"])
	}
	if !rc["app2"].Untouched || !rc["app3"].Untouched {
		t.Errorf("hosts after the interrupted batch were touched: %+v %+v", rc["app2"], rc["app3"])
	}
}

package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/testrig/lab"
)

// These tests drive environments end to end on a lab (issue 9's acceptance):
// ferry.yml, branches and guard rails, the deploy lock, the release state on
// the hosts, status, promote and history.

// envLab is a deploy lab with groups per environment and a ferry.yml:
// dev_ben (app1, app2), dev_ann (app3), staging (app4-app6), prod (app7).
type envLab struct {
	*deployLab
	config string
	dir    string
}

var envGroups = map[string][]string{
	"dev_ben": {"app1", "app2"},
	"dev_ann": {"app3"},
	"staging": {"app4", "app5", "app6"},
	"prod":    {"app7"},
}

// envInventory writes the lab's inventory with a group per environment;
// extra moves hosts into more groups (a host that joined an environment).
func envInventory(t *testing.T, l *lab.Lab, path string, extra map[string][]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("all:\n  children:\n    app:\n      children:\n")
	addr := map[string]string{}
	for _, h := range l.Hosts {
		addr[h.Name] = h.Addr
	}
	for _, g := range []string{"dev_ben", "dev_ann", "staging", "prod"} {
		fmt.Fprintf(&b, "        %s:\n          hosts:\n", g)
		for _, h := range append(append([]string{}, envGroups[g]...), extra[g]...) {
			fmt.Fprintf(&b, "            %s: {ansible_host: %s}\n", h, addr[h])
		}
	}
	fmt.Fprintf(&b, "      vars:\n        ansible_user: %s\n        ansible_ssh_private_key_file: %s\n        ansible_ssh_common_args: %s\n",
		l.User, strconv.Quote(l.KeyFile), strconv.Quote("-F "+l.SSHConfig+" -J "+l.JumpSpec()))
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func startEnvLab(t *testing.T) *envLab {
	d := startDeployLab(t, 7)
	dir := t.TempDir()
	envInventory(t, d.Lab, filepath.Join(dir, "hosts.yml"), nil)
	cfg := filepath.Join(dir, "ferry.yml")
	os.WriteFile(cfg, []byte(`environments:
  staging: {inventory: hosts.yml, limit: staging}
  prod:    {inventory: hosts.yml, limit: prod, protected: true}
personal:
  branch_pattern: '^(?:remote-run|dev)/(?P<user>[a-z0-9-]+)/'
  env: 'dev-{{ user }}'
  inventory: hosts.yml
  limit: 'dev_{{ user }}'
`), 0o600)
	e := &envLab{deployLab: d, config: cfg, dir: dir}
	e.env = append(e.env, "FERRY_CONFIG="+cfg)
	return e
}

// run runs ferry with the lab's environment: ferry.yml, known_hosts, records.
func (e *envLab) run(t *testing.T, args ...string) result {
	t.Helper()
	return ferry(t, e.env, append(args, "-e", "dist="+e.dist, "--output", "plain")...)
}

func (e *envLab) versions(t *testing.T) map[string]string {
	out := map[string]string{}
	for _, h := range e.Hosts {
		out[h.Name], _ = e.status(t, h.Name)
	}
	return out
}

func wantVersions(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	for h, v := range want {
		if got[h] != v {
			t.Errorf("%s runs %q, want %q (all: %v)", h, got[h], v, got)
		}
	}
}

// statusJSON runs `ferry status --env env -o json`.
func (e *envLab) statusJSON(t *testing.T, env string) envStatus {
	t.Helper()
	r := ferry(t, e.env, "status", "--env", env, "-o", "json")
	var st envStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status json: %v\n%s", err, r.stdout)
	}
	return st
}

func TestEnvironments(t *testing.T) {
	t.Parallel()
	e := startEnvLab(t)
	deploy := example("deploy.yml")

	// 1. A personal branch deploys only Ben's hosts.
	r := e.run(t, "run", deploy, "--branch", "remote-run/ben/x", "-e", "version=v2")
	if r.code != 0 {
		t.Fatalf("personal deploy: exit %d", r.code)
	}
	if !strings.Contains(r.stdout, "env dev-ben") {
		t.Errorf("the run header does not name env dev-ben")
	}
	wantVersions(t, e.versions(t), map[string]string{"app1": "v2", "app2": "v2", "app3": "v1", "app4": "v1", "app7": "v1"})

	// The branch comes from the CI's variables when --branch is absent.
	r = ferry(t, append(e.env, "GITHUB_HEAD_REF=", "GITHUB_REF_NAME=", "CI_COMMIT_REF_NAME=dev/ann/feature", "BRANCH_NAME=", "BUILDKITE_BRANCH="),
		"run", deploy, "-e", "version=v2", "-e", "dist="+e.dist, "--output", "plain")
	if r.code != 0 {
		t.Fatalf("CI branch deploy: exit %d", r.code)
	}
	setTestEnv(t, "CI_COMMIT_REF_NAME=")
	wantVersions(t, e.versions(t), map[string]string{"app3": "v2", "app4": "v1"})

	// Guard rails: each refusal is exit 4, says what to do, and touches nothing.
	refusals := []struct {
		args []string
		want string
	}{
		{[]string{"--branch", "main"}, "matches no personal pattern"},
		{[]string{"--branch", "dev/prod/x"}, `names environment "prod"`},
		{[]string{"--env", "prod"}, "pass --yes"},
		{[]string{"--env", "stagign"}, `did you mean "staging"?`},
	}
	for _, c := range refusals {
		r := e.run(t, append([]string{"run", deploy, "-e", "version=v3-broken"}, c.args...)...)
		if r.code != exitcode.Invalid || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 4 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
	if r := e.run(t, "run", deploy, "--branch", "main"); !strings.Contains(r.stderr, `^(?:remote-run|dev)/(?P<user>[a-z0-9-]+)/`) {
		t.Errorf("the refusal of main does not list the pattern: %q", r.stderr)
	}
	// A pattern whose env renders to a named environment is refused.
	bad := filepath.Join(e.dir, "bad.yml")
	os.WriteFile(bad, []byte("environments:\n  staging: {inventory: hosts.yml, limit: staging}\npersonal:\n  branch_pattern: '^dev/(?P<user>[a-z]+)/'\n  env: '{{ user }}'\n  inventory: hosts.yml\n  limit: staging\n"), 0o600)
	if r := e.run(t, "run", deploy, "--config", bad, "--branch", "dev/staging/x", "-e", "version=v3-broken"); r.code != exitcode.Invalid {
		t.Errorf("a branch rendering to a named environment: exit %d", r.code)
	}
	// A bad ferry.yml: positioned, with a did-you-mean.
	os.WriteFile(bad, []byte("environments:\n  staging: {inventroy: hosts.yml}\n"), 0o600)
	if r := e.run(t, "run", deploy, "--config", bad, "--env", "staging"); r.code != exitcode.Invalid ||
		!strings.Contains(r.stderr, bad+":2:13: unknown key") || !strings.Contains(r.stderr, `did you mean "inventory"?`) {
		t.Errorf("bad ferry.yml: exit %d, stderr %q", r.code, r.stderr)
	}
	wantVersions(t, e.versions(t), map[string]string{"app4": "v1", "app7": "v1"})

	// 3. A half-failed rollout on staging: app6 cannot deploy.
	if _, err := e.Exec(context.Background(), "app6", "touch /etc/broken"); err != nil {
		t.Fatal(err)
	}
	pb := filepath.Join(e.dir, "deploy.yml")
	src, _ := os.ReadFile(deploy)
	serial := strings.Replace(string(src), `serial: [1, "50%"]`, "serial: 1\n  order: sorted", 1)
	serial = strings.Replace(serial, "  tasks:\n", "  tasks:\n    - name: Host is sound\n      shell: test ! -e /etc/broken\n      changed_when: false\n", 1)
	os.WriteFile(pb, []byte(serial), 0o600)
	r = e.run(t, "run", pb, "--env", "staging", "-e", "version=v2")
	if r.code != exitcode.Failed {
		t.Fatalf("half-failed rollout: exit %d, want 2", r.code)
	}
	failedRun := runIDOf(t, r.stdout)
	wantVersions(t, e.versions(t), map[string]string{"app4": "v2", "app5": "v2", "app6": "v1"})
	st := e.statusJSON(t, "staging")
	if st.Versions["demo"] != "v2" {
		t.Errorf("majority %v", st.Versions)
	}
	got := map[string]string{}
	for _, h := range st.Hosts {
		got[h.Host] = h.Releases["demo"].Version
		if want := h.Host == "app6"; want != (len(h.Drift) > 0) {
			t.Errorf("%s: drift %v", h.Host, h.Drift)
		}
	}
	if got["app4"] != "v2" || got["app5"] != "v2" || got["app6"] != "v1" || len(st.Hosts) != 3 {
		t.Errorf("status versions %v", got)
	}
	if rel := st.Hosts[0].Releases["demo"]; rel.Env != "staging" || rel.RunID != failedRun || rel.User == "" || rel.Time.IsZero() || rel.Extra["dist"] != e.dist {
		t.Errorf("release record of app4: %+v", rel)
	}
	r = ferry(t, e.env, "status", "--env", "staging")
	if !regexp.MustCompile(`(?m)^app6\s+demo\s+v1\s.*DRIFT`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^app4\s+demo\s+v2\s.*ok`).MatchString(r.stdout) {
		t.Errorf("status table:\n%s", r.stdout)
	}
	// The state file is root's, private, and was replaced atomically (no temp left).
	out, err := e.Exec(context.Background(), "app4", "stat -c '%U %a' /var/lib/ferry/demo.json; ls -A /var/lib/ferry")
	if err != nil || !strings.HasPrefix(out, "root 600\n") || strings.Contains(out, ".tmp") {
		t.Errorf("state file: %q %v", out, err)
	}

	// promote refuses a drifted source, and touches nothing.
	r = e.run(t, "promote", "--from", "staging", "--to", "prod", "--yes", pb)
	if r.code != exitcode.Invalid || !strings.Contains(r.stderr, "drifted") || !strings.Contains(r.stderr, "v1 on app6") {
		t.Errorf("promote from a drifted source: exit %d, stderr %q", r.code, r.stderr)
	}
	wantVersions(t, e.versions(t), map[string]string{"app7": "v1"})

	// Fixed, staging converges; promote deploys exactly its release to prod.
	e.Exec(context.Background(), "app6", "rm -f /etc/broken")
	if r := e.run(t, "run", pb, "--env", "staging", "-e", "version=v2"); r.code != 0 {
		t.Fatalf("staging: exit %d", r.code)
	}
	r = e.run(t, "promote", "--from", "staging", "--to", "prod", pb)
	if r.code != exitcode.Invalid || !strings.Contains(r.stderr, "pass --yes") {
		t.Errorf("promote to protected prod without --yes: exit %d", r.code)
	}
	r = e.run(t, "promote", "--from", "staging", "--to", "prod", "--yes", pb)
	if r.code != 0 {
		t.Fatalf("promote: exit %d", r.code)
	}
	promoteRun := runIDOf(t, r.stdout)
	wantVersions(t, e.versions(t), map[string]string{"app7": "v2", "app1": "v2", "app3": "v2"})
	if p := e.statusJSON(t, "prod"); len(p.Hosts) != 1 || p.Hosts[0].Releases["demo"].Version != "v2" || p.Hosts[0].Releases["demo"].Env != "prod" {
		t.Errorf("prod status: %+v", p)
	}

	// 4. history: the runs above with their outcomes.
	r = ferry(t, e.env, "history", "-o", "json", "-n", "0")
	var runs []runSummary
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil {
		t.Fatalf("history json: %v", err)
	}
	byID := map[string]runSummary{}
	for _, h := range runs {
		byID[h.RunID] = h
	}
	if f := byID[failedRun]; f.Outcome != "failed" || f.Env != "staging" || strings.Join(f.FailedHosts, ",") != "app6" || f.Version != "v2" {
		t.Errorf("history of the failed run: %+v", f)
	}
	if p := byID[promoteRun]; p.Outcome != "ok" || p.Env != "prod" || p.Version != "v2" {
		t.Errorf("history of promote: %+v", p)
	}
	r = ferry(t, e.env, "history", "--env", "staging")
	if n := strings.Count(r.stdout, " staging "); n != 2 || !regexp.MustCompile(failedRun+`.*failed.*app6`).MatchString(r.stdout) {
		t.Errorf("history --env staging (%d rows):\n%s", n, r.stdout)
	}
	r = ferry(t, e.env, "history", failedRun)
	if r.code != 0 || !regexp.MustCompile(`(?m)^app6: rolled_back|^app6: failed`).MatchString(r.stdout) || !strings.Contains(r.stdout, "Host is sound") {
		t.Errorf("history RUN_ID:\n%s", r.stdout)
	}
}

var runIDRe = regexp.MustCompile(`ferry run (\d{8}-\d{6}-[0-9a-f]{6})`)

func runIDOf(t *testing.T, stdout string) string {
	t.Helper()
	m := runIDRe.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no run id in output:\n%s", stdout)
	}
	return m[1]
}

// inProcess runs ferry in this process with the test's environment
// (commandEnv), without logging (for concurrent runs).
func inProcess(t *testing.T, ctx context.Context, args ...string) result {
	var out, errb strings.Builder
	code := runEnv(ctx, args, commandEnv(t), strings.NewReader(""), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func TestDeployLock(t *testing.T) {
	t.Parallel()
	e := startEnvLab(t)
	setTestEnv(t, e.env...)
	slow := filepath.Join(e.dir, "slow.yml")
	os.WriteFile(slow, []byte("- hosts: app\n  become: true\n  tasks:\n    - shell: sleep {{ extra.nap ?? 1 }}\n"), 0o600)
	grown := filepath.Join(e.dir, "grown.yml")
	// A host joined staging since the other contender listed it.
	envInventory(t, e.Lab, grown, map[string][]string{"staging": {"app3"}})

	// Two runs on one environment started together, many times: exactly one
	// proceeds, the other exits 5 naming the holder.
	const rounds = 6
	for i := range rounds {
		// Runs long enough that the loser cannot simply find the lock free
		// again after the winner's whole run (a run whose gate comes first
		// waits a few round trips for the other to give way).
		argsA := []string{"run", slow, "--env", "staging", "-o", "plain", "-e", "nap=3"}
		argsB := append([]string{}, argsA...)
		if i%2 == 1 {
			argsB = append(argsB, "-i", grown)
		}
		var wg sync.WaitGroup
		var ra, rb result
		start := make(chan struct{})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		wg.Add(2)
		go func() { defer wg.Done(); <-start; ra = inProcess(t, ctx, argsA...) }()
		go func() { defer wg.Done(); <-start; rb = inProcess(t, ctx, argsB...) }()
		close(start)
		wg.Wait()
		cancel()
		t.Logf("round %d: A exit %d, B exit %d\nA:\n%s%s\nB:\n%s%s", i, ra.code, rb.code, ra.stdout, ra.stderr, rb.stdout, rb.stderr)
		win, lose := ra, rb
		if ra.code != 0 {
			win, lose = rb, ra
		}
		if win.code != 0 || lose.code != exitcode.Locked {
			t.Fatalf("round %d: exits %d and %d, want 0 and 5", i, ra.code, rb.code)
		}
		if id := runIDOf(t, win.stdout); !strings.Contains(lose.stdout+lose.stderr, "locked by "+whoami(environOf(os.Environ()))+" (run "+id) {
			t.Errorf("round %d: the refused run does not name the holder (run %s)", i, id)
		}
	}

	// --lock-wait queues the second run behind the first.
	var ra, rb result
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ra = inProcess(t, context.Background(), "run", slow, "--env", "staging", "-o", "json", "-e", "nap=3")
	}()
	waitForLock(t, e, "staging")
	rb = inProcess(t, context.Background(), "run", slow, "--env", "staging", "-o", "json", "--lock-wait", "60s")
	wg.Wait()
	if ra.code != 0 || rb.code != 0 {
		t.Fatalf("--lock-wait: exits %d and %d\n%s\n%s", ra.code, rb.code, ra.stderr, rb.stderr)
	}
	endA, startB := lastOf(t, ra.stdout, events.HostEnd), firstOf(t, rb.stdout, events.HostStart)
	if !startB.After(endA) || !strings.Contains(rb.stdout, "waiting up to") {
		t.Errorf("the queued run started a host at %s, before the first finished at %s", startB, endA)
	}

	// Different environments run at the same time.
	wg.Add(2)
	go func() {
		defer wg.Done()
		ra = inProcess(t, context.Background(), "run", slow, "--env", "staging", "-o", "json", "-e", "nap=2")
	}()
	go func() {
		defer wg.Done()
		rb = inProcess(t, context.Background(), "run", slow, "--branch", "dev/ben/y", "-o", "json", "-e", "nap=2")
	}()
	wg.Wait()
	if ra.code != 0 || rb.code != 0 {
		t.Fatalf("two environments: exits %d and %d", ra.code, rb.code)
	}
	if a, b := firstOf(t, ra.stdout, events.HostStart), lastOf(t, rb.stdout, events.HostEnd); !a.Before(b) {
		t.Logf("the two environments did not overlap in time (machine busy?): %s %s", a, b)
	}

	// A SIGKILLed holder leaves its lock; once stale, it is taken over with a warning.
	bin, binEnv := ferryBinary(t)
	cmd := exec.Command(bin, "run", slow, "--env", "staging", "-o", "json", "-e", "nap=60", "--lock-timeout", "3s")
	cmd.Env = append(os.Environ(), binEnv...)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	locked := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"event":"lock"`) {
			locked = true
			break
		}
	}
	if !locked {
		t.Fatal("the run to kill never took the lock")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if st := e.statusJSON(t, "staging"); len(st.Locks) != 3 {
		t.Fatalf("after SIGKILL: %d lock files, want 3", len(st.Locks))
	}
	r := ferry(t, nil, "lock", "status", "--env", "staging")
	if r.code != exitcode.Locked || !strings.Contains(r.stdout, "held by") {
		t.Errorf("lock status: exit %d\n%s", r.code, r.stdout)
	}
	// A dead holder of this machine would be taken over at once
	// (TestLockScopeBastionInventory): make it a holder of another machine,
	// which only staleness clears.
	for _, h := range envGroups["staging"] {
		if out, err := e.Exec(context.Background(), h, `sed -i 's/"boot_id":"[^"]*"/"boot_id":"another-machine"/' /var/lib/ferry/locks/staging.json`); err != nil {
			t.Fatalf("%s: %v %s", h, err, out)
		}
	}
	r = ferry(t, nil, "run", slow, "--env", "staging", "-o", "plain", "--lock-timeout", "3s", "--lock-wait", "60s")
	if r.code != 0 || !strings.Contains(r.stdout, "took over the stale lock") {
		t.Fatalf("takeover: exit %d", r.code)
	}
	if st := e.statusJSON(t, "staging"); len(st.Locks) != 0 {
		t.Errorf("locks left after the run: %+v", st.Locks)
	}
	// ferry lock release removes a dead run's lock at once.
	cmd = exec.Command(bin, "run", slow, "--env", "staging", "-o", "json", "-e", "nap=60")
	cmd.Env = append(os.Environ(), binEnv...)
	stdout, _ = cmd.StdoutPipe()
	cmd.Start()
	sc = bufio.NewScanner(stdout)
	for sc.Scan() && !strings.Contains(sc.Text(), `"event":"lock"`) {
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if r := ferry(t, nil, "lock", "release", "--env", "staging"); r.code != 0 || strings.Count(r.stdout, "released the lock") != 3 {
		t.Errorf("lock release: exit %d", r.code)
	}
	if r := ferry(t, nil, "lock", "status", "--env", "staging"); r.code != 0 || !strings.Contains(r.stdout, "staging is free") {
		t.Errorf("lock status after release: exit %d", r.code)
	}
}

// waitForLock waits (bounded) until env's lock is held on some host.
func waitForLock(t *testing.T, e *envLab, env string) {
	t.Helper()
	for range 300 {
		out, _ := e.Exec(context.Background(), "app4", "ls /var/lib/ferry/locks/ 2>/dev/null")
		if strings.Contains(out, env+".json") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the lock was never taken")
}

func jsonEvents(t *testing.T, stdout string) []events.Event {
	var out []events.Event
	for _, l := range strings.Split(stdout, "\n") {
		var e events.Event
		if json.Unmarshal([]byte(l), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

func firstOf(t *testing.T, stdout string, k events.Kind) time.Time {
	t.Helper()
	for _, e := range jsonEvents(t, stdout) {
		if e.Kind == k {
			return e.Time
		}
	}
	t.Fatalf("no %s event", k)
	return time.Time{}
}

func lastOf(t *testing.T, stdout string, k events.Kind) time.Time {
	t.Helper()
	var at time.Time
	for _, e := range jsonEvents(t, stdout) {
		if e.Kind == k {
			at = e.Time
		}
	}
	if at.IsZero() {
		t.Fatalf("no %s event", k)
	}
	return at
}

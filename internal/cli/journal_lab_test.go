package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/testrig/lab/awslab"
)

// These tests kill or interrupt real runs (ferry as a process) on the lab
// and check what the journal (the run record) says and what --resume does.

// startRun starts `ferry ARGS` as a process with the lab's environment and
// JSON output; each event is passed to onEvent until it returns true (then
// nothing more is read but the process goes on). It returns the command.
func startRun(t *testing.T, env []string, onEvent func(*exec.Cmd, events.Event) bool, args ...string) (*exec.Cmd, chan struct{}) {
	t.Helper()
	bin, binEnv := ferryBinary(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), env...), binEnv...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		stop := false
		for sc.Scan() {
			var e events.Event
			if stop || json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			t.Logf("%s %s %s %s %s %s", e.Time.Format("15:04:05.000"), e.Kind, e.Host, e.Task, e.Status, e.Msg)
			stop = onEvent(cmd, e)
		}
	}()
	return cmd, done
}

// waitExit waits (bounded) for cmd and returns its exit code (-1: killed by a signal).
func waitExit(t *testing.T, cmd *exec.Cmd, done chan struct{}) int {
	t.Helper()
	errc := make(chan error, 1)
	go func() { <-done; errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatalf("wait: %v", err)
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("the run did not end within 3 minutes")
	}
	return 0
}

// binaryStamp is the app binary's modification time on host, to nanoseconds.
func (d *deployLab) binaryStamp(t *testing.T, host string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := d.Exec(ctx, host, "stat -L -c %y /opt/app/current/app")
	if err != nil {
		t.Fatalf("%s: stat: %v", host, err)
	}
	return strings.TrimSpace(out)
}

// TestSIGKILLThenResume is issue 13's acceptance 2: a deploy with elb drain
// is SIGKILLed during batch 2; the journal on disk says what it left out
// of service; --resume refuses a changed release or playbook, then
// restores those hosts and finishes the rollout without redeploying the
// hosts already done, each host leaving and joining its load balancers
// once per deploy.
func TestSIGKILLThenResume(t *testing.T) {
	t.Parallel()
	d := startAWSDeployLab(t, 5)
	a := d.aws
	names := []string{"app1", "app2", "app3", "app4", "app5"}
	base := []string{"run", example("deploy.yml"), "-i", a.Inventory, "-e", "dist=" + d.dist, "-e", "version=v2"}

	a.Server.ResetRequests()
	victim := ""
	cmd, done := startRun(t, d.env, func(cmd *exec.Cmd, e events.Event) bool {
		// Batch 2's first host has left its load balancers and stopped its unit.
		if e.Kind == events.TaskEnd && e.Batch == 2 && e.Task == "Stop" && e.Status == events.StatusChanged {
			victim = e.Host
			cmd.Process.Signal(syscall.SIGKILL)
			return true
		}
		return false
	}, append(base, "-o", "json")...)
	if code := waitExit(t, cmd, done); code != -1 || victim == "" {
		t.Fatalf("exit %d, victim %q: want the run SIGKILLed after a batch-2 host stopped", code, victim)
	}
	killedCalls := a.Calls()
	killed := d.lastRecord(t)
	runID := killed[0].RunID

	// The journal says, on disk, what the dead run left undone.
	open := map[string]bool{}
	for _, e := range killed {
		switch e.Kind {
		case events.Intent:
			open[e.Host+" "+e.Change] = true
		case events.Undone:
			delete(open, e.Host+" "+e.Change)
		case events.RunEnd:
			t.Fatal("a SIGKILLed run wrote run_end")
		}
	}
	for _, want := range []string{victim + " elb", victim + " unit:app", " suspend"} {
		if !open[want] {
			t.Errorf("journal: %q not open; open: %v", want, open)
		}
	}
	// Down, or (the kill races the tasks after Stop: the staged release's
	// switch is one fast command) starting again, not yet ready; never
	// serving a version.
	if v, _ := d.status(t, victim); v != "down" && v != "" {
		t.Errorf("%s answers (%s) after its unit was stopped", victim, v)
	}
	// ferry status says what the dead run left out of service, and how to restore it.
	st := ferry(t, d.env, "status", "-i", a.Inventory)
	if !strings.Contains(st.stdout, "LEFT BY RUN "+runID+" (it did not finish): "+victim+" OUT OF LOAD BALANCER, UNIT APP STOPPED") ||
		!strings.Contains(st.stdout, "--resume "+runID) {
		t.Errorf("ferry status does not say what run %s left on %s", runID, victim)
	}
	_, pid1 := d.status(t, "app1")
	stamp1 := d.binaryStamp(t, "app1")

	// Unsafe resumes are refused (exit 4), saying what changed, touching nothing.
	a.Server.ResetRequests()
	r := ferry(t, d.env, "run", example("deploy.yml"), "--resume", "-i", a.Inventory, "-e", "dist="+d.dist, "-e", "version=v3", "--output", "plain")
	if r.code != exitcode.Invalid || !strings.Contains(r.stderr, `version "v2"`) {
		t.Errorf("resume with another version: exit %d, stderr %q", r.code, r.stderr)
	}
	changed := filepath.Join(t.TempDir(), "deploy.yml")
	src, _ := os.ReadFile(example("deploy.yml"))
	os.WriteFile(changed, []byte(strings.Replace(string(src), "- name: Smoke test", "- name: Smoke tests", 1)), 0o600)
	r = ferry(t, d.env, "run", changed, "--resume", runID, "-i", a.Inventory, "-e", "dist="+d.dist, "-e", "version=v2", "--output", "plain")
	if r.code != exitcode.Invalid || !strings.Contains(r.stderr, "Smoke tests") {
		t.Errorf("resume with a changed playbook: exit %d, stderr %q", r.code, r.stderr)
	}
	if calls := a.Calls(); len(calls) != 0 {
		t.Errorf("refused resumes made AWS calls: %v", calls)
	}

	r = d.run(t, "run", example("deploy.yml"), "--resume", "-e", "version=v2")
	if r.code != 0 {
		t.Fatalf("resume: exit %d", r.code)
	}
	resumed := d.lastRecord(t)
	if resumed[0].ResumeOf != runID {
		t.Errorf("resumed run's resume_of = %q, want %q", resumed[0].ResumeOf, runID)
	}
	for h, rc := range recapOf(t, resumed) {
		if rc.Left != events.LeftInService {
			t.Errorf("%s left %q", h, rc.Left)
		}
	}
	for _, h := range names {
		if v, _ := d.status(t, h); v != "v2" {
			t.Errorf("%s runs %s after the resume", h, v)
		}
	}
	if _, pid := d.status(t, "app1"); pid != pid1 {
		t.Errorf("app1 (batch 1) restarted by the resume: pid %d → %d", pid1, pid)
	}
	if s := d.binaryStamp(t, "app1"); s != stamp1 {
		t.Errorf("app1 (batch 1) binary rewritten by the resume: %s → %s", stamp1, s)
	}

	// The killed run staged v2 on every host before batch 1: the resume
	// stages none of them again.
	for _, e := range resumed {
		if e.Kind == events.TaskStart && e.Stage {
			t.Errorf("%s staged again by the resume", e.Host)
		}
		if e.Kind == events.StageEnd && (e.Status != events.StatusSkipped || !strings.Contains(e.Msg, "staged for v2 by run "+runID)) {
			t.Errorf("%s: stage %s on resume: %q", e.Host, e.Status, e.Msg)
		}
	}

	// Each deploy of a host takes it out of its load balancers once and
	// puts it back once; app1 was deployed only by the killed run.
	if rc := recapOf(t, resumed)["app1"]; rc.Left != events.LeftInService {
		t.Errorf("app1 in the resumed run's recap: %+v", rc)
	}
	resumeCalls := a.Calls()
	for _, h := range names {
		for _, run := range []struct {
			name  string
			calls []awslab.Call
		}{{"killed run", killedCalls}, {"resume", resumeCalls}} {
			// (the resume may also register a host the killed run left out,
			// before deploying it: that closes the killed run's deploy)
			for _, action := range deregistrations {
				if n := len(callsOf(run.calls, action, h)); n > 1 {
					t.Errorf("%s: %d %s calls in the %s", h, n, action, run.name)
				}
			}
		}
		for i, action := range deregistrations {
			out := len(callsOf(killedCalls, action, h)) + len(callsOf(resumeCalls, action, h))
			in := len(callsOf(killedCalls, registrations[i], h)) + len(callsOf(resumeCalls, registrations[i], h))
			if in != out || out == 0 {
				t.Errorf("%s: %d %s, %d %s over both runs", h, out, action, in, registrations[i])
			}
		}
	}
	for _, c := range resumeCalls {
		if c.Host == "app1" {
			t.Errorf("the resume touched app1: %s", c.Action)
		}
	}
	tg, _ := a.Server.TargetHealth(a.Account, a.Region, a.TargetGroupARN)
	lbs, _ := a.Server.InstanceHealth(a.Account, a.Region, awslab.LoadBalancer)
	if now := (awslab.Sample{TargetGroup: tg, ELB: lbs}); now.Healthy() != len(names) {
		t.Errorf("after the resume: target group %v, elb %v; want every host in service", tg, lbs)
	}
	if _, _, suspended, _ := a.Server.ASGState(a.Account, a.Region, awslab.Group); len(suspended) != 0 {
		t.Errorf("processes still suspended: %v", suspended)
	}

	// Nothing is left to resume.
	r = d.run(t, "run", example("deploy.yml"), "--resume", "-e", "version=v2")
	if r.code != exitcode.Invalid || !strings.Contains(r.stderr, "nothing to resume") {
		t.Errorf("second resume: exit %d, stderr %q", r.code, r.stderr)
	}
}

// noRollback is the example deploy without its rollback section, with a
// warm-up that keeps hosts in flight long enough to be interrupted.
func noRollback(t *testing.T) string {
	src, _ := os.ReadFile(example("deploy.yml"))
	s := string(src)
	s = s[:strings.Index(s, "  rollback:\n")] + s[strings.Index(s, "  after:\n"):]
	s = strings.Replace(s, `serial: [1, "50%"]`, `serial: "100%"`, 1)
	s = strings.Replace(s, "    - name: Smoke test\n", "    - name: Warm up\n      shell: sleep 2\n    - name: Smoke test\n", 1)
	pb := filepath.Join(t.TempDir(), "deploy.yml")
	if err := os.WriteFile(pb, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return pb
}

// TestInterruptHostsInFlightFinish is issue 13's SIGTERM and SIGHUP case:
// 30 hosts in flight, no rollback section. The hosts in flight finish their
// task list within the grace period and are in service; the recap and the
// record say so, and the exit code is 130.
func TestInterruptHostsInFlightFinish(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("30-host lab")
	}
	const n = 30
	d := startDeployLab(t, n)
	pb := noRollback(t)
	for _, c := range []struct {
		sig     syscall.Signal
		version string
	}{{syscall.SIGTERM, "v2"}, {syscall.SIGHUP, "v1"}} {
		t.Run(c.sig.String(), func(t *testing.T) {
			stopped := 0
			cmd, done := startRun(t, d.env, func(cmd *exec.Cmd, e events.Event) bool {
				// Signal once every host has stopped its unit: all are in flight.
				if e.Kind == events.TaskEnd && e.Task == "Stop" && e.Status == events.StatusChanged {
					if stopped++; stopped == n {
						cmd.Process.Signal(c.sig)
					}
				}
				return false
			}, "run", pb, "-i", d.Inventory, "-e", "dist="+d.dist, "-e", "version="+c.version, "-f", "30", "-o", "json")
			if code := waitExit(t, cmd, done); code != exitcode.Interrupted || stopped != n {
				t.Fatalf("exit %d after %d hosts stopped, want 130 after %d", code, stopped, n)
			}
			evs := d.lastRecord(t)
			var end events.Event
			for _, e := range evs {
				if e.Kind == events.RunEnd {
					end = e
				}
			}
			if !strings.Contains(end.Msg, "30 finished, 0 rolled back") {
				t.Errorf("run_end says %q", end.Msg)
			}
			rc := recapOf(t, evs)
			for i := 1; i <= n; i++ {
				h := "app" + strconv.Itoa(i)
				if v, _ := d.status(t, h); v != c.version {
					t.Errorf("%s runs %s, want %s", h, v, c.version)
				}
				if rc[h].Left != events.LeftInService || rc[h].Failed != 0 {
					t.Errorf("%s in the recap: %+v", h, rc[h])
				}
			}
		})
	}
}

// TestBastionBackWithinGrace is issue 13's acceptance 3 (and the bastion
// crash of acceptance 1): the bastion's sshd dies while a batch of 3 hosts
// warms up its new release and comes back 5 s later, within the grace
// period. The tasks in flight fail with their outcome unknown (never ok);
// each host's rollback reconnects through the bastion and restores the
// previous release; the recap says each host was rolled back and is in
// service.
func TestBastionBackWithinGrace(t *testing.T) {
	t.Parallel()
	d := startDeployLab(t, 3)
	bastion := d.Bastions[0].Name
	pb := filepath.Join(t.TempDir(), "deploy.yml")
	src, _ := os.ReadFile(example("deploy.yml"))
	s := strings.Replace(string(src), "    - name: Smoke test\n", "    - name: Warm up\n      shell: sleep 3\n    - name: Smoke test\n", 1)
	s = strings.Replace(s, `serial: [1, "50%"]`, `serial: "100%"`, 1)
	os.WriteFile(pb, []byte(s), 0o600)

	back := make(chan error, 1)
	warming := 0
	cmd, done := startRun(t, d.env, func(cmd *exec.Cmd, e events.Event) bool {
		if e.Kind == events.TaskStart && e.Task == "Warm up" {
			if warming++; warming < 3 {
				return false
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := d.StopSSHD(ctx, bastion); err != nil {
				t.Errorf("stop the bastion's sshd: %v", err)
			}
			go func() {
				defer cancel()
				time.Sleep(5 * time.Second)
				back <- d.StartSSHD(ctx, bastion)
			}()
		}
		return false
	}, "run", pb, "-i", d.Inventory, "-e", "dist="+d.dist, "-e", "version=v2", "--grace", "60s", "-o", "json")
	code := waitExit(t, cmd, done)
	select {
	case err := <-back:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the bastion was never stopped (no Warm up task?)")
	}
	if code != exitcode.Failed {
		t.Errorf("exit %d, want 2 (the hosts failed and were rolled back)", code)
	}
	evs := d.lastRecord(t)
	for _, e := range evs {
		if e.Kind == events.TaskEnd && e.Task == "Warm up" {
			if e.Status != events.StatusFailed || !strings.Contains(e.Msg, "unknown") {
				t.Errorf("%s: Warm up ended %s: %q; want failed, outcome unknown", e.Host, e.Status, e.Msg)
			}
		}
	}
	rc := recapOf(t, evs)
	for _, h := range []string{"app1", "app2", "app3"} {
		if !rc[h].RolledBack || rc[h].Left != events.LeftInService {
			t.Errorf("%s in the recap: %+v; want rolled back, in service", h, rc[h])
		}
		if v, _ := d.status(t, h); v != "v1" {
			t.Errorf("%s runs %s after the rollback, want v1", h, v)
		}
	}
}

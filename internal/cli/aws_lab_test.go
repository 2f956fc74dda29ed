package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/internal/testrig/lab/awslab"
)

// These tests run the example playbooks through the CLI against a lab whose
// hosts are also EC2 instances of an emulated AWS (package awslab): the
// inventory comes from the aws_ec2 plugin, elb/asg go through the real SDK
// clients to the emulator, and load balancer health checks probe the app
// on each host.

// awsDeployLab is a lab with emulated AWS and v1 installed on every host,
// through the aws_ec2 inventory.
type awsDeployLab struct {
	*deployLab
	aws *awslab.AWS
}

func startAWSDeployLab(t *testing.T, hosts int) *awsDeployLab {
	l := lab.StartT(t, lab.Options{Hosts: hosts})
	isolate(t)
	a := awslab.StartT(t, l, awslab.Options{SampleEvery: 20 * time.Millisecond})
	d := &awsDeployLab{
		deployLab: &deployLab{Lab: l, dist: buildDist(t, "v1", "v2", "v3-broken"), records: t.TempDir()},
		aws:       a,
	}
	d.env = append([]string{"FERRY_KNOWN_HOSTS=" + l.KnownHosts, "FERRY_RECORD_DIR=" + d.records}, a.Env()...)
	if r := d.run(t, "run", example("setup.yml"), "-e", "version=v1"); r.code != 0 {
		t.Fatalf("setup: exit %d", r.code)
	}
	// The load balancers found no app before setup: they take their
	// health checks' time to put the hosts back in service.
	d.waitAllHealthy(t, hosts)
	return d
}

// run runs `ferry ARGS -i <aws_ec2 inventory> -e dist=... --output plain`
// with the emulator's environment, logging the AWS calls it made.
func (d *awsDeployLab) run(t *testing.T, args ...string) result {
	t.Helper()
	d.aws.Server.ResetRequests()
	d.aws.ResetHistory()
	args = append(args, "-i", d.aws.Inventory, "-e", "dist="+d.dist, "--output", "plain")
	r := ferry(t, d.env, args...)
	var b strings.Builder
	d.aws.WriteCalls(&b)
	t.Logf("AWS calls:\n%s", b.String())
	return r
}

// taskRun is one task on one host, from the run record.
type taskRun struct {
	start, end time.Time
	status     events.Status
}

// taskRuns indexes a record's tasks by host and name; rollback tasks are
// named "rollback:NAME". A task run twice keeps its last run.
func taskRuns(evs []events.Event) map[string]map[string]*taskRun {
	out := map[string]map[string]*taskRun{}
	for _, e := range evs {
		if e.Host == "" || (e.Kind != events.TaskStart && e.Kind != events.TaskEnd) {
			continue
		}
		name := e.Task
		if e.Rollback {
			name = "rollback:" + name
		}
		if out[e.Host] == nil {
			out[e.Host] = map[string]*taskRun{}
		}
		if e.Kind == events.TaskStart {
			out[e.Host][name] = &taskRun{start: e.Time}
		} else if tr := out[e.Host][name]; tr != nil {
			tr.end, tr.status = e.Time, e.Status
		}
	}
	return out
}

func callsOf(calls []awslab.Call, action, host string) []awslab.Call {
	var out []awslab.Call
	for _, c := range calls {
		if c.Action == action && (host == "" || c.Host == host) {
			out = append(out, c)
		}
	}
	return out
}

// oneCall returns the only call of action for host, failing the test otherwise.
func oneCall(t *testing.T, calls []awslab.Call, action, host string) awslab.Call {
	t.Helper()
	got := callsOf(calls, action, host)
	if len(got) != 1 {
		t.Fatalf("%s: %d %s calls, want 1", host, len(got), action)
	}
	return got[0]
}

var (
	deregistrations = []string{"DeregisterTargets", "DeregisterInstancesFromLoadBalancer"}
	registrations   = []string{"RegisterTargets", "RegisterInstancesWithLoadBalancer"}
)

// minInService replays the load balancer calls: the fewest instances that
// were registered (not deregistered) in both the target group and the
// classic ELB at any moment, starting from all of them.
func minInService(calls []awslab.Call, all []string) int {
	tg, lb := map[string]bool{}, map[string]bool{}
	for _, h := range all {
		tg[h], lb[h] = true, true
	}
	count := func() int {
		n := 0
		for _, h := range all {
			if tg[h] && lb[h] {
				n++
			}
		}
		return n
	}
	least := count()
	for _, c := range calls {
		switch c.Action {
		case "DeregisterTargets":
			tg[c.Host] = false
		case "DeregisterInstancesFromLoadBalancer":
			lb[c.Host] = false
		case "RegisterTargets":
			tg[c.Host] = true
		case "RegisterInstancesWithLoadBalancer":
			lb[c.Host] = true
		}
		least = min(least, count())
	}
	return least
}

func TestAWSRollingDeploy(t *testing.T) {
	t.Parallel()
	d := startAWSDeployLab(t, 4)
	a := d.aws
	names := []string{"app1", "app2", "app3", "app4"}
	pids := map[string]int{}
	for _, h := range names {
		v, pid := d.status(t, h)
		if v != "v1" {
			t.Fatalf("%s runs %q after setup", h, v)
		}
		pids[h] = pid
	}

	// 1. v1 → v2 in batches of 1, 2, 1: each host leaves its target group and
	// its classic ELB before its service stops and comes back only after its
	// smoke test passed; capacity never drops below hosts − batch size.
	t.Run("deploy", func(t *testing.T) {
		r := d.run(t, "run", example("deploy.yml"), "-e", "version=v2")
		if r.code != 0 {
			t.Fatalf("deploy v2: exit %d", r.code)
		}
		evs := d.lastRecord(t)
		_, batches := hostSpans(evs)
		if fmt.Sprint(batches) != "[[app1] [app2 app3] [app4]]" {
			t.Fatalf("batches %v", batches)
		}
		calls, tasks := a.Calls(), taskRuns(evs)
		for _, h := range names {
			stop, smoke := tasks[h]["Stop"], tasks[h]["Smoke test"]
			if stop == nil || smoke == nil || smoke.status != events.StatusOK {
				t.Fatalf("%s: Stop %+v, Smoke test %+v in the record", h, stop, smoke)
			}
			for _, action := range deregistrations {
				if c := oneCall(t, calls, action, h); !c.Time.Before(stop.start) {
					t.Errorf("%s: %s at %s, not before Stop started at %s", h, action, c.Time.Format("15:04:05.000"), stop.start.Format("15:04:05.000"))
				}
			}
			for _, action := range registrations {
				if c := oneCall(t, calls, action, h); !c.Time.After(smoke.end) {
					t.Errorf("%s: %s at %s, before its smoke test passed at %s", h, action, c.Time.Format("15:04:05.000"), smoke.end.Format("15:04:05.000"))
				}
			}
			if v, pid := d.status(t, h); v != "v2" || pid == pids[h] {
				t.Errorf("%s: version %s pid %d, want v2 in a new process", h, v, pid)
			} else {
				pids[h] = pid
			}
		}

		// Capacity: from the calls (exact), and from the health the load
		// balancers reported while the run went on (real probes).
		biggest := 0
		for _, b := range batches {
			biggest = max(biggest, len(b))
		}
		want := len(names) - biggest
		if n := minInService(calls, names); n < want || n == len(names) {
			t.Errorf("fewest hosts registered at once: %d, want at least %d (and some drained)", n, want)
		}
		hist := a.History()
		if len(hist) == 0 {
			t.Fatal("no health samples")
		}
		least := len(names)
		for _, s := range hist {
			if n := s.Healthy(); n < least {
				least = n
				t.Logf("%s: %d healthy: target group %v, elb %v", s.Time.Format("15:04:05.000"), n, s.TargetGroup, s.ELB)
			}
		}
		if least < want {
			t.Errorf("capacity dropped to %d healthy hosts, want at least %d", least, want)
		}
		tg, _ := a.Server.TargetHealth(a.Account, a.Region, a.TargetGroupARN)
		lbs, _ := a.Server.InstanceHealth(a.Account, a.Region, awslab.LoadBalancer)
		if now := (awslab.Sample{TargetGroup: tg, ELB: lbs}); now.Healthy() != len(names) {
			t.Errorf("after the run: target group %v, elb %v; want every host in service", tg, lbs)
		}

		// Scaling was suspended around the whole rollout, for the hosts' group.
		sus, res := oneCall(t, calls, "SuspendProcesses", ""), oneCall(t, calls, "ResumeProcesses", "")
		for _, c := range []awslab.Call{sus, res} {
			if c.Target != awslab.Group || c.Detail != "Launch,Terminate,AZRebalance" {
				t.Errorf("%s of %q: %q", c.Action, c.Target, c.Detail)
			}
		}
		lb := append(callsOf(calls, "DeregisterTargets", ""), callsOf(calls, "RegisterInstancesWithLoadBalancer", "")...)
		for _, c := range lb {
			if !sus.Time.Before(c.Time) || !res.Time.After(c.Time) {
				t.Errorf("%s of %s outside suspend…resume", c.Action, c.Host)
			}
		}
		if _, _, suspended, _ := a.Server.ASGState(a.Account, a.Region, awslab.Group); len(suspended) != 0 {
			t.Errorf("processes still suspended: %v", suspended)
		}
	})

	// 2. The same version again changes nothing and touches no load balancer.
	t.Run("idempotent", func(t *testing.T) {
		r := d.run(t, "run", example("deploy.yml"), "-e", "version=v2")
		if r.code != 0 {
			t.Fatalf("second deploy: exit %d", r.code)
		}
		for h, rc := range recapOf(t, d.lastRecord(t)) {
			if rc.Changed != 0 || rc.Failed != 0 {
				t.Errorf("second run changed %s: %+v", h, rc)
			}
		}
		calls := a.Calls()
		for _, action := range append(deregistrations, registrations...) {
			if got := callsOf(calls, action, ""); len(got) != 0 {
				t.Errorf("second run made %d %s calls", len(got), action)
			}
		}
		for _, h := range names {
			if _, pid := d.status(t, h); pid != pids[h] {
				t.Errorf("second run restarted %s", h)
			}
		}
	})

	// 3. asg standby / in_service reach the endpoint for the host's group.
	t.Run("standby", func(t *testing.T) {
		pb := filepath.Join(t.TempDir(), "standby.yml")
		os.WriteFile(pb, []byte(`
- name: Standby round trip
  hosts: app
  serial: 2
  tasks:
    - name: Standby
      asg: {state: standby}
    - name: Back in service
      asg: {state: in_service}
`), 0o600)
		r := d.run(t, "run", pb)
		if r.code != 0 {
			t.Fatalf("standby playbook: exit %d", r.code)
		}
		var enters, exits int
		for _, req := range a.Server.Requests() {
			if req.Action != "EnterStandby" && req.Action != "ExitStandby" {
				continue
			}
			id := req.Params.Get("InstanceIds.member.1")
			if g := req.Params.Get("AutoScalingGroupName"); g != awslab.Group || a.HostOf(id) == "" {
				t.Errorf("%s of %s in group %q", req.Action, id, g)
			}
			if req.Action == "EnterStandby" {
				enters++
				if req.Params.Get("ShouldDecrementDesiredCapacity") != "true" {
					t.Errorf("EnterStandby of %s does not lower the desired capacity", id)
				}
			} else {
				exits++
			}
		}
		if enters != len(names) || exits != len(names) {
			t.Errorf("%d EnterStandby and %d ExitStandby calls, want %d each", enters, exits, len(names))
		}
		desired, lifecycle, _, _ := a.Server.ASGState(a.Account, a.Region, awslab.Group)
		for _, h := range names {
			if st := lifecycle[a.Instances[h]]; st != "InService" {
				t.Errorf("%s is %s after the playbook", h, st)
			}
		}
		if desired != len(names) {
			t.Errorf("desired capacity %d, want %d", desired, len(names))
		}
	})

	serial1 := filepath.Join(t.TempDir(), "deploy-serial1.yml")
	src, _ := os.ReadFile(example("deploy.yml"))
	os.WriteFile(serial1, []byte(strings.Replace(string(src), `serial: [1, "50%"]`, "serial: 1", 1)), 0o600)

	// 4. A broken release fails the canary's smoke test: the canary goes
	// back into its load balancers only once its rollback answers; the
	// rollout halts; scaling is resumed all the same.
	t.Run("broken canary", func(t *testing.T) {
		r := d.run(t, "run", serial1, "-e", "version=v3-broken")
		if r.code != exitcode.Failed {
			t.Fatalf("broken deploy: exit %d, want 2", r.code)
		}
		evs := d.lastRecord(t)
		calls, tasks := a.Calls(), taskRuns(evs)
		smoke, answers := tasks["app1"]["Smoke test"], tasks["app1"]["rollback:Previous release answers"]
		if smoke == nil || smoke.status != events.StatusFailed || answers == nil || answers.status != events.StatusOK {
			t.Fatalf("app1: smoke test %+v, rollback check %+v", smoke, answers)
		}
		for _, action := range registrations {
			if c := oneCall(t, calls, action, "app1"); !c.Time.After(answers.end) {
				t.Errorf("app1: %s at %s, before its rollback answered at %s", action, c.Time.Format("15:04:05.000"), answers.end.Format("15:04:05.000"))
			}
		}
		for _, h := range names[1:] {
			for _, c := range calls {
				if c.Host == h {
					t.Errorf("%s was touched: %s", h, c.Action)
				}
			}
		}
		rc := recapOf(t, evs)
		if !rc["app1"].RolledBack || rc["app1"].Drained {
			t.Errorf("recap app1: %+v, want rolled back and back in its load balancers", rc["app1"])
		}
		res := oneCall(t, calls, "ResumeProcesses", "")
		if last := calls[len(calls)-1]; last != res {
			t.Errorf("last call %s, want ResumeProcesses after the halt", last.Action)
		}
		if _, _, suspended, _ := a.Server.ASGState(a.Account, a.Region, awslab.Group); len(suspended) != 0 {
			t.Errorf("processes still suspended after the halt: %v", suspended)
		}
		tg, _ := a.Server.TargetHealth(a.Account, a.Region, a.TargetGroupARN)
		if tg[a.Instances["app1"]] != "healthy" {
			t.Errorf("app1 in the target group after its rollback: %q", tg[a.Instances["app1"]])
		}
	})

	// 5. When the rollback cannot make the host healthy either (its previous
	// release is broken too), the host stays out and the recap says so.
	t.Run("rollback unhealthy", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cur, err := d.Exec(ctx, "app1", "readlink /opt/app/current")
		if err != nil {
			t.Fatal(err)
		}
		dir, _ := d.HostDir("app1")
		target := filepath.Join(dir, strings.TrimSpace(cur), "app")
		broken, _ := os.ReadFile(filepath.Join(d.dist, "v3-broken", "app"))
		// Rename, not overwrite: the running binary stays intact.
		if err := os.WriteFile(target+".new", broken, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(target+".new", target); err != nil {
			t.Fatal(err)
		}

		r := d.run(t, "run", serial1, "-e", "version=v3-broken")
		if r.code != exitcode.Failed {
			t.Fatalf("exit %d, want 2", r.code)
		}
		calls := a.Calls()
		for _, action := range deregistrations {
			oneCall(t, calls, action, "app1")
		}
		for _, action := range registrations {
			if got := callsOf(calls, action, "app1"); len(got) != 0 {
				t.Errorf("app1 re-registered (%s) though its rollback is unhealthy", action)
			}
		}
		rc := recapOf(t, d.lastRecord(t))
		if !rc["app1"].Drained || rc["app1"].RolledBack {
			t.Errorf("recap app1: %+v, want drained and not rolled back", rc["app1"])
		}
		if !strings.Contains(r.stdout, "OUT OF LOAD BALANCER") || !strings.Contains(r.stdout, "ROLLBACK FAILED") {
			t.Errorf("plain output does not say app1 is out of its load balancer")
		}
		if tg, _ := a.Server.TargetHealth(a.Account, a.Region, a.TargetGroupARN); tg[a.Instances["app1"]] == "healthy" {
			t.Errorf("app1 is healthy in the target group")
		}
		if lbs, _ := a.Server.InstanceHealth(a.Account, a.Region, awslab.LoadBalancer); lbs[a.Instances["app1"]] == "InService" {
			t.Errorf("app1 is in service in the classic ELB")
		}
		if ok, why := a.Probe("app1"); ok || !strings.Contains(why, "[500]") {
			t.Errorf("health check of app1: %v %q, want a failure with code 500", ok, why)
		}
		if len(callsOf(calls, "ResumeProcesses", "")) != 1 {
			t.Errorf("scaling not resumed after the failed rollback")
		}
	})
}

// An aws_ec2 file with a typo'd option is invalid input: a positioned
// error with a suggestion, exit 4, and no AWS call.
func TestAWSInventoryTypo(t *testing.T) {
	t.Parallel()
	isolate(t)
	s := awsemu.New(awsemu.Options{})
	endpoint, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	env := []string{"AWS_ENDPOINT_URL=" + endpoint, "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=x",
		"AWS_REGION=eu-west-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_PROFILE=", "AWS_CONFIG_FILE=/dev/null"}
	inv := filepath.Join(t.TempDir(), "demo.aws_ec2.yml")
	os.WriteFile(inv, []byte(`plugin: aws_ec2
regions: [eu-west-1]
filter:
  tag:Service: app
keyed_groups:
  - key: tags.Env
    prefx: env
`), 0o600)
	r := ferry(t, env, "inventory", "-i", inv, "--list")
	if r.code != exitcode.Invalid {
		t.Fatalf("exit %d, want 4", r.code)
	}
	for _, want := range []string{inv + ":3:1", `did you mean "filters"`, inv + ":7:5", `did you mean "prefix"`} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d AWS calls for an invalid inventory", n)
	}
}

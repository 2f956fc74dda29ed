package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/testrig/lab/awslab"
	"github.com/ferrydeploy/ferry/internal/testrig/lab/load"
)

// zeroDowntimeRate is the constant load during the rollouts (requests/s,
// half through the ALB, half through the classic ELB).
const zeroDowntimeRate = 200

// underLoad runs ferry with a constant load through both load balancers
// and returns the run and what the load saw.
func (d *awsDeployLab) underLoad(t *testing.T, args ...string) (result, load.Report) {
	t.Helper()
	// Each request takes 20 ms in the app: some are in flight whenever a
	// host leaves its load balancers or stops.
	g, err := load.Start(context.Background(), load.Options{Rate: zeroDowntimeRate,
		URLs: []string{d.aws.ALB + "/?delay=20ms", d.aws.ELB + "/?delay=20ms"}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	time.Sleep(time.Second) // a second of load before the rollout, as the baseline
	r := d.run(t, args...)
	rep := g.Stop()
	var b strings.Builder
	rep.Write(&b)
	t.Logf("load during the run:\n%s", b.String())
	return r, rep
}

// waitAllHealthy waits (bounded) until every host is in service in both
// load balancers.
func (d *awsDeployLab) waitAllHealthy(t *testing.T, n int) {
	t.Helper()
	a := d.aws
	for i := 0; ; i++ {
		tg, _ := a.Server.TargetHealth(a.Account, a.Region, a.TargetGroupARN)
		lbs, _ := a.Server.InstanceHealth(a.Account, a.Region, awslab.LoadBalancer)
		if (awslab.Sample{TargetGroup: tg, ELB: lbs}).Healthy() == n {
			return
		}
		if i > 600 {
			t.Fatalf("hosts not all healthy: target group %v, elb %v", tg, lbs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// paceReport checks, from the emulator's log, that each wait of the run
// ended within a second of the load balancer's own change: the first
// health read of a load balancer after a host's drain ended (its target
// turned healthy) is at most 1 s later. It returns the AWS calls per host.
func paceReport(t *testing.T, a *awslab.AWS, hosts int) float64 {
	t.Helper()
	reqs, changes := a.Server.Requests(), a.Server.Changes()
	reads := map[string][]time.Time{} // "tg" / "elb" → health reads
	calls := 0
	for _, r := range reqs {
		switch r.Action {
		case "DescribeTargetHealth":
			if r.Params.Get("TargetGroupArn") == a.TargetGroupARN {
				reads["target-group"] = append(reads["target-group"], r.Time)
			}
		case "DescribeInstanceHealth":
			if r.Params.Get("LoadBalancerName") == awslab.LoadBalancer {
				reads["elb"] = append(reads["elb"], r.Time)
			}
		}
		if r.Service == "elb" || r.Service == "elbv2" || r.Service == "autoscaling" {
			calls++
		}
	}
	firstAfter := func(kind string, at time.Time) (time.Time, bool) {
		for _, x := range reads[kind] {
			if !x.Before(at) {
				return x, true
			}
		}
		return time.Time{}, false
	}
	var drains, healthy int
	var worst time.Duration
	for _, c := range changes {
		what := ""
		switch {
		case c.From == "draining" && c.To == "unused":
			what = "drain"
			drains++
		case c.From == "initial" && c.To == "healthy":
			what = "re-register"
			healthy++
		default:
			continue
		}
		read, ok := firstAfter(c.Kind, c.Time)
		host := a.HostOf(c.Instance)
		if !ok {
			t.Errorf("%s: %s in %s %s at %s, and no health read after it", host, what, c.Kind, c.Name, c.Time.Format("15:04:05.000"))
			continue
		}
		lag := read.Sub(c.Time)
		worst = max(worst, lag)
		if lag > time.Second {
			t.Errorf("%s: %s in %s %s at %s, first health read %s later (want within 1 s)", host, what, c.Kind, c.Name, c.Time.Format("15:04:05.000"), lag)
		}
	}
	if drains == 0 || healthy == 0 {
		t.Errorf("%d drains and %d re-registrations ended in the log", drains, healthy)
	}
	perHost := float64(calls) / float64(hosts)
	t.Logf("%d drains, %d re-registrations; slowest wait ended %s after the load balancer's change; %d load balancer and Auto Scaling calls (%.1f per host)",
		drains, healthy, worst.Round(time.Millisecond), calls, perHost)
	return perHost
}

// The example deploy rolls 20 hosts behind the emulated ALB and classic
// ELB, which carry a constant load of 200 requests/s: no request fails.
// Each host's drain and re-registration end within a second of the load
// balancer's own change (default poll settings). The same rollout without
// its drain and re-register tasks loses requests (the load would see a
// failure); a broken build halts at the canary and loses none.
//
// Not parallel: paceReport's one-second bound is the product's (default
// polls); it runs beside the parallel lab tests (scripts/test.sh), not
// among them in one process, whose goroutines would share its CPU time.
func TestZeroDowntimeUnderLoad(t *testing.T) {
	const hosts = 20
	d := startAWSDeployLab(t, hosts)
	d.waitAllHealthy(t, hosts)
	for _, e := range d.env {
		if strings.HasPrefix(e, "FERRY_AWS_POLL_INTERVAL=") {
			t.Fatalf("the lab sets %s: it must use ferry's default poll", e)
		}
	}

	t.Run("drained rollout loses nothing", func(t *testing.T) {
		r, rep := d.underLoad(t, "run", example("deploy.yml"), "-e", "version=v2")
		if r.code != 0 {
			t.Fatalf("deploy v2: exit %d\n%s", r.code, r.stderr)
		}
		for i := 1; i <= hosts; i++ {
			if v, _ := d.status(t, fmt.Sprintf("app%d", i)); v != "v2" {
				t.Errorf("app%d runs %s", i, v)
			}
		}
		if rep.Requests < zeroDowntimeRate*5 || rep.Failures != 0 {
			t.Errorf("under load: %s; want 0 failed", rep.Summary())
		}
		paceReport(t, d.aws, hosts)
	})

	src, err := os.ReadFile(example("deploy.yml"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("undrained rollout loses requests", func(t *testing.T) {
		// The same playbook without the tasks that take a host out of its
		// load balancers and put it back.
		noDrain := regexp.MustCompile(`(?m)^    - name: (Drain|Re-register|Re-register previous)\n(      .*\n)+`).ReplaceAllString(string(src), "")
		if strings.Contains(noDrain, "elb:") {
			t.Fatalf("elb tasks left in:\n%s", noDrain)
		}
		pb := filepath.Join(t.TempDir(), "deploy-no-drain.yml")
		if err := os.WriteFile(pb, []byte(noDrain), 0o600); err != nil {
			t.Fatal(err)
		}
		d.waitAllHealthy(t, hosts)
		r, rep := d.underLoad(t, "run", pb, "-e", "version=v1")
		if r.code != 0 {
			t.Fatalf("deploy v1 without drains: exit %d\n%s", r.code, r.stderr)
		}
		if rep.Failures == 0 {
			t.Errorf("under load without drains: %s; want failures", rep.Summary())
		}
	})

	t.Run("broken build halts at the canary, loses nothing", func(t *testing.T) {
		d.waitAllHealthy(t, hosts)
		r, rep := d.underLoad(t, "run", example("deploy.yml"), "-e", "version=v3-broken")
		if r.code != exitcode.Failed {
			t.Fatalf("broken deploy: exit %d, want %d", r.code, exitcode.Failed)
		}
		touched := map[string]bool{}
		for _, c := range d.aws.Calls() {
			if c.Host != "" {
				touched[c.Host] = true
			}
		}
		if len(touched) != 1 || !touched["app1"] {
			t.Errorf("hosts touched: %v, want the canary app1 only", touched)
		}
		if rep.Requests < zeroDowntimeRate*3 || rep.Failures != 0 {
			t.Errorf("under load: %s; want 0 failed", rep.Summary())
		}
		tg, _ := d.aws.Server.TargetHealth(d.aws.Account, d.aws.Region, d.aws.TargetGroupARN)
		if tg[d.aws.Instances["app1"]] != "healthy" {
			t.Errorf("canary after its rollback: %s in the target group", tg[d.aws.Instances["app1"]])
		}
	})
}

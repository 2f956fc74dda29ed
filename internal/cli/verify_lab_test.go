package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/promtext"
	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/internal/testrig/lab/awslab"
)

// labClient reaches a lab host's app from outside the host, through the
// lab's network (as a load balancer would).
func labClient(l *lab.Lab, host string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) { return l.Dial(ctx, host, addr) },
	}}
}

// traffic drives GET / at every host's app with vegeta (50 requests/s
// each) until the test ends or stop is called: what a real fleet serves
// while it is being deployed.
func traffic(t *testing.T, l *lab.Lab, hosts []string) (stop func()) {
	var wg sync.WaitGroup
	var attackers []*vegeta.Attacker
	for _, h := range hosts {
		a := vegeta.NewAttacker(vegeta.Client(labClient(l, h)), vegeta.Workers(4), vegeta.MaxWorkers(16))
		attackers = append(attackers, a)
		tg := vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: "http://127.0.0.1:8080/"})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range a.Attack(tg, vegeta.Rate{Freq: 50, Per: time.Second}, 5*time.Minute, h) {
			}
		}()
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			for _, a := range attackers {
				a.Stop()
			}
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return stop
}

// feed5xx puts each host's new 5xx responses (from its /metrics) into the
// emulator's CloudWatch every 200ms, as the target group's
// HTTPCode_Target_5XX_Count, until the test ends.
func feed5xx(t *testing.T, l *lab.Lab, a *awslab.AWS, hosts []string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		last := map[string]float64{}
		for {
			for _, h := range hosts {
				resp, err := labClient(l, h).Get("http://127.0.0.1:8080/metrics")
				if err != nil {
					continue
				}
				s, _ := promtext.Parse(resp.Body)
				resp.Body.Close()
				n := promtext.Sum(s, "http_requests_total", map[string]string{"code": "500"})
				if n < last[h] {
					last[h] = 0 // the app restarted: its counters too
				}
				if d := n - last[h]; d > 0 {
					a.Server.PutMetric(a.Account, a.Region, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count",
						map[string]string{"TargetGroup": awslab.TargetGroup}, d, time.Now())
				}
				last[h] = n
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
}

// addBuild builds the example app as version into dist.

// gated is the example deploy with a verify gate after the canary.
func gated(t *testing.T, verify string) string {
	t.Helper()
	src, err := os.ReadFile(example("deploy.yml"))
	if err != nil {
		t.Fatal(err)
	}
	pb := filepath.Join(t.TempDir(), "deploy.yml")
	out := strings.Replace(string(src), "  before:\n", "  verify:\n"+verify+"  before:\n", 1)
	if err := os.WriteFile(pb, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return pb
}

const (
	httpGate    = "      - {name: pages, http: {url: \"http://127.0.0.1:8080/\", status: 200}}\n"
	alarmsGate  = "      - {name: 5xx alarm, alarms: {names: [app-5xx]}}\n"
	metricsGate = "      - {name: target 5xx, metrics: {namespace: AWS/ApplicationELB, metric: HTTPCode_Target_5XX_Count, stat: Sum, dimensions: {TargetGroup: app-tg}, max: 0}}\n"
	canaryGate  = "      - {name: against baseline, canary: {url: \"http://127.0.0.1:8080/metrics\", error_ratio: 0.05, min_requests: 20}}\n"
)

func gateSpec(bake, interval string, checks ...string) string {
	return fmt.Sprintf("    batches: [1]\n    bake: %s\n    interval: %s\n    checks:\n%s", bake, interval, strings.Join(checks, ""))
}

// gateOf returns the record's gate events: start, checks, end.
func gateOf(t *testing.T, evs []events.Event) (start events.Event, checks []events.Event, end events.Event) {
	t.Helper()
	for _, e := range evs {
		switch e.Kind {
		case events.GateStart:
			start = e
		case events.GateCheck:
			checks = append(checks, e)
		case events.GateEnd:
			end = e
		}
	}
	if start.Kind == "" || end.Kind == "" {
		t.Fatal("the record has no gate")
	}
	return start, checks, end
}

// TestLabVerify: under traffic, a good build passes every kind of gate and
// bakes for the whole bake time; a build that fails 20% of its requests
// passes its smoke test but is stopped by the http gate, by the metrics
// gate and by the canary-against-baseline gate, each on its own; an alarm
// that goes to ALARM during the canary's bake rolls the canary back.
func TestLabVerify(t *testing.T) {
	t.Parallel()
	d := startAWSDeployLab(t, 4)
	a := d.aws
	addBuild(t, d.dist, "v4-flaky")
	names := []string{"app1", "app2", "app3", "app4"}
	if err := a.Server.SetAlarm(a.Account, a.Region, "app-5xx", "OK", "no errors"); err != nil {
		t.Fatal(err)
	}
	traffic(t, d.Lab, names)
	feed5xx(t, d.Lab, a, names)

	// canaryFailed checks a flaky canary stopped by the gate: its smoke
	// test passed, the gate failed on want, app1 went back to v2, nobody
	// else was touched.
	canaryFailed := func(t *testing.T, r result, want string) {
		t.Helper()
		if r.code != exitcode.Failed {
			t.Fatalf("exit %d, want 2", r.code)
		}
		evs := d.lastRecord(t)
		if tr := taskRuns(evs)["app1"]["Smoke test"]; tr == nil || tr.status != events.StatusOK {
			t.Errorf("the flaky build's smoke test: %+v, want ok", tr)
		}
		_, _, end := gateOf(t, evs)
		if end.Status != events.StatusFailed || !strings.Contains(end.Msg, want) {
			t.Errorf("gate ended %s: %q, want %q", end.Status, end.Msg, want)
		}
		if _, batches := hostSpans(evs); len(batches) != 1 {
			t.Errorf("batches %v: the rollout went on", batches)
		}
		rc := recapOf(t, evs)
		if !rc["app1"].RolledBack {
			t.Errorf("app1 not rolled back: %+v", rc["app1"])
		}
		for _, h := range names {
			want := "v2"
			if v, _ := d.status(t, h); v != want {
				t.Errorf("%s runs %s, want %s", h, v, want)
			}
		}
		if !strings.Contains(r.stdout, "GATE after batch 1 FAILED") {
			t.Errorf("plain output does not say the gate failed")
		}
	}

	t.Run("good build passes every gate", func(t *testing.T) {
		pb := gated(t, gateSpec("3s", "500ms", httpGate, alarmsGate, metricsGate, canaryGate))
		r := d.run(t, "run", pb, "-e", "version=v2")
		if r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
		start, checks, end := gateOf(t, d.lastRecord(t))
		if end.Status != events.StatusOK || start.Batch != 1 || fmt.Sprint(start.Hosts) != "[app1]" {
			t.Fatalf("gate after batch %d on %v: %s %q", start.Batch, start.Hosts, end.Status, end.Msg)
		}
		// The bake time is honoured: by the events' own times.
		if baked := end.Time.Sub(start.Time); baked < 3*time.Second {
			t.Errorf("the gate ended %s after it started, before its 3s bake", baked)
		}
		seen := map[string]int{}
		for _, c := range checks {
			if c.Status == events.StatusFailed {
				t.Errorf("check %s poll %d failed: %s", c.Task, c.TaskIndex, c.Msg)
			}
			if c.Status == events.StatusOK {
				seen[c.Module]++
			}
		}
		for _, k := range []string{"http", "alarms", "metrics", "canary"} {
			if seen[k] == 0 {
				t.Errorf("no passing %s poll: %v", k, seen)
			}
		}
		for _, h := range names {
			if v, _ := d.status(t, h); v != "v2" {
				t.Errorf("%s runs %s", h, v)
			}
		}
	})

	t.Run("http gate stops the flaky build", func(t *testing.T) {
		r := d.run(t, "run", gated(t, gateSpec("6s", "100ms", httpGate)), "-e", "version=v4-flaky")
		canaryFailed(t, r, "pages (http) failed: app1: GET http://127.0.0.1:8080/: status 500")
	})
	t.Run("metrics gate stops the flaky build", func(t *testing.T) {
		r := d.run(t, "run", gated(t, gateSpec("6s", "300ms", metricsGate)), "-e", "version=v4-flaky")
		canaryFailed(t, r, "target 5xx (metrics) failed: Sum AWS/ApplicationELB/HTTPCode_Target_5XX_Count =")
	})
	t.Run("canary against baseline stops the flaky build", func(t *testing.T) {
		r := d.run(t, "run", gated(t, gateSpec("6s", "500ms", canaryGate)), "-e", "version=v4-flaky")
		canaryFailed(t, r, "against baseline (canary) failed: error ratio canary 0.")
	})

	t.Run("alarm during the bake rolls the canary back", func(t *testing.T) {
		pb := gated(t, gateSpec("20s", "200ms", alarmsGate))
		flipped := false
		cmd, done := startRun(t, append(append([]string{}, d.env...), a.Env()...), func(_ *exec.Cmd, e events.Event) bool {
			if e.Kind == events.GateCheck && e.TaskIndex == 2 && !flipped {
				flipped = true
				if err := a.Server.SetAlarm(a.Account, a.Region, "app-5xx", "ALARM", "Threshold Crossed: 5xx > 1%"); err != nil {
					t.Error(err)
				}
			}
			return false
		}, "run", pb, "-i", a.Inventory, "-e", "dist="+d.dist, "-e", "version=v4-flaky", "-o", "json")
		code := waitExit(t, cmd, done)
		defer a.Server.SetAlarm(a.Account, a.Region, "app-5xx", "OK", "")
		if !flipped {
			t.Fatal("the gate never polled twice")
		}
		if code != exitcode.Failed {
			t.Fatalf("exit %d, want 2", code)
		}
		evs := d.lastRecord(t)
		start, checks, end := gateOf(t, evs)
		if end.Status != events.StatusFailed || !strings.Contains(end.Msg, "app-5xx is ALARM (Threshold Crossed: 5xx > 1%)") {
			t.Errorf("gate ended %s: %q", end.Status, end.Msg)
		}
		if baked := end.Time.Sub(start.Time); baked >= 20*time.Second || len(checks) < 3 {
			t.Errorf("the gate ran its whole bake (%s, %d polls) instead of stopping at the alarm", baked, len(checks))
		}
		rc := recapOf(t, evs)
		if !rc["app1"].RolledBack || !rc["app2"].Untouched {
			t.Errorf("recap app1 %+v app2 %+v", rc["app1"], rc["app2"])
		}
		if v, _ := d.status(t, "app1"); v != "v2" {
			t.Errorf("app1 runs %s after the rollback, want v2", v)
		}
	})
}

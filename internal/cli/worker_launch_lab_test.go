package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/internal/testrig/lab/awslab"
)

// launchQueue creates a standard queue (Auto Scaling cannot notify FIFO
// queues) for lifecycle notifications and returns its URL.
func launchQueue(t *testing.T, s *sqsQueues) string {
	t.Helper()
	ctx := context.Background()
	_, dlqARN, err := s.f.CreateQueue(ctx, "ferry-launches-dlq", nil)
	if err != nil {
		t.Fatal(err)
	}
	url, _, err := s.f.CreateQueue(ctx, "ferry-launches", map[string]string{"VisibilityTimeout": "60",
		"RedrivePolicy": `{"maxReceiveCount":"1000","deadLetterTargetArn":"` + dlqARN + `"}`})
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// Acceptance 3: Auto Scaling launches two lab hosts (from an "old image":
// v1) into the group of environment demo, which runs v2. The first gets
// v2 and CONTINUE reaches the endpoint, heartbeats having been sent while
// it ran; with the release broken, the second is ABANDONed; the test
// notification is ignored. No other host is touched. The second hook
// names no environment: the worker finds it in ferry.yml.
func TestWorkerLaunchHook(t *testing.T) {
	t.Parallel()
	l := lab.StartT(t, lab.Options{Hosts: 4})
	isolate(t)
	a := awslab.StartT(t, l, awslab.Options{Launching: 2})
	d := &awsDeployLab{deployLab: &deployLab{Lab: l, dist: buildDist(t, "v1", "v2", "v3-broken"), records: t.TempDir()}, aws: a}
	cfg := filepath.Join(t.TempDir(), "ferry.yml")
	os.WriteFile(cfg, []byte("environments:\n  demo: {inventory: "+a.Inventory+"}\n"), 0o600)
	d.env = append([]string{"FERRY_KNOWN_HOSTS=" + l.KnownHosts, "FERRY_RECORD_DIR=" + d.records, "FERRY_CONFIG=" + cfg}, a.Env()...)

	// The image the group launches from has v1 (installed here through
	// the static inventory: the instances do not exist yet).
	if r := ferry(t, d.env, "run", example("setup.yml"), "-i", l.Inventory, "-l", "app3:app4", "-e", "version=v1", "-e", "dist="+d.dist, "-o", "plain"); r.code != 0 {
		t.Fatalf("image setup: exit %d", r.code)
	}
	// Environment demo (app1, app2) runs v2.
	for _, args := range [][]string{{example("setup.yml"), "-e", "version=v1"}, {example("deploy.yml"), "-e", "version=v2"}} {
		if r := ferry(t, d.env, append(append([]string{"run"}, args...), "--env", "demo", "-e", "dist="+d.dist, "-o", "plain")...); r.code != 0 {
			t.Fatalf("deploy to demo: exit %d", r.code)
		}
	}
	_, pid1 := d.status(t, "app1")
	_, pid2 := d.status(t, "app2")

	s := startSQS(t, "1000", true)
	url := launchQueue(t, s)
	q, _ := s.f.Queue(url)
	// A launch playbook slow enough for heartbeats (sent every second).
	slow := filepath.Join(t.TempDir(), "launch.yml")
	src, _ := os.ReadFile(example("deploy.yml"))
	os.WriteFile(slow, []byte(strings.Replace(string(src), "    - name: Smoke test\n", "    - name: Warm up\n      shell: sleep 2\n    - name: Smoke test\n", 1)), 0o600)
	meta := `{"environment":"demo","playbook":"launch.yml"}`

	// Root on the fleet's hosts claims, in their release records, a newer
	// release with other variables: the worker deploys what its own
	// records say (v2), never what the hosts claim.
	for _, h := range []string{"app1", "app2"} {
		if _, err := l.Exec(context.Background(), h, `sed -E -i 's/"version": ?"v2"/"version":"v3-broken"/; s/"time": ?"[^"]*"/"time":"2099-01-01T00:00:00Z"/; s/"dist": ?"[^"]*"/"dist":"\/nonexistent"/' /var/lib/ferry/demo.json && grep -q v3-broken /var/lib/ferry/demo.json`); err != nil {
			t.Fatalf("tamper with %s's release record: %v", h, err)
		}
	}

	w := startWorker(t, "--queue", url, "--visibility", "30s", "--heartbeat", "1s", "--playbook-dir", filepath.Dir(slow))
	send := func(body string) {
		t.Helper()
		if _, err := q.Send(context.Background(), body, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	send(a.TestNotification())
	w.waitLog(t, "worker ignored", time.Minute)

	a.Server.ResetRequests()
	n, err := a.Launch("app3", meta)
	if err != nil {
		t.Fatal(err)
	}
	send(n)
	w.waitLog(t, "CONTINUE", 3*time.Minute)
	if v, _ := d.status(t, "app3"); v != "v2" {
		t.Errorf("app3 runs %s after its launch, want the environment's v2", v)
	}
	app3 := a.Instances["app3"]
	var completes, heartbeats int
	for _, req := range a.Server.Requests() {
		switch req.Action {
		case "CompleteLifecycleAction":
			completes++
			if req.Params.Get("LifecycleActionResult") != "CONTINUE" || req.Params.Get("InstanceId") != app3 ||
				req.Params.Get("LifecycleHookName") != awslab.Hook || req.Params.Get("AutoScalingGroupName") != awslab.Group {
				t.Errorf("CompleteLifecycleAction %v", req.Params)
			}
		case "RecordLifecycleActionHeartbeat":
			heartbeats++
		}
	}
	if completes != 1 || heartbeats == 0 {
		t.Errorf("%d CompleteLifecycleAction and %d heartbeats for app3, want 1 and some", completes, heartbeats)
	}
	if _, lc, _, _ := a.Server.ASGState(a.Account, a.Region, awslab.Group); lc[app3] != "InService" {
		t.Errorf("app3 is %q after CONTINUE", lc[app3])
	}
	evs := d.lastRecord(t)
	if spans, _ := hostSpans(evs); len(spans) != 1 || spans["app3"] == nil {
		t.Errorf("the launch deploy ran on %v, want app3 only", spans)
	}
	if evs[0].Env != "demo" || evs[0].Version != "v2" {
		t.Errorf("launch run: env %q version %q", evs[0].Env, evs[0].Version)
	}

	// The release turns out broken (its artifact replaced): the next
	// launch fails its smoke test and is abandoned.
	broken, _ := os.ReadFile(filepath.Join(d.dist, "v3-broken", "app"))
	os.WriteFile(filepath.Join(d.dist, "v2", "app"), broken, 0o755)
	a.Server.ResetRequests()
	// This hook's metadata names no environment: the worker finds the
	// environment of ferry.yml that holds the group's instances.
	n, err = a.Launch("app4", `{"playbook":"launch.yml"}`)
	if err != nil {
		t.Fatal(err)
	}
	send(n)
	w.waitLog(t, "ABANDON", 3*time.Minute)
	if code := w.stop(t); code != 0 {
		t.Fatalf("worker exit %d", code)
	}
	app4 := a.Instances["app4"]
	var results []string
	for _, req := range a.Server.Requests() {
		if req.Action == "CompleteLifecycleAction" {
			results = append(results, req.Params.Get("LifecycleActionResult")+" "+req.Params.Get("InstanceId"))
		}
	}
	if strings.Join(results, ",") != "ABANDON "+app4 {
		t.Errorf("lifecycle completions %q, want ABANDON of %s", results, app4)
	}
	if _, lc, _, _ := a.Server.ASGState(a.Account, a.Region, awslab.Group); lc[app4] != "" {
		t.Errorf("app4 is %q in the group after ABANDON", lc[app4])
	}
	if evs := d.lastRecord(t); evs[0].Env != "demo" || recapOf(t, evs)["app4"].Failed == 0 {
		t.Errorf("app4's deploy (env %q) did not fail: %+v", evs[0].Env, recapOf(t, evs)["app4"])
	}
	for h, pid := range map[string]int{"app1": pid1, "app2": pid2} {
		if v, p := d.status(t, h); v != "v2" || p != pid {
			t.Errorf("%s touched by the launches: %s pid %d (was v2 pid %d)", h, v, p, pid)
		}
	}
	if v, f := depth(t, q); v != 0 || f != 0 {
		t.Errorf("launch queue: %d visible, %d in flight", v, f)
	}
}

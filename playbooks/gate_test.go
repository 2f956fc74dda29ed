package playbooks

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
)

// fakeCloudWatch answers alarms from a state a test flips.
type fakeCloudWatch struct {
	mu     sync.Mutex
	calls  int
	flipAt int // from this call on, the alarm is ALARM (0: never)
	err    error
}

func (f *fakeCloudWatch) Alarms(_ context.Context, _ string, names []string, _ string) ([]awsapi.Alarm, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	st := "OK"
	if f.flipAt > 0 && f.calls >= f.flipAt {
		st = "ALARM"
	}
	return []awsapi.Alarm{{Name: names[0], State: st, Reason: "5xx over 1%"}}, nil
}

func (f *fakeCloudWatch) MetricValue(context.Context, string, awsapi.MetricQuery) (float64, bool, error) {
	return 3, true, nil
}

const gatePlay = `
- hosts: app
  serial: 1
  rollback_completed: true
  verify:
    batches: [2]
    bake: 300ms
    interval: 50ms
    checks:
      - name: 5xx alarm
        alarms: {names: [app-5xx]}
  tasks:
    - debug: {msg: deploy}
  rollback:
    - debug: {msg: undo}
`

func TestGateAlarmRollsBackAndHalts(t *testing.T) {
	cw := &fakeCloudWatch{flipAt: 3}
	res, rec := runPB(t, gatePlay, 3, func(o *Options) { o.CloudWatch = cw })
	if res.ExitCode != exitcode.Failed {
		t.Fatalf("exit %d", res.ExitCode)
	}
	if got := batchesOf(rec); got != "h1 | h2" {
		t.Fatalf("batches %q: the rollout went on after the gate failed", got)
	}
	if n := len(rec.kinds(events.GateStart)); n != 1 {
		t.Fatalf("%d gates, want one, after batch 2 only", n)
	}
	end := rec.kinds(events.GateEnd)[0]
	if end.Status != events.StatusFailed || !strings.Contains(end.Msg, "app-5xx is ALARM (5xx over 1%)") {
		t.Errorf("gate end %s: %q", end.Status, end.Msg)
	}
	var rolled []string
	for _, e := range rec.kinds(events.TaskEnd) {
		if e.Rollback {
			rolled = append(rolled, e.Host)
		}
	}
	// The gated batch (h2), then the completed one (h1, rollback_completed).
	if strings.Join(rolled, ",") != "h2,h1" {
		t.Errorf("rolled back %v, want h2 then h1", rolled)
	}
	run := rec.kinds(events.RunEnd)[0]
	if !strings.Contains(run.Msg, "verify gate after batch 2: 5xx alarm (alarms) failed: app-5xx is ALARM") {
		t.Errorf("run message %q", run.Msg)
	}
	rc := map[string]events.HostRecap{}
	for _, r := range res.Recap {
		rc[r.Host] = r
	}
	if !rc["h2"].RolledBack || !rc["h1"].RolledBack || !rc["h3"].Untouched {
		t.Errorf("recap %+v", res.Recap)
	}
}

// A gate that passes bakes for its whole bake time (by the events' times),
// polling every interval, and the rollout goes on.
func TestGateBakesThenPasses(t *testing.T) {
	cw := &fakeCloudWatch{}
	res, rec := runPB(t, strings.Replace(gatePlay, "batches: [2]", "batches: [1]", 1), 3, func(o *Options) { o.CloudWatch = cw })
	if res.ExitCode != exitcode.OK {
		t.Fatalf("exit %d", res.ExitCode)
	}
	start, end := rec.kinds(events.GateStart)[0], rec.kinds(events.GateEnd)[0]
	if end.Status != events.StatusOK || end.Time.Sub(start.Time) < 300*time.Millisecond || start.Duration != 300*time.Millisecond {
		t.Errorf("gate %s after %s (bake %s)", end.Status, end.Time.Sub(start.Time), start.Duration)
	}
	if n := len(rec.kinds(events.GateCheck)); n < 4 {
		t.Errorf("%d polls in a 300ms bake every 50ms", n)
	}
	// The gate ran between batch 1's end and batch 2's start.
	var order []string
	for _, e := range rec.evs {
		switch e.Kind {
		case events.GateStart, events.GateEnd, events.BatchStart, events.BatchEnd:
			order = append(order, string(e.Kind))
		}
	}
	if got := strings.Join(order[:4], " "); got != "batch_start gate_start gate_end batch_end" {
		t.Errorf("order %s", got)
	}
}

// A poll that cannot ask AWS fails the gate, unless ignore_poll_failures.
func TestGatePollFailures(t *testing.T) {
	cw := &fakeCloudWatch{err: context.DeadlineExceeded}
	res, _ := runPB(t, gatePlay, 2, func(o *Options) { o.CloudWatch = cw })
	if res.ExitCode != exitcode.Failed {
		t.Errorf("poll failure: exit %d, want 2", res.ExitCode)
	}
	cw = &fakeCloudWatch{err: context.DeadlineExceeded}
	res, _ = runPB(t, strings.Replace(gatePlay, "interval: 50ms", "interval: 50ms\n    ignore_poll_failures: true", 1), 2, func(o *Options) { o.CloudWatch = cw })
	if res.ExitCode != exitcode.OK {
		t.Errorf("ignore_poll_failures: exit %d, want 0", res.ExitCode)
	}
}

func TestLoadVerifyErrors(t *testing.T) {
	_, err := Parse("deploy.yml", []byte(`
- hosts: app
  verify:
    bake: 1m
    intervall: 5s
    checks:
      - alarms: {}
      - metrics: {namespace: AWS/ApplicationELB}
      - http: {url: "http://x/", status: abc}
      - canary: {quantile: 2}
      - smtp: {}
  tasks:
    - debug: {msg: x}
`))
	if err == nil {
		t.Fatal("loaded")
	}
	for _, want := range []string{`deploy.yml:5:5`, `verify: unknown key "intervall"`, "alarms check: give names or a prefix",
		"metrics check: namespace, metric and max or min are required", `status "abc" is not a number`, "quantile must be between 0 and 1",
		`check: unknown key "smtp"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// The canary's approval comes after its gate: gate_end, then pause_wait.
func TestGateBeforeApproval(t *testing.T) {
	src := strings.Replace(gatePlay, "batches: [2]", "batches: [1]", 1)
	src = strings.Replace(src, "  rollback_completed: true\n", "  pause_after: [1]\n", 1)
	res, rec := runPB(t, src, 2, func(o *Options) { o.CloudWatch = &fakeCloudWatch{}; o.Yes = true })
	if res.ExitCode != exitcode.OK {
		t.Fatalf("exit %d", res.ExitCode)
	}
	var order []string
	for _, e := range rec.evs {
		switch e.Kind {
		case events.GateEnd, events.PauseWait, events.BatchStart:
			order = append(order, string(e.Kind))
		}
	}
	if got := strings.Join(order, " "); got != "batch_start gate_end pause_wait batch_start" {
		t.Errorf("order %s", got)
	}
}

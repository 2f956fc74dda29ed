package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
	"github.com/ferrydeploy/ferry/internal/testrig/lab/awslab"
	"github.com/ferrydeploy/ferry/internal/testrig/sqsemu"
	"github.com/ferrydeploy/ferry/output"
)

// These tests run `ferry enqueue` and `ferry worker` against the
// third-party SQS emulator local-aws-sqs (real aws-sdk-go-v2 client) and a
// lab fleet.

// sqsQueues is a FIFO deploy queue with its dead-letter queue.
type sqsQueues struct {
	f          *awsapi.Factory
	url        string
	q, dlq     *awsapi.Queue
	sqsEnv     []string // what points ferry's SQS client at the emulator
	maxReceive string
}

// startSQS starts local-aws-sqs and creates the queues. When aws is false,
// the other AWS services point at an idle awsemu (the SDK needs a region
// and keys).
func startSQS(t *testing.T, maxReceive string, aws bool) *sqsQueues {
	t.Helper()
	e := sqsemu.StartT(t)
	if !aws {
		_, env := awsemu.StartEnv(t, awsemu.Options{})
		setTestEnv(t, append(env, "AWS_REGION=eu-west-1")...)
	}
	setTestEnv(t, "AWS_ENDPOINT_URL_SQS="+e.URL)
	ctx := context.Background()
	f, err := awsapi.NewFactory(ctx, awsapi.Config{Env: commandEnv(t).Lookup})
	if err != nil {
		t.Fatal(err)
	}
	dlqURL, dlqARN, err := f.CreateQueue(ctx, "ferry-deploys-dlq.fifo", map[string]string{"FifoQueue": "true"})
	if err != nil {
		t.Fatal(err)
	}
	url, _, err := f.CreateQueue(ctx, "ferry-deploys.fifo", map[string]string{"FifoQueue": "true", "VisibilityTimeout": "60",
		"RedrivePolicy": `{"maxReceiveCount":"` + maxReceive + `","deadLetterTargetArn":"` + dlqARN + `"}`})
	if err != nil {
		t.Fatal(err)
	}
	s := &sqsQueues{f: f, url: url, maxReceive: maxReceive, sqsEnv: []string{"AWS_ENDPOINT_URL_SQS=" + e.URL}}
	s.q, _ = f.Queue(url)
	s.dlq, _ = f.Queue(dlqURL)
	return s
}

// depth is the queue's visible and in-flight message counts.
func depth(t *testing.T, q *awsapi.Queue) (visible, inFlight int) {
	t.Helper()
	v, f, err := q.Depth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v, f
}

// syncBuffer is an output buffer a test may read while ferry writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bgWorker is `ferry worker` running in this process.
type bgWorker struct {
	out, errb syncBuffer
	cancel    context.CancelFunc
	done      chan int
	code      int
	stopped   bool
}

// startWorker runs `ferry worker ARGS` in the background until stop (the
// SIGTERM of a real process: the same context cancellation).
func startWorker(t *testing.T, args ...string) *bgWorker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &bgWorker{cancel: cancel, done: make(chan int, 1)}
	go func() {
		w.done <- runEnv(ctx, append([]string{"worker"}, args...), commandEnv(t), strings.NewReader(""), &w.out, &w.errb)
	}()
	t.Cleanup(func() { w.stop(t) })
	return w
}

// stop cancels the worker and returns its exit code, bounded.
func (w *bgWorker) stop(t *testing.T) int {
	if w.stopped {
		return w.code
	}
	w.stopped = true
	w.cancel()
	select {
	case w.code = <-w.done:
	case <-time.After(3 * time.Minute):
		t.Fatal("the worker did not stop within 3 minutes of its SIGTERM")
	}
	t.Logf("worker → %d\nstdout:\n%s\nstderr:\n%s", w.code, w.out.String(), w.errb.String())
	return w.code
}

// waitLog waits (bounded) until the worker's output contains s.
func (w *bgWorker) waitLog(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(w.out.String(), s) {
		if time.Now().After(deadline) {
			w.stop(t)
			t.Fatalf("worker log lacks %q after %s", s, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventually polls cond until it holds or timeout passes (queue counters
// of the emulator settle asynchronously).
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// records reads every run record in dir, oldest first.
func records(t *testing.T, dir string) [][]events.Event {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	var out [][]events.Event
	for _, f := range files {
		evs, err := output.ReadRecord(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, evs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0].Time.Before(out[j][0].Time) })
	return out
}

// Acceptance 1: `ferry enqueue` then one `ferry worker`: the fleet is
// deployed, the message deleted, and the worker's log has the run.
func TestWorkerDeploysEnqueuedRequest(t *testing.T) {
	t.Parallel()
	d := startDeployLab(t, 3)
	s := startSQS(t, "5", false)
	ci := []string{"GITHUB_ACTIONS=true", "GITHUB_SERVER_URL=https://ci.example", "GITHUB_REPOSITORY=acme/app", "GITHUB_RUN_ID=4242"}
	r := ferry(t, append(append(d.env, s.sqsEnv...), ci...), "enqueue", "deploy.yml", "--env", "staging",
		"-e", "version=v2", "-e", "dist="+d.dist, "--queue", s.url)
	if r.code != 0 {
		t.Fatalf("enqueue: exit %d", r.code)
	}
	msgID := strings.TrimSpace(r.stdout)
	if msgID == "" || !eventually(10*time.Second, func() bool { v, _ := depth(t, s.q); return v == 1 }) {
		t.Fatalf("after enqueue: id %q, and no message on the queue", msgID)
	}
	setTestEnv(t, "GITHUB_ACTIONS=") // the worker is not a CI job

	w := startWorker(t, "--queue", s.url, "-i", d.Inventory, "--visibility", "30s", "--playbook-dir", filepath.Dir(example("deploy.yml")), "--allow-var", "dist=/.*")
	w.waitLog(t, "worker deleted message "+msgID, 2*time.Minute)
	if code := w.stop(t); code != 0 {
		t.Fatalf("worker exit %d after SIGTERM, want 0", code)
	}
	for _, h := range []string{"app1", "app2", "app3"} {
		if v, _ := d.status(t, h); v != "v2" {
			t.Errorf("%s runs %s, want v2", h, v)
		}
	}
	if v, f := depth(t, s.q); v != 0 || f != 0 {
		t.Errorf("queue: %d visible, %d in flight after the run; want it empty", v, f)
	}
	log := w.out.String()
	for _, want := range []string{"worker received message " + msgID + " env staging", "https://ci.example/acme/app/actions/runs/4242",
		"[staging] ", "Smoke test", "record: "} {
		if !strings.Contains(log, want) {
			t.Errorf("worker log lacks %q", want)
		}
	}
	evs := d.lastRecord(t)
	if evs[0].Kind != events.RunStart || evs[0].Env != "staging" || evs[0].Version != "v2" || !strings.Contains(evs[0].Origin, "https://ci.example/acme/app/actions/runs/4242") {
		t.Errorf("record starts with %+v", evs[0])
	}
	// The identity is the sender SQS names (local-aws-sqs gives every
	// message the same SenderId); who the message says it is, is claimed.
	if !strings.HasPrefix(evs[0].User, "sqs:ABCDEFGHI1JKLMNOPQ23R (claims: ") || !strings.Contains(evs[0].Origin, "for claimed https://ci.example/") {
		t.Errorf("record's user %q, origin %q: want the SQS sender, and the message's who and origin marked as claimed", evs[0].User, evs[0].Origin)
	}
	// The worker's run wrote its page next to its record (setup's did not ask).
	if pages, _ := filepath.Glob(filepath.Join(d.records, "*.html")); len(pages) != 1 || !strings.HasPrefix(filepath.Base(pages[0]), evs[0].RunID) {
		t.Errorf("report pages %v, want one for run %s", pages, evs[0].RunID)
	}
}

// Acceptance 4: a request whose playbook fails validation reaches the
// dead-letter queue after maxReceiveCount receives and touches no host.
func TestWorkerInvalidPlaybookGoesToDeadLetterQueue(t *testing.T) {
	t.Parallel()
	d := startDeployLab(t, 2)
	s := startSQS(t, "2", false)
	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte("- hosts: app\n  tasks:\n    - name: typo\n      shel: {cmd: touch /tmp/touched}\n"), 0o600)
	before := map[string]int{}
	for _, h := range []string{"app1", "app2"} {
		_, before[h] = d.status(t, h)
	}
	r := ferry(t, append(d.env, s.sqsEnv...), "enqueue", "bad.yml", "--env", "staging", "-e", "version=v2", "--queue", s.url)
	if r.code != 0 {
		t.Fatalf("enqueue: exit %d", r.code)
	}
	// A short visibility: the failed message comes back within seconds.
	w := startWorker(t, "--queue", s.url, "-i", d.Inventory, "--visibility", "2s", "--playbook-dir", filepath.Dir(bad))
	if !eventually(90*time.Second, func() bool { v, _ := depth(t, s.dlq); return v == 1 }) {
		w.stop(t)
		t.Fatal("the request did not reach the dead-letter queue in 90s")
	}
	if code := w.stop(t); code != 0 {
		t.Fatalf("worker exit %d", code)
	}
	log := w.out.String() + w.errb.String()
	runs := strings.Count(log, "worker left message")
	if runs < 1 || runs > 2 {
		t.Errorf("the request failed %d times, want 1..maxReceiveCount (2)", runs)
	}
	if !strings.Contains(log, `did you mean "shell"`) || !strings.Contains(log, "exit 4") {
		t.Errorf("worker log does not show the validation error and exit 4")
	}
	if v, f := depth(t, s.q); v != 0 || f != 0 {
		t.Errorf("queue: %d visible, %d in flight; want the message moved to the dead-letter queue", v, f)
	}
	for _, h := range []string{"app1", "app2"} {
		if v, pid := d.status(t, h); v != "v1" || pid != before[h] {
			t.Errorf("%s touched: %s pid %d (was v1 pid %d)", h, v, pid, before[h])
		}
		if out, _ := d.Exec(context.Background(), h, "test -e /tmp/touched && echo yes || echo no"); strings.TrimSpace(out) != "no" {
			t.Errorf("%s: /tmp/touched exists", h)
		}
	}
	if recs := records(t, d.records); len(recs) != 1 { // setup's
		t.Errorf("%d run records, want only the setup's: an invalid playbook starts no run", len(recs))
	}
}

// Acceptance 5: a worker SIGKILLed mid-rollout (batch 2, a host drained
// and stopped); another worker gets the message after its visibility
// timeout, resumes the dead run from its journal (the shared record
// directory), and the fleet ends on the new version, every host in its
// load balancers.
func TestWorkerKilledAnotherResumes(t *testing.T) {
	t.Parallel()
	d := startAWSDeployLab(t, 5)
	a := d.aws
	s := startSQS(t, "1000", true)
	r := ferry(t, append(d.env, s.sqsEnv...), "enqueue", "deploy.yml", "--env", "demo",
		"-e", "version=v2", "-e", "dist="+d.dist, "--queue", s.url)
	if r.code != 0 {
		t.Fatalf("enqueue: exit %d", r.code)
	}
	msgID := strings.TrimSpace(r.stdout)

	victim := ""
	cmd, done := startRun(t, append(d.env, s.sqsEnv...), func(cmd *exec.Cmd, e events.Event) bool {
		if e.Kind == events.TaskEnd && e.Batch == 2 && e.Task == "Stop" && e.Status == events.StatusChanged {
			victim = e.Host
			cmd.Process.Signal(syscall.SIGKILL)
			return true
		}
		return false
	}, "worker", "--queue", s.url, "-i", a.Inventory, "-o", "json", "--visibility", "3s", "--playbook-dir", filepath.Dir(example("deploy.yml")), "--allow-var", "dist=/.*")
	if code := waitExit(t, cmd, done); code != -1 || victim == "" {
		t.Fatalf("worker exit %d, victim %q: want it SIGKILLed after a batch-2 host stopped", code, victim)
	}
	killed := d.lastRecord(t)
	for _, e := range killed {
		if e.Kind == events.RunEnd {
			t.Fatal("the killed worker's run wrote run_end")
		}
	}
	// Down, or (the kill lands a moment after the event that asked for it,
	// and the staged release's switch is one fast command) starting again,
	// not yet ready; never serving a version. As TestSIGKILLThenResume.
	if v, _ := d.status(t, victim); v != "down" && v != "" {
		t.Fatalf("%s answers (%s) after its unit was stopped", victim, v)
	}

	w := startWorker(t, "--queue", s.url, "-i", a.Inventory, "--visibility", "3s", "--playbook-dir", filepath.Dir(example("deploy.yml")), "--allow-var", "dist=/.*")
	w.waitLog(t, "worker deleted message "+msgID, 3*time.Minute)
	if code := w.stop(t); code != 0 {
		t.Fatalf("second worker exit %d", code)
	}
	if !strings.Contains(w.out.String(), "resuming run "+killed[0].RunID) {
		t.Errorf("the second worker did not resume run %s", killed[0].RunID)
	}
	resumed := d.lastRecord(t)
	if resumed[0].ResumeOf != killed[0].RunID {
		t.Errorf("last run resumes %q, want %q", resumed[0].ResumeOf, killed[0].RunID)
	}
	for h, rc := range recapOf(t, resumed) {
		if rc.Left != events.LeftInService {
			t.Errorf("%s left %q", h, rc.Left)
		}
	}
	names := []string{"app1", "app2", "app3", "app4", "app5"}
	for _, h := range names {
		if v, _ := d.status(t, h); v != "v2" {
			t.Errorf("%s runs %s", h, v)
		}
	}
	tg, _ := a.Server.TargetHealth(a.Account, a.Region, a.TargetGroupARN)
	lbs, _ := a.Server.InstanceHealth(a.Account, a.Region, awslab.LoadBalancer)
	if now := (awslab.Sample{TargetGroup: tg, ELB: lbs}); now.Healthy() != len(names) {
		t.Errorf("target group %v, elb %v; want every host in service", tg, lbs)
	}
	if _, _, suspended, _ := a.Server.ASGState(a.Account, a.Region, awslab.Group); len(suspended) != 0 {
		t.Errorf("processes still suspended: %v", suspended)
	}
	if v, f := depth(t, s.q); v != 0 || f != 0 {
		t.Errorf("queue: %d visible, %d in flight", v, f)
	}
}

// SIGTERM to a busy worker (a real process): the in-flight host finishes
// or rolls back, the message is handed back (visible again at once, not
// after its visibility timeout), and the worker exits 0.
func TestWorkerSIGTERMHandsMessageBack(t *testing.T) {
	t.Parallel()
	d := startDeployLab(t, 3)
	s := startSQS(t, "1000", false)
	pb := filepath.Join(t.TempDir(), "slow.yml")
	src, _ := os.ReadFile(example("deploy.yml"))
	os.WriteFile(pb, []byte(strings.Replace(string(src), "    - name: Smoke test\n", "    - name: Warm up\n      shell: sleep 2\n    - name: Smoke test\n", 1)), 0o600)
	if r := ferry(t, append(d.env, s.sqsEnv...), "enqueue", filepath.Base(pb), "--env", "staging", "-e", "version=v2", "-e", "dist="+d.dist, "--queue", s.url); r.code != 0 {
		t.Fatalf("enqueue: exit %d", r.code)
	}
	signalled := false
	cmd, done := startRun(t, append(d.env, s.sqsEnv...), func(cmd *exec.Cmd, e events.Event) bool {
		if !signalled && e.Kind == events.TaskStart && e.Task == "Warm up" {
			cmd.Process.Signal(syscall.SIGTERM)
			signalled = true
		}
		return false
	}, "worker", "--queue", s.url, "-i", d.Inventory, "-o", "json", "--visibility", "60s", "--playbook-dir", filepath.Dir(pb), "--allow-var", "dist=/.*")
	if code := waitExit(t, cmd, done); code != 0 || !signalled {
		t.Fatalf("worker exit %d (signalled %v), want 0 after SIGTERM", code, signalled)
	}
	for _, h := range []string{"app1", "app2", "app3"} {
		if v, _ := d.status(t, h); v == "down" {
			t.Errorf("%s left stopped", h)
		}
	}
	rc := recapOf(t, d.lastRecord(t))
	if !rc["app2"].Untouched || !rc["app3"].Untouched {
		t.Errorf("hosts after the interrupted batch were touched: %+v %+v", rc["app2"], rc["app3"])
	}
	// Handed back: receivable now, well before the 60s visibility timeout.
	ms, err := s.q.Receive(context.Background(), 1, 5*time.Second, 60*time.Second)
	if err != nil || len(ms) != 1 {
		t.Fatalf("after SIGTERM: %v %v, want the message back on the queue", ms, err)
	}
}

// runSpan is when a run worked on hosts: its first task start to its last
// task end, from its record.
type runSpan struct {
	env, version string
	start, end   time.Time
}

func spansByRecord(t *testing.T, dir string) []runSpan {
	t.Helper()
	var out []runSpan
	for _, evs := range records(t, dir) {
		s := runSpan{env: evs[0].Env, version: evs[0].Version}
		for _, e := range evs {
			if e.Host == "" {
				continue
			}
			if e.Kind == events.TaskStart && (s.start.IsZero() || e.Time.Before(s.start)) {
				s.start = e.Time
			}
			if e.Kind == events.TaskEnd && e.Time.After(s.end) {
				s.end = e.Time
			}
		}
		out = append(out, s)
	}
	return out
}

// Acceptance 2: two workers; two requests for one environment run one
// after the other, never overlapping; requests for two environments run
// at the same time.
func TestWorkersSerialiseAnEnvironment(t *testing.T) {
	t.Parallel()
	d := startDeployLab(t, 4)
	cfg := filepath.Join(t.TempDir(), "ferry.yml")
	os.WriteFile(cfg, []byte("environments:\n  staging: {inventory: "+d.Inventory+", limit: 'app1:app2'}\n  qa: {inventory: "+d.Inventory+", limit: 'app3:app4'}\n"), 0o600)
	s := startSQS(t, "1000", false)
	setTestEnv(t, "FERRY_CONFIG="+cfg)
	pb := filepath.Join(filepath.Dir(cfg), "slow.yml") // in the deploy repository, beside its ferry.yml
	src, _ := os.ReadFile(example("deploy.yml"))
	os.WriteFile(pb, []byte(strings.Replace(string(src), "    - name: Smoke test\n", "    - name: Warm up\n      shell: sleep 1\n    - name: Smoke test\n", 1)), 0o600)
	enqueue := func(env, version string) string {
		t.Helper()
		r := ferry(t, append(d.env, s.sqsEnv...), "enqueue", filepath.Base(pb), "--env", env, "-e", "version="+version, "-e", "dist="+d.dist, "--queue", s.url)
		if r.code != 0 {
			t.Fatalf("enqueue: exit %d", r.code)
		}
		return strings.TrimSpace(r.stdout)
	}
	w1 := startWorker(t, "--queue", s.url, "--visibility", "20s", "--playbook-dir", filepath.Dir(pb), "--allow-var", "dist=/.*")
	w2 := startWorker(t, "--queue", s.url, "--visibility", "20s", "--playbook-dir", filepath.Dir(pb), "--allow-var", "dist=/.*")
	deleted := func(id string) bool {
		return strings.Contains(w1.out.String()+w2.out.String(), "worker deleted message "+id)
	}
	waitDeleted := func(ids ...string) {
		t.Helper()
		if !eventually(4*time.Minute, func() bool {
			for _, id := range ids {
				if !deleted(id) {
					return false
				}
			}
			return true
		}) {
			w1.stop(t)
			w2.stop(t)
			t.Fatalf("messages %v not all done in 4 minutes", ids)
		}
	}
	setupRuns := len(records(t, d.records))

	// One environment, two requests.
	waitDeleted(enqueue("staging", "v2"), enqueue("staging", "v1"))
	spans := spansByRecord(t, d.records)[setupRuns:]
	if len(spans) != 2 {
		t.Fatalf("%d runs for two requests", len(spans))
	}
	first, second := spans[0], spans[1]
	if second.start.Before(first.start) {
		first, second = second, first
	}
	if second.start.Before(first.end) {
		t.Errorf("runs of staging overlap: %s…%s and %s…%s", first.start.Format("15:04:05.000"), first.end.Format("15:04:05.000"),
			second.start.Format("15:04:05.000"), second.end.Format("15:04:05.000"))
	}
	for _, h := range []string{"app1", "app2"} {
		if v, _ := d.status(t, h); v != second.version {
			t.Errorf("%s runs %s, want %s (the request that ran last)", h, v, second.version)
		}
	}

	// Two environments, at once.
	waitDeleted(enqueue("staging", "v2"), enqueue("qa", "v2"))
	spans = spansByRecord(t, d.records)[setupRuns+2:]
	if len(spans) != 2 || spans[0].env == spans[1].env {
		t.Fatalf("runs %+v, want one of staging and one of qa", spans)
	}
	if !spans[0].start.Before(spans[1].end) || !spans[1].start.Before(spans[0].end) {
		t.Errorf("runs of two environments did not overlap: %+v", spans)
	}
	for _, h := range []string{"app1", "app2", "app3", "app4"} {
		if v, _ := d.status(t, h); v != "v2" {
			t.Errorf("%s runs %s", h, v)
		}
	}
	if w1.stop(t) != 0 || w2.stop(t) != 0 {
		t.Error("a worker did not exit 0")
	}
}

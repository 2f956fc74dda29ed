package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
	"github.com/ferrydeploy/ferry/internal/testrig/sqsemu"
	"github.com/ferrydeploy/ferry/internal/worker"
)

// The loop against local-aws-sqs, with runs scripted by the test (the
// lab tests in internal/cli run real deploys): success deletes, failure
// leaves the message to the redrive policy, SIGTERM hands it back, the
// Auto Scaling test notification is acknowledged.

type scripted struct {
	started chan string
	outcome func(ctx context.Context, r *worker.Request) worker.Outcome
}

func (s *scripted) Deploy(ctx context.Context, m awsapi.Message, r *worker.Request) worker.Outcome {
	s.started <- r.Playbook
	return s.outcome(ctx, r)
}

func (s *scripted) Launch(ctx context.Context, m awsapi.Message, l *worker.Launch) worker.Outcome {
	return worker.Outcome{ExitCode: 4}
}

type fixture struct {
	f        *awsapi.Factory
	q, dlq   *awsapi.Queue
	events   chan worker.Event
	cancel   context.CancelFunc
	done     chan error
	requests int
}

func start(t *testing.T, maxReceives string, r worker.Runner) *fixture {
	t.Helper()
	awsemu.StartTest(t, awsemu.Options{})
	e := sqsemu.StartT(t)
	t.Setenv("AWS_ENDPOINT_URL_SQS", e.URL)
	ctx := context.Background()
	f, err := awsapi.NewFactory(ctx, awsapi.Config{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	dlqURL, dlqARN, err := f.CreateQueue(ctx, "dlq.fifo", map[string]string{"FifoQueue": "true"})
	if err != nil {
		t.Fatal(err)
	}
	url, _, err := f.CreateQueue(ctx, "deploys.fifo", map[string]string{"FifoQueue": "true",
		"RedrivePolicy": `{"maxReceiveCount":"` + maxReceives + `","deadLetterTargetArn":"` + dlqARN + `"}`})
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{f: f, events: make(chan worker.Event, 100), done: make(chan error, 1)}
	fx.q, _ = f.Queue(url)
	fx.dlq, _ = f.Queue(dlqURL)
	wctx, cancel := context.WithCancel(ctx)
	fx.cancel = cancel
	go func() {
		fx.done <- worker.Run(wctx, worker.Options{
			Queues: map[string]worker.Queue{url: fx.q}, Runner: r, Region: "eu-west-1",
			Visibility: 3 * time.Second, Wait: time.Second,
			Log: func(e worker.Event) { t.Logf("%+v", e); fx.events <- e },
		})
	}()
	t.Cleanup(func() { cancel(); <-fx.done })
	return fx
}

func (fx *fixture) send(t *testing.T, body string) {
	t.Helper()
	fx.requests++
	if _, err := fx.q.Send(context.Background(), body, "staging", "d"+string(rune('0'+fx.requests))); err != nil {
		t.Fatal(err)
	}
}

func request(pb string) string {
	b, _ := json.Marshal(worker.Request{Kind: worker.RequestKind, Playbook: pb, Environment: "staging",
		ExtraVars: map[string]any{"version": "v2"}, Who: "ci", DedupID: pb})
	return string(b)
}

// waitFor returns the first event with action, failing after 30s.
func (fx *fixture) waitFor(t *testing.T, action string) worker.Event {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case e := <-fx.events:
			if e.Action == action {
				return e
			}
		case <-deadline:
			t.Fatalf("no %q event in 30s", action)
		}
	}
}

func (fx *fixture) depth(t *testing.T, q *awsapi.Queue) (int, int) {
	v, f, err := q.Depth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v, f
}

func TestSuccessDeletesAndTestNotificationIsIgnored(t *testing.T) {
	r := &scripted{started: make(chan string, 10), outcome: func(context.Context, *worker.Request) worker.Outcome { return worker.Outcome{} }}
	fx := start(t, "5", r)
	s := awsemu.New(awsemu.Options{})
	fx.send(t, s.TestNotification("111111111111", "eu-west-1", "app-asg"))
	if e := fx.waitFor(t, "ignored"); !strings.Contains(e.Detail, "TEST_NOTIFICATION") {
		t.Errorf("ignored: %+v", e)
	}
	fx.send(t, request("deploy.yml"))
	if e := fx.waitFor(t, "deleted"); e.Env != "staging" {
		t.Errorf("deleted: %+v", e)
	}
	if pb := <-r.started; pb != "deploy.yml" {
		t.Errorf("ran %q", pb)
	}
	if v, f := fx.depth(t, fx.q); v != 0 || f != 0 {
		t.Errorf("queue holds %d visible and %d in-flight messages after success", v, f)
	}
}

func TestFailureGoesToDeadLetterQueue(t *testing.T) {
	r := &scripted{started: make(chan string, 10), outcome: func(context.Context, *worker.Request) worker.Outcome { return worker.Outcome{ExitCode: 4} }}
	fx := start(t, "2", r)
	fx.send(t, request("broken.yml"))
	fx.waitFor(t, "left")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if v, _ := fx.depth(t, fx.dlq); v == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failing request did not reach the dead-letter queue in 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := len(r.started); n < 1 || n > 2 {
		t.Errorf("ran %d times, want 1..maxReceiveCount (2)", n)
	}
}

// SIGTERM (ctx cancelled) during a run: the run sees its context end,
// the message is handed back (visible at once) and Run returns nil.
func TestStopHandsTheMessageBack(t *testing.T) {
	r := &scripted{started: make(chan string, 10), outcome: func(ctx context.Context, _ *worker.Request) worker.Outcome {
		<-ctx.Done()
		return worker.Outcome{ExitCode: 130}
	}}
	fx := start(t, "50", r)
	fx.send(t, request("deploy.yml"))
	<-r.started
	fx.cancel()
	if err := <-fx.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	fx.done <- nil // for the cleanup
	fx.waitFor(t, "returned")
	ms, err := fx.q.Receive(context.Background(), 1, 2*time.Second, 30*time.Second)
	if err != nil || len(ms) != 1 {
		t.Fatalf("after the stop: %v %v, want the message back", ms, err)
	}
}

func FuzzParse(f *testing.F) {
	s := awsemu.New(awsemu.Options{})
	f.Add(request("deploy.yml"))
	f.Add(s.TestNotification("111111111111", "eu-west-1", "g"))
	f.Add(`{"LifecycleTransition":"autoscaling:EC2_INSTANCE_LAUNCHING","AutoScalingGroupName":"g","LifecycleHookName":"h","EC2InstanceId":"i-1","NotificationMetadata":"{\"environment\":\"prod\"}"}`)
	f.Add(`{"LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING"}`)
	f.Add(`{"kind":"other"}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		p, err := worker.Parse(body)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		switch p.Kind {
		case worker.KindRequest:
			if p.Request.Playbook == "" || p.Request.Environment == "" {
				t.Fatalf("request without playbook or environment: %+v", p.Request)
			}
		case worker.KindLaunch:
			if p.Launch.EC2InstanceID == "" {
				t.Fatal("launch without instance")
			}
			_, _ = p.Launch.Metadata()
		case worker.KindTest:
		default:
			t.Fatalf("kind %q", p.Kind)
		}
	})
}

type okLaunch struct{ launched chan string }

func (o okLaunch) Deploy(context.Context, awsapi.Message, *worker.Request) worker.Outcome {
	return worker.Outcome{ExitCode: 4}
}
func (o okLaunch) Launch(_ context.Context, _ awsapi.Message, l *worker.Launch) worker.Outcome {
	o.launched <- l.EC2InstanceID
	return worker.Outcome{}
}

// A launch notification delivered twice (SQS standard queues deliver at
// least once): the first completes the action with CONTINUE, the second
// finds it no longer pending and is deleted, not retried into the DLQ.
func TestDuplicateLaunchNotification(t *testing.T) {
	s := awsemu.StartTest(t, awsemu.Options{})
	ids := s.AddInstances("111111111111", "eu-west-1", 2, nil)
	s.AddASG("111111111111", "eu-west-1", awsemu.ASG{Name: "web", Min: 1, Max: 2, InstanceIDs: ids[:1]})
	e := sqsemu.StartT(t)
	t.Setenv("AWS_ENDPOINT_URL_SQS", e.URL)
	ctx := context.Background()
	f, err := awsapi.NewFactory(ctx, awsapi.Config{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	url, _, err := f.CreateQueue(ctx, "launches", nil)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := f.Queue(url)
	n, err := s.Launch("111111111111", "eu-west-1", "web", "hook", ids[1], "")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := q.Send(ctx, n, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	r := okLaunch{launched: make(chan string, 2)}
	evs := make(chan worker.Event, 100)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(wctx, worker.Options{Queues: map[string]worker.Queue{url: q}, Runner: r, Lifecycle: f,
			Region: "eu-west-1", Visibility: 3 * time.Second, Wait: time.Second,
			Log: func(e worker.Event) { t.Logf("%+v", e); evs <- e }})
	}()
	deleted := 0
	deadline := time.After(30 * time.Second)
	for deleted < 2 {
		select {
		case e := <-evs:
			if e.Action == "deleted" {
				deleted++
			}
		case <-deadline:
			t.Fatalf("%d of 2 notifications deleted in 30s", deleted)
		}
	}
	cancel()
	<-done
	var results []string
	for _, a := range s.LifecycleActions("111111111111", "eu-west-1", "web") {
		results = append(results, a.Result)
	}
	if strings.Join(results, ",") != "CONTINUE" {
		t.Errorf("lifecycle actions %v, want one CONTINUE", results)
	}
}

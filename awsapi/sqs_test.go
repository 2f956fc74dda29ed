package awsapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
	"github.com/ferrydeploy/ferry/internal/testrig/sqsemu"
)

// sqsFactory points the SDK's SQS client at a fresh local-aws-sqs (the
// other services at an awsemu that is not used here).
func sqsFactory(t *testing.T) *awsapi.Factory {
	t.Helper()
	env(t, awsemu.Options{})
	e := sqsemu.StartT(t)
	t.Setenv("AWS_ENDPOINT_URL_SQS", e.URL)
	return factory(t)
}

// The queue semantics the worker relies on, against the real SQS client and
// the third-party emulator: FIFO groups deliver one message at a time,
// visibility 0 hands a message back, a message received more than
// maxReceiveCount times moves to the dead-letter queue, long polling
// returns a message sent while it waits, Delete removes one.
func TestQueueSemantics(t *testing.T) {
	f := sqsFactory(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, dlqARN, err := f.CreateQueue(ctx, "deploys-dlq.fifo", map[string]string{"FifoQueue": "true"})
	if err != nil {
		t.Fatal(err)
	}
	dlqURL, _, _ := f.CreateQueue(ctx, "deploys-dlq.fifo", map[string]string{"FifoQueue": "true"})
	url, _, err := f.CreateQueue(ctx, "deploys.fifo", map[string]string{"FifoQueue": "true", "VisibilityTimeout": "30",
		"RedrivePolicy": `{"maxReceiveCount":"3","deadLetterTargetArn":"` + dlqARN + `"}`})
	if err != nil {
		t.Fatal(err)
	}
	q, err := f.Queue(url)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range [][3]string{{"a1", "a", "d-a1"}, {"a2", "a", "d-a2"}, {"b1", "b", "d-b1"}, {"a1 again", "a", "d-a1"}} {
		if _, err := q.Send(ctx, m[0], m[1], m[2]); err != nil {
			t.Fatal(err)
		}
	}
	recv := func(wait time.Duration) *awsapi.Message {
		t.Helper()
		ms, err := q.Receive(ctx, 1, wait, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			return nil
		}
		return &ms[0]
	}
	// local-aws-sqs does not hold a group's later messages back while an
	// earlier one is in flight (SQS does): the worker does not count on it
	// (the deploy lock serialises rollouts of an environment).
	ms, err := q.Receive(ctx, 10, 0, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range ms {
		bodies = append(bodies, m.Body)
	}
	if len(ms) != 3 || ms[0].Body != "a1" || ms[1].Body != "a2" || ms[0].GroupID != "a" || ms[0].ReceiveCount != 1 {
		t.Fatalf("received %q (%+v), want a1 a2 b1 in order, a1's duplicate dropped", bodies, ms)
	}
	a1 := ms[0]
	if m := recv(0); m != nil {
		t.Fatalf("a message in flight was delivered again: %+v", m)
	}
	if err := q.Delete(ctx, ms[2].Receipt); err != nil {
		t.Fatal(err)
	}
	if err := q.Delete(ctx, ms[1].Receipt); err != nil {
		t.Fatal(err)
	}
	// a1 handed back (visibility 0) comes again, until it has been received
	// maxReceiveCount times; then it moves to the dead-letter queue.
	// (local-aws-sqs also counts ChangeMessageVisibility as a receive, so it
	// may move sooner than SQS would.)
	receipt, receives := a1.Receipt, 1
	for i := 0; i < 5; i++ {
		if err := q.SetVisibility(ctx, receipt, 0); err != nil {
			t.Fatal(err)
		}
		m := recv(time.Second)
		if m == nil {
			break
		}
		if m.Body != "a1" || m.ReceiveCount < 2 {
			t.Fatalf("after handing a1 back: %+v", m)
		}
		receipt, receives = m.Receipt, receives+1
	}
	if receives < 2 || receives > 3 {
		t.Fatalf("a1 received %d times, want 2..maxReceiveCount (3)", receives)
	}
	dlq, _ := f.Queue(dlqURL)
	if ms, err := dlq.Receive(ctx, 10, 0, 30*time.Second); err != nil || len(ms) != 1 || ms[0].Body != "a1" {
		t.Fatalf("dead-letter queue: %+v %v, want a1", ms, err)
	}

	// Long polling: a message sent while Receive waits is delivered to it.
	go func() {
		time.Sleep(500 * time.Millisecond)
		q.Send(ctx, "late", "c", "d-late")
	}()
	if m := recv(10 * time.Second); m == nil || m.Body != "late" {
		t.Fatalf("long poll: %+v", m)
	}
}

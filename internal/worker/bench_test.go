package worker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
	"github.com/ferrydeploy/ferry/internal/testrig/sqsemu"
	"github.com/ferrydeploy/ferry/internal/worker"
)

type noop struct{ done chan struct{} }

func (n noop) Deploy(context.Context, awsapi.Message, *worker.Request) worker.Outcome {
	n.done <- struct{}{}
	return worker.Outcome{}
}
func (n noop) Launch(context.Context, awsapi.Message, *worker.Launch) worker.Outcome {
	return worker.Outcome{}
}

// BenchmarkWorkerOverhead is the queue's share of a deploy: a request
// sent until its run starts (send, long-poll receive, parse), against
// local-aws-sqs on loopback; requests spread over 8 environments,
// concurrency 4, runs that do nothing.
func BenchmarkWorkerOverhead(b *testing.B) {
	awsemu.StartTest(b, awsemu.Options{})
	e := sqsemu.StartT(b)
	b.Setenv("AWS_ENDPOINT_URL_SQS", e.URL)
	ctx := context.Background()
	f, err := awsapi.NewFactory(ctx, awsapi.Config{Region: "eu-west-1"})
	if err != nil {
		b.Fatal(err)
	}
	url, _, err := f.CreateQueue(ctx, "bench.fifo", map[string]string{"FifoQueue": "true"})
	if err != nil {
		b.Fatal(err)
	}
	q, _ := f.Queue(url)
	r := noop{done: make(chan struct{}, b.N)}
	wctx, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() {
		stopped <- worker.Run(wctx, worker.Options{Queues: map[string]worker.Queue{url: q}, Runner: r,
			Concurrency: 4, Visibility: 30 * time.Second, Wait: time.Second})
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		env := fmt.Sprintf("env%d", i%8)
		if _, err := q.Send(ctx, request(env+".yml"), env, fmt.Sprint(i)); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < b.N; i++ {
		<-r.done
	}
	b.StopTimer()
	cancel()
	<-stopped
}

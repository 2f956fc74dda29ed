package awsapi_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/internal/awsemu"
)

// Twenty hosts drained from one target group at once: their waits sleep
// through the deregistration delay, then share health reads (one
// DescribeTargetHealth serves them all), and each ends at the first read
// after its own drain ended. The target group's settings are read once.
func TestDrainWaitsShareReads(t *testing.T) {
	s := env(t, awsemu.Options{HealthChecks: true})
	const n = 20
	ids := s.AddInstances(base, "eu-west-1", n, nil)
	var targets []awsemu.Target
	for _, id := range ids {
		targets = append(targets, awsemu.Target{ID: id})
	}
	s.AddTargetGroup(base, "eu-west-1", awsemu.TargetGroup{Name: "web", Port: 80, DeregistrationDelay: 2,
		HealthCheck: awsemu.HealthCheck{Interval: 1, HealthyThreshold: 2}, Targets: targets})
	// The default poll interval (1 s).
	f, err := awsapi.NewFactory(context.Background(), awsapi.Config{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.Drain(ctx, id, "eu-west-1", base, awsapi.DrainOptions{TargetGroups: []string{"web"}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("drain %s: %v", ids[i], err)
		}
	}

	reqs := s.Requests()
	var lastDereg time.Time
	counts := map[string]int{}
	for _, r := range reqs {
		counts[r.Action]++
		if r.Action == "DeregisterTargets" {
			lastDereg = r.Time
		}
	}
	var reads []time.Time
	for _, r := range reqs {
		if r.Action == "DescribeTargetHealth" && r.Time.After(lastDereg) {
			reads = append(reads, r.Time)
		}
	}
	if len(reads) == 0 || len(reads) > 3 {
		t.Errorf("%d health reads while %d hosts waited, want 1 to 3", len(reads), n)
	}
	if counts["DescribeTargetGroupAttributes"] != 1 {
		t.Errorf("%d DescribeTargetGroupAttributes calls, want 1 (read once)", counts["DescribeTargetGroupAttributes"])
	}
	// No read before the first drain could end: the waits slept.
	ended := map[string]time.Time{}
	first := time.Time{}
	for _, c := range s.Changes() {
		if c.To == "unused" {
			ended[c.Instance] = c.Time
			if first.IsZero() || c.Time.Before(first) {
				first = c.Time
			}
		}
	}
	if len(ended) != n {
		t.Fatalf("%d drains ended, want %d", len(ended), n)
	}
	if reads[0].Before(first) {
		t.Errorf("health read at %s, before the first drain could end (%s)", reads[0].Format("15:04:05.000"), first.Format("15:04:05.000"))
	}
}

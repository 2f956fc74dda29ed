package awsapi_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
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

// Entering standby lasts as long as the group's load balancers drain the
// instance: the wait checks once, sleeps through the deregistration delay,
// then polls (default interval) until Standby.
func TestStandbyWaitsForTheDrain(t *testing.T) {
	s := env(t, awsemu.Options{HealthChecks: true})
	ids := s.AddInstances(base, "eu-west-1", 2, nil)
	arn := s.AddTargetGroup(base, "eu-west-1", awsemu.TargetGroup{Name: "web", Port: 80, DeregistrationDelay: 2,
		Targets: []awsemu.Target{{ID: ids[0]}, {ID: ids[1]}}})
	s.AddASG(base, "eu-west-1", awsemu.ASG{Name: "web-asg", Min: 0, Max: 2, InstanceIDs: ids, TargetGroupARNs: []string{arn}})
	f, err := awsapi.NewFactory(context.Background(), awsapi.Config{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	changed, err := f.EnterStandby(context.Background(), "eu-west-1", base, "web-asg", ids[0], false, awsapi.ASGOptions{})
	if err != nil || !changed {
		t.Fatalf("enter standby: %v %v", changed, err)
	}
	var called time.Time
	var reads []time.Time
	for _, r := range s.Requests() {
		switch {
		case r.Action == "EnterStandby":
			called = r.Time
		case r.Action == "DescribeAutoScalingInstances" && !called.IsZero():
			reads = append(reads, r.Time)
		}
	}
	// One read at once, then none until the 2 s drain is over, then the
	// one that finds Standby (within a poll interval).
	if len(reads) != 2 {
		t.Fatalf("%d lifecycle reads after EnterStandby, want 2: %v", len(reads), reads)
	}
	if lag := reads[1].Sub(called); lag < 2*time.Second || lag > 3*time.Second {
		t.Errorf("Standby read %s after EnterStandby, want between the 2 s delay and a poll later", lag)
	}
	if _, lc, _, _ := s.ASGState(base, "eu-west-1", "web-asg"); lc[ids[0]] != "Standby" {
		t.Errorf("lifecycle %v", lc)
	}
}

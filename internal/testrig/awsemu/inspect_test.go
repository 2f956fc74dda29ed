package awsemu_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
)

// TargetHealth and InstanceHealth agree with what the API reports, follow
// the HealthCheck hook, and leave no request in the log.
func TestInspectHealth(t *testing.T) {
	var down atomic.Bool
	s, url := start(t, awsemu.Options{TimeScale: 0.001, HealthCheck: func(id string) (bool, string) {
		if down.Load() && id == "i-2" {
			return false, "Health checks failed with these codes: [500]"
		}
		return true, ""
	}})
	const region = "eu-west-1"
	for _, id := range []string{"i-1", "i-2", "i-3"} {
		s.AddInstance(base, region, awsemu.Instance{ID: id})
	}
	arn := s.AddTargetGroup(base, region, awsemu.TargetGroup{Name: "web", DeregistrationDelay: 300,
		Targets: []awsemu.Target{{ID: "i-1"}, {ID: "i-2"}, {ID: "i-3"}}})
	s.AddClassicELB(base, region, awsemu.ClassicELB{Name: "web-elb", Instances: []string{"i-1", "i-2"}})

	got, err := s.TargetHealth(base, region, arn)
	if err != nil || len(got) != 3 || got["i-1"] != "healthy" || got["i-2"] != "healthy" {
		t.Fatalf("TargetHealth = %v, %v; want three healthy targets", got, err)
	}
	down.Store(true)
	got, _ = s.TargetHealth(base, region, arn)
	if got["i-2"] != "unhealthy" || got["i-1"] != "healthy" {
		t.Errorf("after the hook fails i-2: %v", got)
	}
	lbs, err := s.InstanceHealth(base, region, "web-elb")
	if err != nil || lbs["i-1"] != "InService" || lbs["i-2"] != "OutOfService" || len(lbs) != 2 {
		t.Errorf("InstanceHealth = %v, %v", lbs, err)
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("inspection logged %d requests", n)
	}

	// A target deregistered through the API is draining, then gone.
	c := elbv2.NewFromConfig(sdkConfig(t, url, region, nil))
	if _, err := c.DeregisterTargets(context.Background(), &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(arn),
		Targets: []elbv2types.TargetDescription{{Id: aws.String("i-3")}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.TargetHealth(base, region, arn); got["i-3"] != "draining" {
		t.Errorf("i-3 after deregistration: %q, want draining", got["i-3"])
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := s.TargetHealth(base, region, arn)
		if _, ok := got["i-3"]; !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("i-3 still in the target group: %v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := s.TargetHealth(base, region, "arn:nope"); err == nil {
		t.Error("unknown target group: no error")
	}
	if _, err := s.InstanceHealth(base, region, "nope"); err == nil {
		t.Error("unknown load balancer: no error")
	}
}

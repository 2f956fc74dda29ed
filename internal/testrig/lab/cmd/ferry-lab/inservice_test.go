package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
	"github.com/ferrydeploy/ferry/internal/testrig/lab/awslab"
)

// --wait-in-service waits for the emulator to say every host is in service
// in the lab's target group and classic ELB, and gives up, saying how far
// it got, when they are not.
func TestWaitInService(t *testing.T) {
	var up atomic.Bool
	s := awsemu.StartTest(t, awsemu.Options{HealthCheck: func(id string) (bool, string) {
		if up.Load() || id == "i-1" {
			return true, ""
		}
		return false, "Target.FailedHealthChecks"
	}})
	t.Setenv("AWS_REGION", "eu-west-1")
	acct := "111111111111"
	var ids []string
	for _, id := range []string{"i-1", "i-2"} {
		ids = append(ids, s.AddInstance(acct, "eu-west-1", awsemu.Instance{ID: id, AZ: "eu-west-1a", PrivateIP: "10.0.0." + id[2:]}))
	}
	s.AddTargetGroup(acct, "eu-west-1", awsemu.TargetGroup{Name: awslab.TargetGroup, Port: 8080, Protocol: "HTTP", Targets: []awsemu.Target{{ID: ids[0]}, {ID: ids[1]}}})
	s.AddClassicELB(acct, "eu-west-1", awsemu.ClassicELB{Name: awslab.LoadBalancer, Instances: ids, AZs: []string{"eu-west-1a"}, InstancePort: 8080})

	// Long enough for a first answer on a busy machine (make test): the
	// message must say how far it got, not that a call was cut short.
	err := waitInService(context.Background(), 3*time.Second)
	if err == nil || !strings.Contains(err.Error(), "1/2 healthy") || !strings.Contains(err.Error(), "1/2 InService") {
		t.Fatalf("one host of two unhealthy: %v, want an error saying 1/2 in each", err)
	}
	up.Store(true)
	if err := waitInService(context.Background(), 30*time.Second); err != nil {
		t.Fatalf("every host healthy: %v", err)
	}
}

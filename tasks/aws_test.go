package tasks

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
)

// awsHost is a controller-side host whose AWS access is the real SDK
// pointed at a local emulator.
func awsHost(t *testing.T) (*Host, *awsemu.Server, []string) {
	t.Helper()
	s := awsemu.New(awsemu.Options{TimeScale: 0.0005, InitialFor: 10 * time.Millisecond})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	for k, v := range map[string]string{"AWS_ENDPOINT_URL": srv.URL, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x",
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": t.TempDir() + "/none", "AWS_SHARED_CREDENTIALS_FILE": t.TempDir() + "/none"} {
		t.Setenv(k, v)
	}
	ids := s.AddInstances("111111111111", "eu-west-1", 2, nil)
	s.AddTargetGroup("111111111111", "eu-west-1", awsemu.TargetGroup{Name: "api", Port: 8080, Targets: []awsemu.Target{{ID: ids[0]}, {ID: ids[1]}},
		HealthCheck: awsemu.HealthCheck{HealthyThreshold: 1}})
	s.AddASG("111111111111", "eu-west-1", awsemu.ASG{Name: "api-asg", Min: 0, Max: 2, InstanceIDs: ids})
	f, err := awsapi.NewFactory(context.Background(), awsapi.Config{Region: "eu-west-1", PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{Name: "api-1", State: map[string]any{}, Controller: &Controller{AWS: f},
		Vars: map[string]any{"instance_id": ids[0], "region": "eu-west-1", "account_id": "111111111111", "autoscaling_group": "api-asg"}}
	return h, s, ids
}

func TestELBModuleDrainsAndRestores(t *testing.T) {
	h, s, ids := awsHost(t)
	h.Check = true
	if out := runModule(t, h, "elb", map[string]any{"state": "drained"}); !out.Changed || !strings.Contains(out.Msg, "would drain from target group api:8080") {
		t.Fatalf("check: %+v", out)
	}
	for _, r := range s.Requests() {
		if strings.HasPrefix(r.Action, "Deregister") {
			t.Fatal("check mode deregistered")
		}
	}
	h.Check = false
	out := runModule(t, h, "elb", map[string]any{"state": "drained"})
	if out.Failed || !out.Changed || h.State[ElbStateKey] == nil {
		t.Fatalf("drain: %+v", out)
	}
	out = runModule(t, h, "elb", map[string]any{"state": "registered"})
	if out.Failed || !out.Changed || h.State[ElbStateKey] != nil {
		t.Fatalf("register: %+v", out)
	}
	var regs []string
	for _, r := range s.Requests() {
		if r.Action == "RegisterTargets" || r.Action == "DeregisterTargets" {
			regs = append(regs, r.Action+":"+r.Params.Get("Targets.member.1.Id")+":"+r.Params.Get("Targets.member.1.Port"))
		}
	}
	if strings.Join(regs, " ") != "DeregisterTargets:"+ids[0]+":8080 RegisterTargets:"+ids[0]+":8080" {
		t.Errorf("calls: %v", regs)
	}
	if out := runModule(t, h, "elb", map[string]any{"state": "registered"}); out.Changed {
		t.Errorf("second register: %+v", out)
	}
}

func TestASGModule(t *testing.T) {
	h, s, ids := awsHost(t)
	if out := runModule(t, h, "asg", map[string]any{"suspend": []any{"Launch", "AZRebalance"}}); out.Failed || !out.Changed {
		t.Fatalf("suspend: %+v", out)
	}
	if _, _, susp, _ := s.ASGState("111111111111", "eu-west-1", "api-asg"); strings.Join(susp, ",") != "AZRebalance,Launch" {
		t.Errorf("suspended %v", susp)
	}
	if out := runModule(t, h, "asg", map[string]any{"state": "standby"}); out.Failed || !out.Changed {
		t.Fatalf("standby: %+v", out)
	}
	if desired, lc, _, _ := s.ASGState("111111111111", "eu-west-1", "api-asg"); desired != 1 || lc[ids[0]] != "Standby" {
		t.Errorf("after standby: %d %v", desired, lc)
	}
	if out := runModule(t, h, "asg", map[string]any{"state": "in_service"}); out.Failed || !out.Changed {
		t.Fatalf("in service: %+v", out)
	}
	if out := runModule(t, h, "asg", map[string]any{"resume": "all"}); out.Failed {
		t.Fatalf("resume: %+v", out)
	}
	if _, _, susp, _ := s.ASGState("111111111111", "eu-west-1", "api-asg"); len(susp) != 0 {
		t.Errorf("still suspended %v", susp)
	}
	m, _ := Lookup("asg")
	if _, err := Call(context.Background(), m, h, map[string]any{"state": "standby", "suspend": []any{"Launch"}}); err == nil {
		t.Error("state and suspend together accepted")
	}
}

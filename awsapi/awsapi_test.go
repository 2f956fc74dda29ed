package awsapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
)

const (
	base  = "111111111111"
	other = "222222222222"
	role  = "arn:aws:iam::222222222222:role/deploy"
)

// env points the SDK at the emulator as a user would (see awsemu.StartTest).
func env(t *testing.T, opts awsemu.Options) *awsemu.Server {
	t.Helper()
	return awsemu.StartTest(t, opts)
}

func factory(t *testing.T) *awsapi.Factory {
	t.Helper()
	f, err := awsapi.NewFactory(context.Background(), awsapi.Config{Region: "us-east-1", AssumeRoles: []string{role},
		PollInterval: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// actions lists the logged actions (of the given services, all when none).
func actions(reqs []awsemu.Request, services ...string) []string {
	var out []string
	for _, r := range reqs {
		if len(services) == 0 || slices.Contains(services, r.Service) {
			out = append(out, r.Action)
		}
	}
	return out
}

func index(l []string, v string) int {
	for i, x := range l {
		if x == v {
			return i
		}
	}
	return -1
}

func lastIndex(l []string, v string) int {
	for i := len(l) - 1; i >= 0; i-- {
		if l[i] == v {
			return i
		}
	}
	return -1
}

type lab struct {
	s        *awsemu.Server
	id, peer string
	tgAPI    string
	tgAdmin  string
	tgOther  string
}

func newLab(t *testing.T, health func(string) (bool, string)) *lab {
	s := env(t, awsemu.Options{TimeScale: 0.0005, InitialFor: 20 * time.Millisecond, HealthCheck: health})
	ids := s.AddInstances(base, "eu-west-1", 2, nil)
	l := &lab{s: s, id: ids[0], peer: ids[1]}
	// Health checks that pass once are enough: waits for health start at once.
	hc := awsemu.HealthCheck{HealthyThreshold: 1}
	l.tgAPI = s.AddTargetGroup(base, "eu-west-1", awsemu.TargetGroup{Name: "api", Port: 8080, DeregistrationDelay: 300,
		Targets: []awsemu.Target{{ID: ids[0]}, {ID: ids[1]}}, HealthCheck: hc})
	l.tgAdmin = s.AddTargetGroup(base, "eu-west-1", awsemu.TargetGroup{Name: "admin", Port: 9000, DeregistrationDelay: 30,
		Targets: []awsemu.Target{{ID: ids[0], Port: 9001}}, HealthCheck: hc})
	l.tgOther = s.AddTargetGroup(base, "eu-west-1", awsemu.TargetGroup{Name: "other", Targets: []awsemu.Target{{ID: ids[1]}}, HealthCheck: hc})
	s.AddClassicELB(base, "eu-west-1", awsemu.ClassicELB{Name: "legacy", ConnectionDraining: true, DrainingTimeout: 60, Instances: ids[:1], HealthCheck: hc})
	s.AddClassicELB(base, "eu-west-1", awsemu.ClassicELB{Name: "unrelated", Instances: ids[1:]})
	return l
}

func TestDrainThenRegister(t *testing.T) {
	l := newLab(t, nil)
	f := factory(t)
	ctx := context.Background()

	d, err := f.Drain(ctx, l.id, "eu-west-1", base, awsapi.DrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(d.LoadBalancers, ",") != "legacy" || len(d.TargetGroups) != 2 {
		t.Fatalf("drained %+v", d)
	}
	ports := map[string]int32{}
	for _, tg := range d.TargetGroups {
		ports[tg.Name] = tg.Port
	}
	if ports["api"] != 8080 || ports["admin"] != 9001 {
		t.Errorf("ports %v", ports)
	}

	acts := actions(l.s.Requests(), "elb", "elbv2")
	// Every target group's health is read before anything is deregistered,
	// and draining is waited for after all deregistrations.
	firstDereg := min(index(acts, "DeregisterTargets"), index(acts, "DeregisterInstancesFromLoadBalancer"))
	if firstDereg < 0 || lastIndex(acts[:firstDereg], "DescribeTargetHealth") < 0 || index(acts, "DescribeTargetGroups") > firstDereg {
		t.Errorf("discovery after deregistration: %v", acts)
	}
	n := 0
	for _, a := range acts[:firstDereg] {
		if a == "DescribeTargetHealth" {
			n++
		}
	}
	if n != 3 {
		t.Errorf("want one DescribeTargetHealth per target group (3) before deregistering, got %d: %v", n, acts)
	}
	if lastIndex(acts, "DescribeTargetHealth") < lastIndex(acts, "DeregisterTargets") || index(acts, "DescribeTargetGroupAttributes") < 0 {
		t.Errorf("did not wait for draining: %v", acts)
	}
	if lastIndex(acts, "DescribeInstanceHealth") < index(acts, "DeregisterInstancesFromLoadBalancer") {
		t.Errorf("did not wait for classic draining: %v", acts)
	}
	for _, r := range l.s.Requests() {
		if r.Action == "DeregisterTargets" && r.Params.Get("Targets.member.1.Id") != l.id {
			t.Errorf("deregistered the wrong target: %v", r.Params)
		}
		if strings.HasPrefix(r.Action, "Deregister") && r.Params.Get("TargetGroupArn") == l.tgOther {
			t.Errorf("touched a target group the instance is not in")
		}
	}
	// Draining over: the instance is in none of them now.
	again, err := f.Membership(ctx, l.id, "eu-west-1", base, awsapi.DrainOptions{})
	if err != nil || !again.Empty() {
		t.Fatalf("after drain still in %+v %v", again, err)
	}

	// The record survives JSON (per-host state, run records).
	raw, _ := json.Marshal(d)
	var back awsapi.Drained
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	l.s.ResetRequests()
	if err := f.Register(ctx, back, awsapi.RegisterOptions{Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	acts = actions(l.s.Requests(), "elb", "elbv2")
	if acts[0] != "RegisterTargets" || lastIndex(acts, "DescribeTargetHealth") < lastIndex(acts, "RegisterTargets") {
		t.Errorf("register order: %v", acts)
	}
	for _, r := range l.s.Requests() {
		if r.Action == "RegisterTargets" && r.Params.Get("TargetGroupArn") == l.tgAdmin && r.Params.Get("Targets.member.1.Port") != "9001" {
			t.Errorf("registered on the wrong port: %v", r.Params)
		}
	}
	now, err := f.Membership(ctx, l.id, "eu-west-1", base, awsapi.DrainOptions{})
	if err != nil || len(now.TargetGroups) != 2 || len(now.LoadBalancers) != 1 {
		t.Errorf("after register: %+v %v", now, err)
	}
}

func TestDrainExplicitAndNothing(t *testing.T) {
	l := newLab(t, nil)
	f := factory(t)
	ctx := context.Background()
	d, err := f.Drain(ctx, l.id, "eu-west-1", base, awsapi.DrainOptions{TargetGroups: []string{"admin"}})
	if err != nil || len(d.TargetGroups) != 1 || d.TargetGroups[0].Name != "admin" || len(d.LoadBalancers) != 0 {
		t.Fatalf("explicit: %+v %v", d, err)
	}
	ids := l.s.AddInstances(base, "eu-west-1", 1, nil)
	d, err = f.Drain(ctx, ids[0], "eu-west-1", base, awsapi.DrainOptions{})
	if err != nil || !d.Empty() {
		t.Errorf("instance in no load balancer: %+v %v", d, err)
	}
}

func TestRegisterTimesOutWithReason(t *testing.T) {
	var mu sync.Mutex
	sick := false
	l := newLab(t, func(string) (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		if sick {
			return false, "Health checks failed with these codes: [503]"
		}
		return true, ""
	})
	f := factory(t)
	ctx := context.Background()
	d, err := f.Drain(ctx, l.id, "eu-west-1", base, awsapi.DrainOptions{TargetGroups: []string{l.tgAPI}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	sick = true
	mu.Unlock()
	err = f.Register(ctx, d, awsapi.RegisterOptions{Timeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "target group api") || !strings.Contains(err.Error(), "[503]") ||
		!strings.Contains(err.Error(), "unhealthy") {
		t.Errorf("want an error naming the target group and the reason, got %v", err)
	}
}

func TestAssumedRoleAccount(t *testing.T) {
	s := env(t, awsemu.Options{TimeScale: 0.0001})
	ids := s.AddInstances(other, "us-west-2", 1, nil)
	s.AddTargetGroup(other, "us-west-2", awsemu.TargetGroup{Name: "web", Targets: []awsemu.Target{{ID: ids[0]}}})
	f := factory(t)
	d, err := f.Drain(context.Background(), ids[0], "us-west-2", other, awsapi.DrainOptions{})
	if err != nil || len(d.TargetGroups) != 1 {
		t.Fatalf("drain in the role's account: %+v %v", d, err)
	}
	sawAssume := false
	for _, r := range s.Requests() {
		if r.Action == "AssumeRole" {
			sawAssume = r.Params.Get("RoleArn") == role
		}
		if r.Action == "DeregisterTargets" && (r.Account != other || r.Region != "us-west-2") {
			t.Errorf("deregistered in %s/%s", r.Account, r.Region)
		}
	}
	if !sawAssume {
		t.Error("role never assumed")
	}
	if _, err := f.For(context.Background(), "us-west-2", "333333333333"); err == nil || !strings.Contains(err.Error(), "assume_roles") {
		t.Errorf("unknown account: %v", err)
	}
}

func TestAccessDeniedIsOneLine(t *testing.T) {
	l := newLab(t, nil)
	l.s.Deny("DeregisterTargets", "eu-west-1", "")
	f := factory(t)
	_, err := f.Drain(context.Background(), l.id, "eu-west-1", base, awsapi.DrainOptions{TargetGroups: []string{"api"}})
	var denied *awsapi.DeniedError
	if !errors.As(err, &denied) || denied.Action != "elasticloadbalancing:DeregisterTargets" {
		t.Fatalf("want DeniedError, got %v", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "eu-west-1") || !strings.Contains(msg, base) {
		t.Errorf("message: %q", msg)
	}
}

func TestThrottlingRetried(t *testing.T) {
	l := newLab(t, nil)
	l.s.Throttle("DescribeTargetGroups", 2)
	f := factory(t)
	d, err := f.Membership(context.Background(), l.id, "eu-west-1", base, awsapi.DrainOptions{})
	if err != nil || len(d.TargetGroups) != 2 {
		t.Fatalf("%+v %v", d, err)
	}
	if n := strings.Count(strings.Join(actions(l.s.Requests()), " "), "DescribeTargetGroups"); n != 3 {
		t.Errorf("DescribeTargetGroups called %d times, want 3 (2 throttled)", n)
	}
}

func TestAutoScalingCalls(t *testing.T) {
	s := env(t, awsemu.Options{TimeScale: 0.0001})
	ids := s.AddInstances(base, "us-east-1", 3, nil)
	s.AddASG(base, "us-east-1", awsemu.ASG{Name: "api-asg", Min: 1, Max: 3, InstanceIDs: ids[:2]})
	s.AddASG(base, "us-east-1", awsemu.ASG{Name: "web-asg", Min: 0, Max: 2, InstanceIDs: ids[2:]})
	f := factory(t)
	ctx := context.Background()

	g, st, err := f.GroupOf(ctx, ids[1], "us-east-1", base)
	if err != nil || g != "api-asg" || st != "InService" {
		t.Fatalf("group of: %q %q %v", g, st, err)
	}
	changed, err := f.EnterStandby(ctx, "us-east-1", base, "", ids[1], true, awsapi.ASGOptions{})
	if err != nil || !changed {
		t.Fatalf("enter standby: %v %v", changed, err)
	}
	if changed, err := f.EnterStandby(ctx, "us-east-1", base, "api-asg", ids[1], true, awsapi.ASGOptions{}); err != nil || changed {
		t.Errorf("standby twice: %v %v", changed, err)
	}
	if desired, lc, _, _ := s.ASGState(base, "us-east-1", "api-asg"); desired != 1 || lc[ids[1]] != "Standby" {
		t.Errorf("state: %d %v", desired, lc)
	}
	if _, err := f.EnterStandby(ctx, "us-east-1", base, "web-asg", ids[0], false, awsapi.ASGOptions{}); err == nil {
		t.Error("wrong group accepted")
	}
	if changed, err := f.ExitStandby(ctx, "us-east-1", base, "api-asg", ids[1], awsapi.ASGOptions{}); err != nil || !changed {
		t.Errorf("exit standby: %v %v", changed, err)
	}
	if err := f.Suspend(ctx, "us-east-1", base, []string{"api-asg", "web-asg"}, []string{"Launch", "Terminate", "AZRebalance"}); err != nil {
		t.Fatal(err)
	}
	if procs, err := f.Suspended(ctx, "us-east-1", base, "web-asg"); err != nil || strings.Join(procs, ",") != "AZRebalance,Launch,Terminate" {
		t.Errorf("suspended: %v %v", procs, err)
	}
	if err := f.Resume(ctx, "us-east-1", base, []string{"api-asg", "web-asg"}, []string{"Launch", "Terminate", "AZRebalance"}); err != nil {
		t.Fatal(err)
	}
	var groups []string
	for _, r := range s.Requests() {
		switch r.Action {
		case "EnterStandby", "ExitStandby", "SuspendProcesses", "ResumeProcesses":
			groups = append(groups, r.Action+":"+r.Params.Get("AutoScalingGroupName"))
		}
		if r.Action == "EnterStandby" && r.Params.Get("ShouldDecrementDesiredCapacity") != "true" && r.Params.Get("AutoScalingGroupName") == "api-asg" {
			t.Errorf("decrement not sent: %v", r.Params)
		}
	}
	want := "EnterStandby:api-asg ExitStandby:api-asg SuspendProcesses:api-asg SuspendProcesses:web-asg ResumeProcesses:api-asg ResumeProcesses:web-asg"
	if strings.Join(groups, " ") != want {
		t.Errorf("calls:\n got %s\nwant %s", strings.Join(groups, " "), want)
	}
	if _, _, susp, _ := s.ASGState(base, "us-east-1", "api-asg"); len(susp) != 0 {
		t.Errorf("still suspended: %v", susp)
	}
	if err := f.Suspend(ctx, "us-east-1", base, []string{"nope"}, nil); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown group: %v", err)
	}
}

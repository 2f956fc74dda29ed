package awsapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
)

// A launch held by a lifecycle hook: heartbeats and the completion reach
// the emulator in the query protocol; CONTINUE puts the instance in
// service, ABANDON terminates it; a token that is not pending is an error
// that names it.
func TestLifecycleActions(t *testing.T) {
	s := env(t, awsemu.Options{})
	f := factory(t)
	ctx := context.Background()
	ids := s.AddInstances(base, "us-east-1", 3, nil)
	s.AddASG(base, "us-east-1", awsemu.ASG{Name: "web", Min: 1, Max: 3, InstanceIDs: ids[:1]})

	launch := func(id string) awsapi.LifecycleAction {
		t.Helper()
		body, err := s.Launch(base, "us-east-1", "web", "deploy-on-launch", id, `{"env":"prod"}`)
		if err != nil {
			t.Fatal(err)
		}
		var n struct {
			LifecycleTransition, AutoScalingGroupName, LifecycleHookName, LifecycleActionToken, NotificationMetadata string
			EC2InstanceID                                                                                            string `json:"EC2InstanceId"`
			AccountID                                                                                                string `json:"AccountId"`
		}
		if err := json.Unmarshal([]byte(body), &n); err != nil || n.LifecycleTransition != "autoscaling:EC2_INSTANCE_LAUNCHING" || n.EC2InstanceID != id || n.NotificationMetadata != `{"env":"prod"}` {
			t.Fatalf("notification %s (%v)", body, err)
		}
		return awsapi.LifecycleAction{Region: "us-east-1", Account: n.AccountID, Group: n.AutoScalingGroupName,
			Hook: n.LifecycleHookName, Token: n.LifecycleActionToken, InstanceID: n.EC2InstanceID}
	}
	ok, bad := launch(ids[1]), launch(ids[2])
	if _, lc, _, _ := s.ASGState(base, "us-east-1", "web"); lc[ids[1]] != "Pending:Wait" {
		t.Fatalf("launched instance is %q", lc[ids[1]])
	}
	for i := 0; i < 2; i++ {
		if err := f.LifecycleHeartbeat(ctx, ok); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.CompleteLifecycle(ctx, ok, "CONTINUE"); err != nil {
		t.Fatal(err)
	}
	if err := f.CompleteLifecycle(ctx, bad, "ABANDON"); err != nil {
		t.Fatal(err)
	}
	desired, lc, _, _ := s.ASGState(base, "us-east-1", "web")
	if lc[ids[1]] != "InService" || lc[ids[2]] != "" || desired != 2 {
		t.Errorf("after CONTINUE and ABANDON: desired %d, lifecycle %v", desired, lc)
	}
	for _, a := range s.LifecycleActions(base, "us-east-1", "web") {
		want := map[string]string{ids[1]: "CONTINUE", ids[2]: "ABANDON"}[a.InstanceID]
		if a.Result != want || (a.InstanceID == ids[1] && a.Heartbeats != 2) {
			t.Errorf("%s: %+v, want %s", a.InstanceID, a, want)
		}
	}
	err := f.CompleteLifecycle(ctx, ok, "CONTINUE")
	if err == nil || !strings.Contains(err.Error(), "No active Lifecycle Action") {
		t.Errorf("completing twice: %v", err)
	}
	var got []string
	for _, r := range s.Requests() {
		if r.Action == "CompleteLifecycleAction" {
			got = append(got, r.Params.Get("LifecycleActionResult")+" "+r.Params.Get("InstanceId")+" "+r.Params.Get("LifecycleHookName"))
		}
	}
	want := []string{"CONTINUE " + ids[1] + " deploy-on-launch", "ABANDON " + ids[2] + " deploy-on-launch", "CONTINUE " + ids[1] + " deploy-on-launch"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("request log: %q, want %q", got, want)
	}
}

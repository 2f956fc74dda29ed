package awsemu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// LifecycleAction is one launch held by a lifecycle hook (Pending:Wait)
// until CompleteLifecycleAction, as tests see it.
type LifecycleAction struct {
	Group, Hook, InstanceID, Token string
	Heartbeats                     int
	Result                         string // "" while pending, then CONTINUE or ABANDON
}

// Launch adds an existing instance to group as Auto Scaling does when it
// scales out with a launch lifecycle hook: the instance waits in
// Pending:Wait, outside the group's load balancers, until the hook is
// completed. It returns the notification AWS sends to the hook's target
// (an SQS queue), in its real JSON shape; metadata is the hook's
// NotificationMetadata ("" for none).
func (s *Server) Launch(account, region, group, hook, instanceID, metadata string) (notification string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.region(account, region)
	g := r.asg(group)
	if g == nil {
		return "", fmt.Errorf("awsemu: no auto scaling group %s", group)
	}
	inst := r.byID[instanceID]
	if inst == nil {
		return "", fmt.Errorf("awsemu: no instance %s", instanceID)
	}
	if _, ok := g.lifecycle[instanceID]; ok {
		return "", fmt.Errorf("awsemu: %s is already in %s", instanceID, group)
	}
	inst.Tags["aws:autoscaling:groupName"] = g.Name
	g.InstanceIDs = append(g.InstanceIDs, instanceID)
	g.lifecycle[instanceID] = "Pending:Wait"
	g.Desired++
	g.Max = max(g.Max, g.Desired)
	token := uuid()
	if g.actions == nil {
		g.actions = map[string]*LifecycleAction{}
	}
	g.actions[token] = &LifecycleAction{Group: g.Name, Hook: hook, InstanceID: instanceID, Token: token}
	msg := map[string]any{
		"Origin":               "EC2",
		"Destination":          "AutoScalingGroup",
		"LifecycleHookName":    hook,
		"AccountId":            account,
		"RequestId":            uuid(),
		"LifecycleTransition":  "autoscaling:EC2_INSTANCE_LAUNCHING",
		"AutoScalingGroupName": g.Name,
		"Service":              "AWS Auto Scaling",
		"Time":                 time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"EC2InstanceId":        instanceID,
		"LifecycleActionToken": token,
	}
	if metadata != "" {
		msg["NotificationMetadata"] = metadata
	}
	b, _ := json.Marshal(msg)
	return string(b), nil
}

// TestNotification is what AWS sends to a hook's target when the hook is
// created.
func (s *Server) TestNotification(account, region, group string) string {
	b, _ := json.Marshal(map[string]any{
		"AccountId":            account,
		"RequestId":            uuid(),
		"AutoScalingGroupARN":  fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/%s", region, account, group),
		"AutoScalingGroupName": group,
		"Service":              "AWS Auto Scaling",
		"Event":                "autoscaling:TEST_NOTIFICATION",
		"Time":                 time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
	})
	return string(b)
}

// LifecycleActions returns the group's lifecycle actions, pending and done.
func (s *Server) LifecycleActions(account, region, group string) []LifecycleAction {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.region(account, region).asg(group)
	if g == nil {
		return nil
	}
	var out []LifecycleAction
	for _, a := range g.actions {
		out = append(out, *a)
	}
	return out
}

// lifecycleAction serves RecordLifecycleActionHeartbeat and
// CompleteLifecycleAction. Caller holds s.mu.
func (s *Server) lifecycleAction(c call, r *regionState, g *ASG) (string, *apiError) {
	hook, token, id := c.params.Get("LifecycleHookName"), c.params.Get("LifecycleActionToken"), c.params.Get("InstanceId")
	if hook == "" {
		return "", validation("1 validation error detected: Value null at 'lifecycleHookName' failed to satisfy constraint: Member must not be null")
	}
	if token == "" && id == "" {
		return "", validation("Either the instance ID or the lifecycle action token must be given.")
	}
	var a *LifecycleAction
	for _, x := range g.actions {
		if x.Result == "" && x.Hook == hook && (token == "" || x.Token == token) && (id == "" || x.InstanceID == id) {
			a = x
		}
	}
	if a == nil {
		if token != "" {
			return "", validation("No active Lifecycle Action found with token %s", token)
		}
		return "", validation("No active Lifecycle Action found with instance ID %s", id)
	}
	if c.action == "RecordLifecycleActionHeartbeat" {
		a.Heartbeats++
		return queryResponse(c, ""), nil
	}
	result := c.params.Get("LifecycleActionResult")
	switch result {
	case "CONTINUE":
		// The instance goes into service and into the group's load balancers.
		now := time.Now()
		g.lifecycle[a.InstanceID] = "InService"
		for _, arn := range g.TargetGroupARNs {
			if tg := r.tg(arn); tg != nil {
				s.register(&tg.pool, a.InstanceID, tg.Port, now)
			}
		}
		for _, n := range g.LoadBalancerNames {
			if lb := r.elb(n); lb != nil {
				s.register(&lb.pool, a.InstanceID, 0, now)
			}
		}
	case "ABANDON":
		// A launch abandoned: the instance is terminated.
		delete(g.lifecycle, a.InstanceID)
		for i, x := range g.InstanceIDs {
			if x == a.InstanceID {
				g.InstanceIDs = append(g.InstanceIDs[:i:i], g.InstanceIDs[i+1:]...)
				break
			}
		}
		g.Desired--
		if inst := r.byID[a.InstanceID]; inst != nil {
			inst.State = "terminated"
		}
	default:
		return "", validation("Value %q at 'lifecycleActionResult' failed to satisfy constraint: Member must be CONTINUE or ABANDON", result)
	}
	a.Result = result
	return queryResponse(c, ""), nil
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

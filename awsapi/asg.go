package awsapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
)

// ASGOptions tune the waits of EnterStandby and ExitStandby.
type ASGOptions struct {
	Timeout      time.Duration // default 5 minutes
	PollInterval time.Duration
}

// GroupOf returns the Auto Scaling group holding the instance and its
// lifecycle state; "" when it is in none.
func (f *Factory) GroupOf(ctx context.Context, instanceID, region, account string) (group, lifecycle string, err error) {
	c, err := f.For(ctx, region, account)
	if err != nil {
		return "", "", err
	}
	out, err := c.ASG.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil {
		return "", "", fmt.Errorf("find auto scaling group of %s: %w", instanceID, Explain(err, region, account, c.RoleARN))
	}
	for _, i := range out.AutoScalingInstances {
		if aws.ToString(i.InstanceId) == instanceID {
			return aws.ToString(i.AutoScalingGroupName), aws.ToString(i.LifecycleState), nil
		}
	}
	return "", "", nil
}

// EnterStandby moves the instance of group to Standby (AWS then takes it
// out of the group's load balancers) and waits until it is there. group ""
// finds the instance's group. It reports false when the instance already
// was in Standby.
func (f *Factory) EnterStandby(ctx context.Context, region, account, group, instanceID string, decrementDesired bool, opts ASGOptions) (bool, error) {
	return f.standby(ctx, region, account, group, instanceID, true, decrementDesired, opts)
}

// ExitStandby returns the instance to service and waits for InService.
// It reports false when the instance already was InService.
func (f *Factory) ExitStandby(ctx context.Context, region, account, group, instanceID string, opts ASGOptions) (bool, error) {
	return f.standby(ctx, region, account, group, instanceID, false, false, opts)
}

func (f *Factory) standby(ctx context.Context, region, account, group, id string, enter, decrement bool, opts ASGOptions) (bool, error) {
	verb, want := "exit standby", "InService"
	if enter {
		verb, want = "enter standby", "Standby"
	}
	c, err := f.For(ctx, region, account)
	if err != nil {
		return false, err
	}
	g, state, err := f.GroupOf(ctx, id, region, account)
	if err != nil {
		return false, fmt.Errorf("%s: %w", verb, err)
	}
	if g == "" {
		return false, fmt.Errorf("%s: instance %s is in no auto scaling group in %s", verb, id, region)
	}
	if group != "" && g != group {
		return false, fmt.Errorf("%s: instance %s is in auto scaling group %s, not %s", verb, id, g, group)
	}
	if state == want {
		return false, nil
	}
	if enter {
		_, err = c.ASG.EnterStandby(ctx, &autoscaling.EnterStandbyInput{AutoScalingGroupName: aws.String(g),
			InstanceIds: []string{id}, ShouldDecrementDesiredCapacity: aws.Bool(decrement)})
	} else {
		_, err = c.ASG.ExitStandby(ctx, &autoscaling.ExitStandbyInput{AutoScalingGroupName: aws.String(g), InstanceIds: []string{id}})
	}
	if err != nil {
		return false, fmt.Errorf("%s %s in %s: %w", verb, id, g, Explain(err, region, account, c.RoleARN))
	}
	called := time.Now()
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	deadline := called.Add(timeout)
	check := func() (bool, error) {
		_, st, err := f.GroupOf(ctx, id, region, account)
		state = st
		return st == want, err
	}
	// Entering standby takes the instance out of the group's load
	// balancers: unless it is there at once, it cannot be before their
	// deregistration delay is over, so the wait sleeps until then.
	if enter {
		if done, err := check(); err == nil && done {
			return true, nil
		}
		if d := f.groupDrain(ctx, c, region, g); d > 0 {
			until := called.Add(d)
			if until.After(deadline) {
				until = deadline
			}
			if err := sleepUntil(ctx, until); err != nil {
				return true, fmt.Errorf("%s: %w", verb, err)
			}
		}
	}
	err = wait(ctx, f.interval(opts.PollInterval), deadline, check)
	if errors.Is(err, errTimeout) {
		return true, fmt.Errorf("%s: %s still %s after %s (want %s)", verb, id, state, timeout, want)
	}
	if err != nil {
		return true, fmt.Errorf("%s: %w", verb, err)
	}
	return true, nil
}

// groupDrain is the longest deregistration delay of the group's load
// balancers (0 when it cannot be read: the wait then polls from the start).
func (f *Factory) groupDrain(ctx context.Context, c *Clients, region, group string) time.Duration {
	out, err := c.ASG.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
	if err != nil || len(out.AutoScalingGroups) == 0 {
		return 0
	}
	g := out.AutoScalingGroups[0]
	var longest time.Duration
	var keys []lbKey
	for _, arn := range g.TargetGroupARNs {
		keys = append(keys, lbKey{region, c.RoleARN, "tg", arn})
	}
	for _, name := range g.LoadBalancerNames {
		keys = append(keys, lbKey{region, c.RoleARN, "elb", name})
	}
	for _, k := range keys {
		if st, err := f.lbPace(ctx, c, k); err == nil {
			longest = max(longest, st.delay)
		}
	}
	return longest
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// Suspend suspends processes (all of them when empty) of each group.
func (f *Factory) Suspend(ctx context.Context, region, account string, groups, processes []string) error {
	c, err := f.For(ctx, region, account)
	if err != nil {
		return err
	}
	for _, g := range groups {
		_, err := c.ASG.SuspendProcesses(ctx, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String(g), ScalingProcesses: processes})
		if err != nil {
			return fmt.Errorf("suspend processes of %s: %w", g, Explain(err, region, account, c.RoleARN))
		}
	}
	return nil
}

// Resume resumes processes (all of them when empty) of each group.
func (f *Factory) Resume(ctx context.Context, region, account string, groups, processes []string) error {
	c, err := f.For(ctx, region, account)
	if err != nil {
		return err
	}
	for _, g := range groups {
		_, err := c.ASG.ResumeProcesses(ctx, &autoscaling.ResumeProcessesInput{AutoScalingGroupName: aws.String(g), ScalingProcesses: processes})
		if err != nil {
			return fmt.Errorf("resume processes of %s: %w", g, Explain(err, region, account, c.RoleARN))
		}
	}
	return nil
}

// Suspended returns the suspended processes of group.
func (f *Factory) Suspended(ctx context.Context, region, account, group string) ([]string, error) {
	c, err := f.For(ctx, region, account)
	if err != nil {
		return nil, err
	}
	out, err := c.ASG.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
	if err != nil {
		return nil, fmt.Errorf("describe auto scaling group %s: %w", group, Explain(err, region, account, c.RoleARN))
	}
	if len(out.AutoScalingGroups) == 0 {
		return nil, fmt.Errorf("auto scaling group %s not found in %s", group, region)
	}
	var procs []string
	for _, p := range out.AutoScalingGroups[0].SuspendedProcesses {
		procs = append(procs, aws.ToString(p.ProcessName))
	}
	return procs, nil
}

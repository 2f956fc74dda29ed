package awsapi

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
)

// LifecycleAction names one instance held by a lifecycle hook, as the
// hook's notification gives it.
type LifecycleAction struct {
	Region, Account string
	Group, Hook     string
	Token           string
	InstanceID      string
}

func (a LifecycleAction) String() string {
	return fmt.Sprintf("lifecycle hook %s of %s for %s", a.Hook, a.Group, a.InstanceID)
}

// LifecycleHeartbeat restarts the hook's timeout: the launch is still being
// worked on.
func (f *Factory) LifecycleHeartbeat(ctx context.Context, a LifecycleAction) error {
	c, err := f.For(ctx, a.Region, a.Account)
	if err != nil {
		return err
	}
	_, err = c.ASG.RecordLifecycleActionHeartbeat(ctx, &autoscaling.RecordLifecycleActionHeartbeatInput{
		AutoScalingGroupName: aws.String(a.Group), LifecycleHookName: aws.String(a.Hook),
		LifecycleActionToken: optional(a.Token), InstanceId: aws.String(a.InstanceID),
	})
	if err != nil {
		return fmt.Errorf("heartbeat of %s: %w", a, Explain(err, a.Region, a.Account, c.RoleARN))
	}
	return nil
}

// CompleteLifecycle ends the hook's wait: CONTINUE puts the instance in
// service, ABANDON has Auto Scaling terminate it.
func (f *Factory) CompleteLifecycle(ctx context.Context, a LifecycleAction, result string) error {
	c, err := f.For(ctx, a.Region, a.Account)
	if err != nil {
		return err
	}
	_, err = c.ASG.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{
		AutoScalingGroupName: aws.String(a.Group), LifecycleHookName: aws.String(a.Hook),
		LifecycleActionToken: optional(a.Token), InstanceId: aws.String(a.InstanceID),
		LifecycleActionResult: aws.String(result),
	})
	if err != nil {
		return fmt.Errorf("complete %s with %s: %w", a, result, Explain(err, a.Region, a.Account, c.RoleARN))
	}
	return nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

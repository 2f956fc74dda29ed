package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/ferrydeploy/ferry/internal/testrig/lab/awslab"
)

// waitInService waits until every instance of the lab's target group is
// healthy and every one of its classic ELB is InService, asking the
// emulator (AWS_ENDPOINT_URL) as an operator's script would. A load that
// starts before then measures the fleet's first health checks (the apps
// were just installed), not the rollout.
func waitInService(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS config: %w", err)
	}
	v2, v1 := elbv2.NewFromConfig(cfg), elb.NewFromConfig(cfg)
	tgs, err := v2.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Names: []string{awslab.TargetGroup}})
	if err != nil {
		return fmt.Errorf("find target group %s: %w", awslab.TargetGroup, err)
	}
	if len(tgs.TargetGroups) != 1 {
		return fmt.Errorf("target group %s: %d found", awslab.TargetGroup, len(tgs.TargetGroups))
	}
	arn := tgs.TargetGroups[0].TargetGroupArn
	last := "no answer yet"
	for {
		th, err := v2.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: arn})
		if err == nil {
			ih, err2 := v1.DescribeInstanceHealth(ctx, &elb.DescribeInstanceHealthInput{LoadBalancerName: &[]string{awslab.LoadBalancer}[0]})
			err = err2
			if err == nil {
				healthy, inService := 0, 0
				for _, d := range th.TargetHealthDescriptions {
					if d.TargetHealth != nil && d.TargetHealth.State == "healthy" {
						healthy++
					}
				}
				for _, s := range ih.InstanceStates {
					if s.State != nil && *s.State == "InService" {
						inService++
					}
				}
				if len(th.TargetHealthDescriptions) > 0 && healthy == len(th.TargetHealthDescriptions) && inService == len(ih.InstanceStates) {
					return nil
				}
				last = fmt.Sprintf("%s: %d/%d healthy, %s: %d/%d InService", awslab.TargetGroup, healthy, len(th.TargetHealthDescriptions),
					awslab.LoadBalancer, inService, len(ih.InstanceStates))
			}
		}
		// A call cut short by the deadline says nothing about the hosts:
		// the message keeps the last answer.
		if err != nil && ctx.Err() == nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the hosts were not all in service within %s (%s): check the apps on the unhealthy hosts answer their health check, or give --wait-in-service longer", timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

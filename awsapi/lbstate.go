package awsapi

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// LBState is an instance's state in one load balancer or target group.
type LBState struct {
	Kind  string `json:"kind"` // "target-group" or "elb"
	Name  string `json:"name"`
	State string `json:"state"` // healthy, draining, unhealthy, initial, unused; InService, OutOfService
}

// InService reports whether the load balancer sends the instance traffic.
func (s LBState) InService() bool { return s.State == "healthy" || s.State == "InService" }

// LoadBalancerStates reads, for a whole region at once, the state of the
// given instances in every classic ELB and instance target group: one
// call per load balancer instead of a search per instance.
func (f *Factory) LoadBalancerStates(ctx context.Context, region, account string, instanceIDs []string) (map[string][]LBState, error) {
	c, err := f.For(ctx, region, account)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, id := range instanceIDs {
		want[id] = true
	}
	out := map[string][]LBState{}
	p := elb.NewDescribeLoadBalancersPaginator(c.ELB, &elb.DescribeLoadBalancersInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, Explain(fmt.Errorf("list load balancers: %w", err), region, account, c.RoleARN)
		}
		for _, lb := range page.LoadBalancerDescriptions {
			name := aws.ToString(lb.LoadBalancerName)
			h, err := c.ELB.DescribeInstanceHealth(ctx, &elb.DescribeInstanceHealthInput{LoadBalancerName: lb.LoadBalancerName})
			if err != nil {
				return nil, Explain(fmt.Errorf("instance health in %s: %w", name, err), region, account, c.RoleARN)
			}
			for _, s := range h.InstanceStates {
				if id := aws.ToString(s.InstanceId); want[id] {
					out[id] = append(out[id], LBState{Kind: "elb", Name: name, State: aws.ToString(s.State)})
				}
			}
		}
	}
	groups, err := allTargetGroups(ctx, c, &elbv2.DescribeTargetGroupsInput{})
	if err != nil {
		return nil, Explain(err, region, account, c.RoleARN)
	}
	for _, tg := range groups {
		if tg.TargetType != "" && tg.TargetType != elbv2types.TargetTypeEnumInstance {
			continue
		}
		h, err := c.ELBv2.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroupArn})
		if err != nil {
			return nil, Explain(fmt.Errorf("target health of %s: %w", aws.ToString(tg.TargetGroupName), err), region, account, c.RoleARN)
		}
		for _, th := range h.TargetHealthDescriptions {
			if th.Target == nil || th.TargetHealth == nil || !want[aws.ToString(th.Target.Id)] {
				continue
			}
			if th.TargetHealth.State == elbv2types.TargetHealthStateEnumUnused && th.TargetHealth.Reason == elbv2types.TargetHealthReasonEnumNotRegistered {
				continue
			}
			id := aws.ToString(th.Target.Id)
			out[id] = append(out[id], LBState{Kind: "target-group", Name: aws.ToString(tg.TargetGroupName), State: string(th.TargetHealth.State)})
		}
	}
	for _, s := range out {
		sort.Slice(s, func(i, j int) bool { return s[i].Name < s[j].Name })
	}
	return out, nil
}

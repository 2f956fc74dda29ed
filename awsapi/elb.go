package awsapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/ferrydeploy/ferry/internal/parallel"
)

// TargetGroupRef is one registration of an instance in a target group.
type TargetGroupRef struct {
	ARN  string `json:"arn"`
	Name string `json:"name"`
	Port int32  `json:"port"`
}

// Drained records what Drain took the instance out of, so Register puts it
// back in exactly those. It is plain data (JSON) so it can live in
// per-host state or a run record.
type Drained struct {
	InstanceID    string           `json:"instance_id"`
	Region        string           `json:"region"`
	Account       string           `json:"account,omitempty"`
	LoadBalancers []string         `json:"load_balancers,omitempty"` // classic ELB names
	TargetGroups  []TargetGroupRef `json:"target_groups,omitempty"`
}

// Empty reports whether the instance was in no load balancer.
func (d Drained) Empty() bool { return len(d.LoadBalancers) == 0 && len(d.TargetGroups) == 0 }

// String lists the load balancers, for the operator.
func (d Drained) String() string {
	var parts []string
	for _, n := range d.LoadBalancers {
		parts = append(parts, "elb "+n)
	}
	for _, t := range d.TargetGroups {
		parts = append(parts, fmt.Sprintf("target group %s:%d", t.Name, t.Port))
	}
	if len(parts) == 0 {
		return "no load balancer"
	}
	return strings.Join(parts, ", ")
}

// DrainOptions tune Drain.
type DrainOptions struct {
	// LoadBalancers (classic ELB names) and TargetGroups (ARNs or names)
	// limit the drain to those; when both are empty every load balancer
	// and target group of the region holding the instance is found.
	LoadBalancers []string
	TargetGroups  []string
	// Timeout bounds the wait for draining to end; 0 means the longest
	// deregistration delay involved plus one minute.
	Timeout time.Duration
	// NoWait returns right after deregistering.
	NoWait bool
	// PollInterval overrides the factory's.
	PollInterval time.Duration
}

// RegisterOptions tune Register.
type RegisterOptions struct {
	Timeout      time.Duration // wait for healthy; default 5 minutes
	NoWait       bool
	PollInterval time.Duration
}

// Membership finds the classic ELBs and target groups that hold the
// instance now (draining ones included), changing nothing.
func (f *Factory) Membership(ctx context.Context, instanceID, region, account string, opts DrainOptions) (Drained, error) {
	d := Drained{InstanceID: instanceID, Region: region, Account: account}
	c, err := f.For(ctx, region, account)
	if err != nil {
		return d, err
	}
	role := c.RoleARN
	explicit := len(opts.LoadBalancers) > 0 || len(opts.TargetGroups) > 0

	// Classic ELBs list their instances.
	if !explicit || len(opts.LoadBalancers) > 0 {
		in := &elb.DescribeLoadBalancersInput{LoadBalancerNames: opts.LoadBalancers}
		p := elb.NewDescribeLoadBalancersPaginator(c.ELB, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return d, Explain(fmt.Errorf("find load balancers of %s: %w", instanceID, err), region, account, role)
			}
			for _, lb := range out.LoadBalancerDescriptions {
				for _, i := range lb.Instances {
					if aws.ToString(i.InstanceId) == instanceID {
						d.LoadBalancers = append(d.LoadBalancers, aws.ToString(lb.LoadBalancerName))
					}
				}
			}
		}
		// An instance already draining from a classic ELB is no longer
		// listed: ask the named ones directly.
		for _, name := range opts.LoadBalancers {
			if slices.Contains(d.LoadBalancers, name) {
				continue
			}
			st, err := classicState(ctx, c, name, instanceID)
			if err != nil {
				return d, Explain(err, region, account, role)
			}
			if st != nil && strings.Contains(aws.ToString(st.Description), "deregistration") {
				d.LoadBalancers = append(d.LoadBalancers, name)
			}
		}
	}

	// Target groups do not list their targets: ask each one's health.
	if !explicit || len(opts.TargetGroups) > 0 {
		in := &elbv2.DescribeTargetGroupsInput{}
		for _, tg := range opts.TargetGroups {
			if strings.HasPrefix(tg, "arn:") {
				in.TargetGroupArns = append(in.TargetGroupArns, tg)
			} else {
				in.Names = append(in.Names, tg)
			}
		}
		var groups []elbv2types.TargetGroup
		if len(in.TargetGroupArns) > 0 && len(in.Names) > 0 {
			// The API takes ARNs or names, not both.
			byName := &elbv2.DescribeTargetGroupsInput{Names: in.Names}
			in.Names = nil
			g, err := allTargetGroups(ctx, c, byName)
			if err != nil {
				return d, Explain(err, region, account, role)
			}
			groups = g
		}
		g, err := allTargetGroups(ctx, c, in)
		if err != nil {
			return d, Explain(err, region, account, role)
		}
		groups = append(groups, g...)

		var (
			mu   sync.Mutex
			errs []error
		)
		// Every call is made even after ctx ends: each then fails with
		// ctx's error, which is reported.
		parallel.Each(context.WithoutCancel(ctx), len(groups), 4, func(i int) {
			tg := groups[i]
			if tg.TargetType != "" && tg.TargetType != elbv2types.TargetTypeEnumInstance {
				return
			}
			out, err := c.ELBv2.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroupArn})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("target health of %s: %w", aws.ToString(tg.TargetGroupName), err))
				return
			}
			for _, th := range out.TargetHealthDescriptions {
				if th.Target == nil || aws.ToString(th.Target.Id) != instanceID {
					continue
				}
				if th.TargetHealth != nil && th.TargetHealth.State == elbv2types.TargetHealthStateEnumUnused &&
					th.TargetHealth.Reason == elbv2types.TargetHealthReasonEnumNotRegistered {
					continue
				}
				d.TargetGroups = append(d.TargetGroups, TargetGroupRef{
					ARN: aws.ToString(tg.TargetGroupArn), Name: aws.ToString(tg.TargetGroupName), Port: aws.ToInt32(th.Target.Port)})
			}
		})
		if len(errs) > 0 {
			return d, Explain(fmt.Errorf("find target groups of %s: %w", instanceID, errors.Join(errs...)), region, account, role)
		}
		sort.Slice(d.TargetGroups, func(i, j int) bool {
			a, b := d.TargetGroups[i], d.TargetGroups[j]
			return a.ARN < b.ARN || a.ARN == b.ARN && a.Port < b.Port
		})
	}
	return d, nil
}

func allTargetGroups(ctx context.Context, c *Clients, in *elbv2.DescribeTargetGroupsInput) ([]elbv2types.TargetGroup, error) {
	var out []elbv2types.TargetGroup
	p := elbv2.NewDescribeTargetGroupsPaginator(c.ELBv2, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list target groups: %w", err)
		}
		out = append(out, page.TargetGroups...)
	}
	return out, nil
}

// classicState returns the instance's state in a classic ELB, nil when it
// is not registered there (nor draining).
func classicState(ctx context.Context, c *Clients, lb, instanceID string) (*elbtypes.InstanceState, error) {
	out, err := c.ELB.DescribeInstanceHealth(ctx, &elb.DescribeInstanceHealthInput{
		LoadBalancerName: aws.String(lb), Instances: []elbtypes.Instance{{InstanceId: aws.String(instanceID)}}})
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) && (api.ErrorCode() == "InvalidInstance" || api.ErrorCode() == "InvalidEndPoint") {
			return nil, nil
		}
		return nil, fmt.Errorf("instance health in %s: %w", lb, err)
	}
	for _, s := range out.InstanceStates {
		if aws.ToString(s.InstanceId) == instanceID {
			return &s, nil
		}
	}
	return nil, nil
}

// Drain takes the instance out of every classic ELB and target group that
// holds it (or those opts names), then waits until draining is over: each
// target group's deregistration delay, each classic ELB's connection
// draining. The returned Drained says what to Register again, and is
// valid even when the wait fails.
func (f *Factory) Drain(ctx context.Context, instanceID, region, account string, opts DrainOptions) (Drained, error) {
	d, err := f.Membership(ctx, instanceID, region, account, opts)
	if err != nil {
		return d, fmt.Errorf("drain %s: %w", instanceID, err)
	}
	if d.Empty() {
		return d, nil
	}
	c, err := f.For(ctx, region, account)
	if err != nil {
		return d, err
	}
	explain := func(err error) error {
		return fmt.Errorf("drain %s: %w", instanceID, Explain(err, region, account, c.RoleARN))
	}

	since := map[lbKey]time.Time{} // when each load balancer took the instance out
	for _, name := range d.LoadBalancers {
		_, err := c.ELB.DeregisterInstancesFromLoadBalancer(ctx, &elb.DeregisterInstancesFromLoadBalancerInput{
			LoadBalancerName: aws.String(name), Instances: []elbtypes.Instance{{InstanceId: aws.String(instanceID)}}})
		if err != nil {
			return d, explain(fmt.Errorf("deregister from elb %s: %w", name, err))
		}
		since[lbKey{region, c.RoleARN, "elb", name}] = time.Now()
	}
	for _, tg := range d.TargetGroups {
		_, err := c.ELBv2.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{
			TargetGroupArn: aws.String(tg.ARN), Targets: []elbv2types.TargetDescription{{Id: aws.String(instanceID), Port: aws.Int32(tg.Port)}}})
		if err != nil {
			return d, explain(fmt.Errorf("deregister from target group %s: %w", tg.Name, err))
		}
		since[lbKey{region, c.RoleARN, "tg", tg.ARN}] = time.Now()
	}
	if opts.NoWait {
		return d, nil
	}

	// Each load balancer drains for its own delay; the longest bounds the
	// whole wait.
	settings := map[lbKey]lbSettings{}
	longest := time.Duration(0)
	for k := range since {
		st, err := f.lbPace(ctx, c, k)
		if err != nil {
			return d, explain(fmt.Errorf("settings of %s %s: %w", kindName(k), k.id, err))
		}
		settings[k] = st
		longest = max(longest, st.delay)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = longest + time.Minute
	}
	interval := f.interval(opts.PollInterval)
	deadline := time.Now().Add(timeout)

	for _, tg := range d.TargetGroups {
		k := lbKey{region, c.RoleARN, "tg", tg.ARN}
		var last string
		key := targetKey(instanceID, tg.Port)
		err := f.paced(ctx, c, k, since[k].Add(settings[k].delay), deadline, interval, func(h lbHealth) bool {
			th, ok := h.tg[key]
			if ok && th.State == elbv2types.TargetHealthStateEnumDraining {
				last = describeHealth(&th)
				return false
			}
			return true
		})
		if errors.Is(err, errTimeout) {
			return d, fmt.Errorf("drain %s: target group %s (port %d) still draining after %s (%s); raise the task timeout or lower its deregistration delay", instanceID, tg.Name, tg.Port, timeout, last)
		}
		if err != nil {
			return d, explain(fmt.Errorf("wait for target group %s: %w", tg.Name, err))
		}
	}
	for _, name := range d.LoadBalancers {
		k := lbKey{region, c.RoleARN, "elb", name}
		if settings[k].delay == 0 {
			continue // no connection draining: out at once
		}
		err := f.paced(ctx, c, k, since[k].Add(settings[k].delay), deadline, interval, func(h lbHealth) bool {
			st, ok := h.elb[instanceID]
			return !ok || !strings.Contains(aws.ToString(st.Description), "deregistration")
		})
		if errors.Is(err, errTimeout) {
			return d, fmt.Errorf("drain %s: elb %s still draining connections after %s; raise the task timeout", instanceID, name, timeout)
		}
		if err != nil {
			return d, explain(fmt.Errorf("wait for elb %s: %w", name, err))
		}
	}
	return d, nil
}

func kindName(k lbKey) string {
	if k.kind == "tg" {
		return "target group"
	}
	return "elb"
}

// Register puts the instance back in exactly the load balancers of d and
// waits until each reports it healthy (InService for classic ELBs).
func (f *Factory) Register(ctx context.Context, d Drained, opts RegisterOptions) error {
	if d.Empty() {
		return nil
	}
	c, err := f.For(ctx, d.Region, d.Account)
	if err != nil {
		return err
	}
	id := d.InstanceID
	explain := func(err error) error {
		return fmt.Errorf("register %s: %w", id, Explain(err, d.Region, d.Account, c.RoleARN))
	}
	since := map[lbKey]time.Time{}
	for _, tg := range d.TargetGroups {
		_, err := c.ELBv2.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{
			TargetGroupArn: aws.String(tg.ARN), Targets: []elbv2types.TargetDescription{{Id: aws.String(id), Port: aws.Int32(tg.Port)}}})
		if err != nil {
			return explain(fmt.Errorf("target group %s: %w", tg.Name, err))
		}
		since[lbKey{d.Region, c.RoleARN, "tg", tg.ARN}] = time.Now()
	}
	for _, name := range d.LoadBalancers {
		_, err := c.ELB.RegisterInstancesWithLoadBalancer(ctx, &elb.RegisterInstancesWithLoadBalancerInput{
			LoadBalancerName: aws.String(name), Instances: []elbtypes.Instance{{InstanceId: aws.String(id)}}})
		if err != nil {
			return explain(fmt.Errorf("elb %s: %w", name, err))
		}
		since[lbKey{d.Region, c.RoleARN, "elb", name}] = time.Now()
	}
	if opts.NoWait {
		return nil
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	interval := f.interval(opts.PollInterval)
	deadline := time.Now().Add(timeout)
	// A target can be healthy no sooner than its health check's interval
	// times (healthy threshold - 1) after registration.
	earliest := func(k lbKey) (time.Time, error) {
		st, err := f.lbPace(ctx, c, k)
		if err != nil {
			return time.Time{}, explain(fmt.Errorf("settings of %s %s: %w", kindName(k), k.id, err))
		}
		return since[k].Add(st.firstHealthy()), nil
	}
	for _, tg := range d.TargetGroups {
		k := lbKey{d.Region, c.RoleARN, "tg", tg.ARN}
		at, err := earliest(k)
		if err != nil {
			return err
		}
		last := "no health reported yet"
		key := targetKey(id, tg.Port)
		err = f.paced(ctx, c, k, at, deadline, interval, func(h lbHealth) bool {
			th, ok := h.tg[key]
			if !ok {
				return false
			}
			if th.State == elbv2types.TargetHealthStateEnumHealthy {
				return true
			}
			last = describeHealth(&th)
			return false
		})
		if errors.Is(err, errTimeout) {
			return fmt.Errorf("register %s: target group %s (port %d) not healthy after %s: %s", id, tg.Name, tg.Port, timeout, last)
		}
		if err != nil {
			return explain(fmt.Errorf("wait for target group %s: %w (last: %s)", tg.Name, err, last))
		}
	}
	for _, name := range d.LoadBalancers {
		k := lbKey{d.Region, c.RoleARN, "elb", name}
		at, err := earliest(k)
		if err != nil {
			return err
		}
		last := "no health reported yet"
		err = f.paced(ctx, c, k, at, deadline, interval, func(h lbHealth) bool {
			st, ok := h.elb[id]
			if !ok {
				return false
			}
			if aws.ToString(st.State) == "InService" {
				return true
			}
			last = fmt.Sprintf("%s, %s: %s", aws.ToString(st.State), aws.ToString(st.ReasonCode), aws.ToString(st.Description))
			return false
		})
		if errors.Is(err, errTimeout) {
			return fmt.Errorf("register %s: elb %s not InService after %s: %s", id, name, timeout, last)
		}
		if err != nil {
			return explain(fmt.Errorf("wait for elb %s: %w (last: %s)", name, err, last))
		}
	}
	return nil
}

func describeHealth(h *elbv2types.TargetHealth) string {
	s := string(h.State)
	if h.Reason != "" {
		s += ", " + string(h.Reason)
	}
	if d := aws.ToString(h.Description); d != "" {
		s += ": " + d
	}
	return s
}

func (f *Factory) interval(override time.Duration) time.Duration {
	if override > 0 {
		return override
	}
	return f.cfg.PollInterval
}

// Targets resolves load balancer names and target groups (ARNs or names)
// into a Drained record for the instance, each target group on its own
// port, so Register can put an instance into load balancers it was not
// drained from in this run.
func (f *Factory) Targets(ctx context.Context, instanceID, region, account string, lbs, tgs []string) (Drained, error) {
	d := Drained{InstanceID: instanceID, Region: region, Account: account, LoadBalancers: lbs}
	if len(tgs) == 0 {
		return d, nil
	}
	c, err := f.For(ctx, region, account)
	if err != nil {
		return d, err
	}
	var arns, names []string
	for _, tg := range tgs {
		if strings.HasPrefix(tg, "arn:") {
			arns = append(arns, tg)
		} else {
			names = append(names, tg)
		}
	}
	for _, in := range []*elbv2.DescribeTargetGroupsInput{{TargetGroupArns: arns}, {Names: names}} {
		if len(in.TargetGroupArns) == 0 && len(in.Names) == 0 {
			continue
		}
		groups, err := allTargetGroups(ctx, c, in)
		if err != nil {
			return d, Explain(err, region, account, c.RoleARN)
		}
		for _, g := range groups {
			d.TargetGroups = append(d.TargetGroups, TargetGroupRef{ARN: aws.ToString(g.TargetGroupArn), Name: aws.ToString(g.TargetGroupName), Port: aws.ToInt32(g.Port)})
		}
	}
	return d, nil
}

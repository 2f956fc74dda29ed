package tasks

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ferrydeploy/ferry/awsapi"
)

func init() { Register(elbModule{}) }

// AWS is what the elb and asg modules need from the controller's AWS
// access (Controller.AWS); the CLI hands the runner an *awsapi.Factory.
// Tests give modules a fake.
type AWS interface {
	AddRoles(arns ...string) error
	Membership(ctx context.Context, instanceID, region, account string, opts awsapi.DrainOptions) (awsapi.Drained, error)
	Targets(ctx context.Context, instanceID, region, account string, lbs, tgs []string) (awsapi.Drained, error)
	Drain(ctx context.Context, instanceID, region, account string, opts awsapi.DrainOptions) (awsapi.Drained, error)
	Register(ctx context.Context, d awsapi.Drained, opts awsapi.RegisterOptions) error
	GroupOf(ctx context.Context, instanceID, region, account string) (group, lifecycle string, err error)
	EnterStandby(ctx context.Context, region, account, group, instanceID string, decrementDesired bool, opts awsapi.ASGOptions) (bool, error)
	ExitStandby(ctx context.Context, region, account, group, instanceID string, opts awsapi.ASGOptions) (bool, error)
	Suspend(ctx context.Context, region, account string, groups, processes []string) error
	Resume(ctx context.Context, region, account string, groups, processes []string) error
}

// ElbStateKey is where elb keeps, in Host.State, what it drained: the
// runner can tell from it that a host is still out of its load balancers.
const ElbStateKey = "elb.drained"

// elbModule drains the host's instance from its load balancers and puts it
// back, from the controller.
type elbModule struct{}

func (elbModule) Spec() Spec {
	return Spec{
		Name:       "elb",
		Doc:        "Drain the host's instance from its classic ELBs and target groups, or register it back (from the controller)",
		Controller: true,
		AWS:        true,
		Undo:       ElbStateKey,
		Params: map[string]Param{
			"state":          {Type: String, Required: true, Choices: []string{"drained", "registered"}, Doc: "drained or registered"},
			"load_balancers": {Type: List, Doc: "classic ELB names (default: every one holding the instance)"},
			"target_groups":  {Type: List, Doc: "target group names or ARNs (default: every one holding the instance)"},
			"timeout":        {Type: Duration, Doc: "wait for draining / healthy at most this long"},
			"wait":           {Type: Bool, Doc: "wait for draining to end / for healthy (default true)"},
			"instance_id":    {Type: String, Doc: "default: the host's instance_id"},
			"region":         {Type: String, Doc: "default: the host's region"},
			"account":        {Type: String, Doc: "default: the host's account_id"},
		},
		Leaves: elbLeaves,
	}
}

// elbLeaves: a drained host is registered again. elb journals it itself,
// through Host.Journal, when it knows which load balancers it leaves.
func elbLeaves(args, vars map[string]any) (Change, bool) {
	aws := awsArgs(args, vars)
	aws["state"] = "registered"
	return Change{Key: "elb", What: "out of load balancer", Module: "elb", Args: aws}, true
}

// awsArgs pins where an AWS undo acts: a resumed run must reach the same
// instance in the same region and account, whatever its variables say then.
func awsArgs(args, vars map[string]any) map[string]any {
	out := map[string]any{}
	for arg, v := range map[string]string{"instance_id": awsapi.VarInstanceID, "region": awsapi.VarRegion, "account": awsapi.VarAccountID} {
		if s, _ := args[arg].(string); s != "" {
			out[arg] = s
		} else if s, _ := vars[v].(string); s != "" {
			out[arg] = s
		}
	}
	return out
}

// awsTarget reads the instance, region and account (and role) from the
// arguments or the host's EC2 variables.
func awsTarget(module string, a *Args, h *Host) (aw AWS, id, region, account string, err error) {
	str := func(key, varName string) string {
		if s := a.String(key, ""); s != "" {
			return s
		}
		s, _ := h.Vars[varName].(string)
		return s
	}
	id, region, account = str("instance_id", awsapi.VarInstanceID), str("region", awsapi.VarRegion), str("account", awsapi.VarAccountID)
	if h.Controller == nil || h.Controller.AWS == nil {
		return nil, "", "", "", fmt.Errorf("%s: no AWS access on the controller", module)
	}
	aw = h.Controller.AWS
	if role, _ := h.Vars[awsapi.VarRoleARN].(string); role != "" {
		if err := aw.AddRoles(role); err != nil {
			return nil, "", "", "", fmt.Errorf("%s: %w", module, err)
		}
	}
	return aw, id, region, account, nil
}

func (elbModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("elb", args)
	state := a.String("state", "")
	lbs, tgs := a.StringList("load_balancers"), a.StringList("target_groups")
	timeout := a.Duration("timeout", 0)
	if timeout == 0 {
		timeout = h.Timeout
	}
	wait := a.Bool("wait", true)
	aw, id, region, account, err := awsTarget("elb", a, h)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if err != nil {
		return Outcome{}, err
	}
	if id == "" || region == "" {
		return Outcome{Failed: true, Msg: "elb: the host has no instance_id/region variables (not from an aws_ec2 inventory): give instance_id and region"}, nil
	}
	opts := awsapi.DrainOptions{LoadBalancers: lbs, TargetGroups: tgs, Timeout: timeout, NoWait: !wait}

	if state == "drained" {
		if h.Check {
			d, err := aw.Membership(ctx, id, region, account, opts)
			if err != nil {
				return Outcome{}, err
			}
			return Outcome{Changed: !d.Empty(), Msg: "check mode: would drain from " + d.String(), Result: drainedResult(d)}, nil
		}
		if h.Journal != nil {
			// The journal must name the load balancers before they lose the
			// instance: after a crash, they are how --resume puts it back.
			m, err := aw.Membership(ctx, id, region, account, opts)
			if err != nil {
				return Outcome{}, err
			}
			if m.Empty() {
				return Outcome{Msg: "in no load balancer", Result: drainedResult(m)}, nil
			}
			if err := h.Journal(ElbStateKey, m); err != nil {
				return Outcome{}, fmt.Errorf("elb: %w: nothing drained", err)
			}
		}
		d, err := aw.Drain(ctx, id, region, account, opts)
		if !d.Empty() {
			// Remember even a failed drain: rollback must restore what was deregistered.
			h.State[ElbStateKey] = d
		}
		if err != nil {
			return Outcome{Failed: true, Msg: err.Error(), Result: drainedResult(d)}, nil
		}
		if d.Empty() {
			return Outcome{Msg: "in no load balancer", Result: drainedResult(d)}, nil
		}
		return Outcome{Changed: true, Msg: "drained from " + d.String(), Result: drainedResult(d)}, nil
	}

	d, remembered := drainedState(h.State[ElbStateKey])
	if !remembered {
		if len(lbs) == 0 && len(tgs) == 0 {
			return Outcome{Msg: "nothing drained in this run: nothing to register"}, nil
		}
		d, err = aw.Targets(ctx, id, region, account, lbs, tgs)
		if err != nil {
			return Outcome{}, err
		}
	}
	if h.Check {
		return Outcome{Changed: !d.Empty(), Msg: "check mode: would register in " + d.String(), Result: drainedResult(d)}, nil
	}
	if err := aw.Register(ctx, d, awsapi.RegisterOptions{Timeout: timeout, NoWait: !wait}); err != nil {
		return Outcome{Failed: true, Msg: err.Error(), Result: drainedResult(d)}, nil
	}
	delete(h.State, ElbStateKey)
	return Outcome{Changed: true, Msg: "registered in " + d.String(), Result: drainedResult(d)}, nil
}

// drainedState accepts the record as stored, or as JSON-ish data (a
// resumed run's state).
func drainedState(v any) (awsapi.Drained, bool) {
	switch d := v.(type) {
	case awsapi.Drained:
		return d, !d.Empty()
	case nil:
		return awsapi.Drained{}, false
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return awsapi.Drained{}, false
	}
	var d awsapi.Drained
	if json.Unmarshal(raw, &d) != nil {
		return awsapi.Drained{}, false
	}
	return d, !d.Empty()
}

func drainedResult(d awsapi.Drained) map[string]any {
	tgs := make([]any, 0, len(d.TargetGroups))
	for _, t := range d.TargetGroups {
		tgs = append(tgs, map[string]any{"arn": t.ARN, "name": t.Name, "port": int(t.Port)})
	}
	lbs := make([]any, 0, len(d.LoadBalancers))
	for _, l := range d.LoadBalancers {
		lbs = append(lbs, l)
	}
	return map[string]any{"instance_id": d.InstanceID, "load_balancers": lbs, "target_groups": tgs}
}

package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
)

func init() { Register(asgModule{}) }

// asgModule puts the host's instance in or out of standby, or suspends and
// resumes the scaling processes of Auto Scaling groups, from the controller.
type asgModule struct{}

func (asgModule) Spec() Spec {
	return Spec{
		Name:       "asg",
		Doc:        "Put the host's instance in or out of Auto Scaling standby, or suspend and resume scaling processes (from the controller)",
		AWS:        true,
		Controller: true,
		Params: map[string]Param{
			"state":                      {Type: String, Choices: []string{"standby", "in_service"}, Doc: "standby or in_service for the host's instance"},
			"suspend":                    {Type: List, Doc: "processes to suspend (Launch, Terminate, AZRebalance, ...; all when empty)"},
			"resume":                     {Type: List, Doc: "processes to resume (all when empty)"},
			"groups":                     {Type: List, Doc: "group names (default: the host's autoscaling_group, or the play's groups)"},
			"decrement_desired_capacity": {Type: Bool, Doc: "standby lowers the desired capacity, so no replacement launches (default true)"},
			"timeout":                    {Type: Duration, Doc: "wait for the lifecycle state at most this long"},
			"instance_id":                {Type: String, Doc: "default: the host's instance_id"},
			"region":                     {Type: String, Doc: "default: the host's region"},
			"account":                    {Type: String, Doc: "default: the host's account_id"},
		},
		OneOf:    [][]string{{"state", "suspend", "resume"}},
		Leaves:   asgLeaves,
		Restores: asgRestores,
	}
}

// Change keys of asg.
const (
	changeStandby = "standby"
	changeSuspend = "suspend"
)

// asgLeaves: standby is left by in_service, suspended processes are resumed,
// in the same groups, region and account.
func asgLeaves(args, vars map[string]any) (Change, bool) {
	aws := awsArgs(args, vars)
	if s, _ := args["state"].(string); s == "standby" {
		aws["state"] = "in_service"
		return Change{Key: changeStandby, What: "in Auto Scaling standby", Module: "asg", Args: aws}, true
	}
	if procs, ok := args["suspend"]; ok {
		groups := args["groups"]
		if groups == nil {
			groups = vars["autoscaling_groups"]
		}
		if groups == nil {
			if g, _ := vars[awsapi.VarAutoScalingGroup].(string); g != "" {
				groups = []any{g}
			}
		}
		aws["resume"], aws["groups"] = procs, groups
		return Change{Key: changeSuspend, What: "Auto Scaling processes suspended", Module: "asg", Args: aws}, true
	}
	return Change{}, false
}

func asgRestores(args map[string]any) []string {
	if s, _ := args["state"].(string); s == "in_service" {
		return []string{changeStandby}
	}
	if _, ok := args["resume"]; ok {
		return []string{changeSuspend}
	}
	return nil
}

func (asgModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("asg", args)
	state := a.String("state", "")
	suspend, resume := a.Has("suspend"), a.Has("resume")
	procs := a.StringList("suspend")
	if resume {
		procs = a.StringList("resume")
	}
	if len(procs) == 1 && strings.EqualFold(procs[0], "all") {
		procs = nil
	}
	groups := a.StringList("groups")
	decrement := a.Bool("decrement_desired_capacity", true)
	timeout := a.Duration("timeout", 0)
	if timeout == 0 {
		timeout = h.Timeout
	}
	if timeout == 0 {
		timeout = asgTimeout
	}
	aw, id, region, account, err := awsTarget("asg", a, h)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if err != nil {
		return Outcome{}, err
	}
	if region == "" {
		return Outcome{Failed: true, Msg: "asg: no region: give region, or run it on hosts of an aws_ec2 inventory"}, nil
	}

	if suspend || resume {
		if len(groups) == 0 {
			groups = hostGroups(h)
		}
		if len(groups) == 0 {
			return Outcome{}, errNoAWS
		}
		verb := "suspend"
		if resume {
			verb = "resume"
		}
		what := "all processes"
		if len(procs) > 0 {
			what = strings.Join(procs, ", ")
		}
		msg := fmt.Sprintf("%s %s of %s", verb, what, strings.Join(groups, ", "))
		if h.Check {
			return Outcome{Changed: true, Msg: "check mode: would " + msg}, nil
		}
		if suspend {
			err = aw.Suspend(ctx, region, account, groups, procs)
		} else {
			err = aw.Resume(ctx, region, account, groups, procs)
		}
		if err != nil {
			return Outcome{Failed: true, Msg: err.Error()}, nil
		}
		return Outcome{Changed: true, Msg: msg, Result: map[string]any{"groups": toAny(groups), "processes": toAny(procs)}}, nil
	}

	if id == "" {
		return Outcome{Failed: true, Msg: "asg: the host has no instance_id variable: give instance_id"}, nil
	}
	group := ""
	if len(groups) > 0 {
		group = groups[0]
	}
	if h.Check {
		g, lc, err := aw.GroupOf(ctx, id, region, account)
		if err != nil {
			return Outcome{}, err
		}
		want := map[string]string{"standby": "Standby", "in_service": "InService"}[state]
		return Outcome{Changed: lc != want, Msg: fmt.Sprintf("check mode: %s is %s in %s; want %s", id, lc, g, want)}, nil
	}
	opts := awsapi.ASGOptions{Timeout: timeout}
	var changed bool
	if state == "standby" {
		changed, err = aw.EnterStandby(ctx, region, account, group, id, decrement, opts)
	} else {
		changed, err = aw.ExitStandby(ctx, region, account, group, id, opts)
	}
	if err != nil {
		return Outcome{Failed: true, Msg: err.Error()}, nil
	}
	msg := id + " already " + state
	if changed {
		msg = id + " now " + state
	}
	return Outcome{Changed: changed, Msg: msg}, nil
}

// hostGroups are the groups to act on when none are given: the host's
// own, or (controller-once sections) the play's, when the runner provides
// them as autoscaling_groups.
func hostGroups(h *Host) []string {
	var out []string
	if g, _ := h.Vars[awsapi.VarAutoScalingGroup].(string); g != "" {
		out = append(out, g)
	}
	switch gs := h.Vars["autoscaling_groups"].(type) {
	case []string:
		out = append(out, gs...)
	case []any:
		for _, g := range gs {
			if s, ok := g.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	}
	seen := map[string]bool{}
	uniq := out[:0]
	for _, g := range out {
		if !seen[g] {
			seen[g] = true
			uniq = append(uniq, g)
		}
	}
	return uniq
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// errNoAWS is returned by asg when nothing says which groups to act on.
var errNoAWS = errors.New("asg: no auto scaling group: give groups:, or run it on hosts of an aws_ec2 inventory that are in one")

// asgTimeout bounds standby waits when the task sets none.
const asgTimeout = 5 * time.Minute

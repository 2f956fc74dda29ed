package awsemu

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// ASG is an Auto Scaling group. Its instances must exist (AddInstance);
// adding the group tags them with aws:autoscaling:groupName.
type ASG struct {
	Name              string
	Min, Max, Desired int
	InstanceIDs       []string
	TargetGroupARNs   []string
	LoadBalancerNames []string

	lifecycle map[string]string    // instance → Pending:Wait, InService, EnteringStandby, Standby
	standbyAt map[string]time.Time // EnteringStandby until then
	suspended map[string]bool
	actions   map[string]*LifecycleAction // token → launch held by a hook (lifecycle.go)
}

// ScalingProcesses are the process names Auto Scaling knows.
var ScalingProcesses = []string{"Launch", "Terminate", "AddToLoadBalancer", "AlarmNotification",
	"AZRebalance", "HealthCheck", "InstanceRefresh", "ReplaceUnhealthy", "ScheduledActions"}

// AddASG adds g to account/region.
func (s *Server) AddASG(account, region string, g ASG) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.region(account, region)
	g.lifecycle = map[string]string{}
	g.standbyAt = map[string]time.Time{}
	g.suspended = map[string]bool{}
	for _, id := range g.InstanceIDs {
		g.lifecycle[id] = "InService"
		if inst := r.byID[id]; inst != nil {
			inst.Tags["aws:autoscaling:groupName"] = g.Name
		}
	}
	if g.Desired == 0 {
		g.Desired = len(g.InstanceIDs)
	}
	if g.Max < g.Desired {
		g.Max = g.Desired
	}
	r.asgs = append(r.asgs, &g)
}

// ASGState reports a group's desired capacity, each instance's lifecycle
// state and the suspended processes (sorted), for test assertions.
func (s *Server) ASGState(account, region, name string) (desired int, lifecycle map[string]string, suspended []string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.region(account, region).asg(name)
	if g == nil {
		return 0, nil, nil, false
	}
	g.settle(time.Now())
	lifecycle = map[string]string{}
	for k, v := range g.lifecycle {
		lifecycle[k] = v
	}
	for p := range g.suspended {
		suspended = append(suspended, p)
	}
	sort.Strings(suspended)
	return g.Desired, lifecycle, suspended, true
}

// settle moves instances whose load balancers have drained them from
// EnteringStandby to Standby. Caller holds s.mu.
func (g *ASG) settle(now time.Time) {
	for id, at := range g.standbyAt {
		if !now.Before(at) {
			g.lifecycle[id] = "Standby"
			delete(g.standbyAt, id)
		}
	}
}

func (r *regionState) asg(name string) *ASG {
	for _, g := range r.asgs {
		if g.Name == name {
			return g
		}
	}
	return nil
}

func (s *Server) autoscaling(c call) (string, *apiError) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.region(c.account, c.region)
	for _, g := range r.asgs {
		g.settle(now)
	}
	group := func() (*ASG, *apiError) {
		name := c.params.Get("AutoScalingGroupName")
		g := r.asg(name)
		if g == nil {
			return nil, validation("AutoScalingGroup name not found - AutoScalingGroup %s not found", name)
		}
		return g, nil
	}
	switch c.action {
	case "DescribeAutoScalingGroups":
		names := members(c.params, "AutoScalingGroupNames")
		var sel []*ASG
		for _, g := range r.asgs {
			if len(names) == 0 || slices.Contains(names, g.Name) {
				sel = append(sel, g)
			}
		}
		from, to, next, e := page(len(sel), c.params.Get("NextToken"), s.pageSize(c.params, "MaxRecords", 50))
		if e != nil {
			return "", e
		}
		var b xmlw
		b.raw("<AutoScalingGroups>")
		for _, g := range sel[from:to] {
			b.raw("<member>")
			b.elem("AutoScalingGroupName", g.Name)
			b.elem("AutoScalingGroupARN", fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:00000000-0000-0000-0000-000000000000:autoScalingGroupName/%s", c.region, c.account, g.Name))
			b.num("MinSize", g.Min)
			b.num("MaxSize", g.Max)
			b.num("DesiredCapacity", g.Desired)
			b.num("DefaultCooldown", 300)
			b.elem("HealthCheckType", "ELB")
			b.ts("CreatedTime", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
			b.raw("<AvailabilityZones>")
			b.elem("member", c.region+"a")
			b.raw("</AvailabilityZones><Instances>")
			for _, id := range g.InstanceIDs {
				b.raw("<member>")
				b.elem("InstanceId", id)
				b.elem("AvailabilityZone", azOf(r, id, c.region))
				b.elem("LifecycleState", g.lifecycle[id])
				b.elem("HealthStatus", "Healthy")
				b.boolean("ProtectedFromScaleIn", false)
				b.raw("</member>")
			}
			b.raw("</Instances><SuspendedProcesses>")
			var procs []string
			for p := range g.suspended {
				procs = append(procs, p)
			}
			sort.Strings(procs)
			for _, p := range procs {
				b.raw("<member>")
				b.elem("ProcessName", p)
				b.elem("SuspensionReason", "User suspended at "+now.UTC().Format(time.RFC3339))
				b.raw("</member>")
			}
			b.raw("</SuspendedProcesses><TargetGroupARNs>")
			for _, a := range g.TargetGroupARNs {
				b.elem("member", a)
			}
			b.raw("</TargetGroupARNs><LoadBalancerNames>")
			for _, n := range g.LoadBalancerNames {
				b.elem("member", n)
			}
			b.raw("</LoadBalancerNames></member>")
		}
		b.raw("</AutoScalingGroups>")
		b.opt("NextToken", next)
		return queryResponse(c, b.String()), nil

	case "DescribeAutoScalingInstances":
		ids := members(c.params, "InstanceIds")
		type row struct {
			g  *ASG
			id string
		}
		var rows []row
		for _, g := range r.asgs {
			for _, id := range g.InstanceIDs {
				if len(ids) == 0 || slices.Contains(ids, id) {
					rows = append(rows, row{g, id})
				}
			}
		}
		from, to, next, e := page(len(rows), c.params.Get("NextToken"), s.pageSize(c.params, "MaxRecords", 50))
		if e != nil {
			return "", e
		}
		var b xmlw
		b.raw("<AutoScalingInstances>")
		for _, rw := range rows[from:to] {
			b.raw("<member>")
			b.elem("InstanceId", rw.id)
			b.elem("AutoScalingGroupName", rw.g.Name)
			b.elem("AvailabilityZone", azOf(r, rw.id, c.region))
			b.elem("LifecycleState", rw.g.lifecycle[rw.id])
			b.elem("HealthStatus", "HEALTHY")
			b.boolean("ProtectedFromScaleIn", false)
			b.raw("</member>")
		}
		b.raw("</AutoScalingInstances>")
		b.opt("NextToken", next)
		return queryResponse(c, b.String()), nil

	case "EnterStandby", "ExitStandby":
		g, e := group()
		if e != nil {
			return "", e
		}
		ids := members(c.params, "InstanceIds")
		from, to := "InService", "Standby"
		if c.action == "ExitStandby" {
			from, to = "Standby", "InService"
		}
		for _, id := range ids {
			st, ok := g.lifecycle[id]
			if !ok {
				return "", validation("The instance %s is not part of Auto Scaling group %s.", id, g.Name)
			}
			if st != from {
				return "", validation("The instance %s is not in %s.", id, from)
			}
		}
		if c.action == "EnterStandby" {
			dec := c.params.Get("ShouldDecrementDesiredCapacity")
			if dec == "" {
				return "", validation("ShouldDecrementDesiredCapacity is required")
			}
			if dec == "true" {
				if g.Desired-len(ids) < g.Min {
					return "", validation("AutoScalingGroup %s has min-size=%d, max-size=%d, and desired-size=%d. To place into standby %d instances, please update the AutoScalingGroup sizes appropriately.", g.Name, g.Min, g.Max, g.Desired, len(ids))
				}
				g.Desired -= len(ids)
			}
		} else {
			if g.Desired+len(ids) > g.Max {
				return "", validation("AutoScalingGroup %s has max-size=%d; exiting standby would exceed it.", g.Name, g.Max)
			}
			g.Desired += len(ids)
		}
		// Standby takes the instances out of the group's load balancers, as AWS does.
		// Entering standby lasts as long as the group's load balancers
		// drain the instance, as AWS's does.
		var drain time.Duration
		if to == "Standby" {
			for _, arn := range g.TargetGroupARNs {
				if tg := r.tg(arn); tg != nil {
					drain = max(drain, s.scaled(tg.DeregistrationDelay))
				}
			}
			for _, n := range g.LoadBalancerNames {
				if lb := r.elb(n); lb != nil && lb.ConnectionDraining {
					drain = max(drain, s.scaled(lb.DrainingTimeout))
				}
			}
		}
		for _, id := range ids {
			g.lifecycle[id] = to
			if drain > 0 {
				g.lifecycle[id], g.standbyAt[id] = "EnteringStandby", now.Add(drain)
			}
			for _, arn := range g.TargetGroupARNs {
				if tg := r.tg(arn); tg != nil {
					if to == "Standby" {
						s.deregister(&tg.pool, id, -1, now, s.scaled(tg.DeregistrationDelay))
					} else {
						s.register(&tg.pool, id, tg.Port, now)
					}
				}
			}
			for _, n := range g.LoadBalancerNames {
				if lb := r.elb(n); lb != nil {
					if to == "Standby" {
						delay := time.Duration(0)
						if lb.ConnectionDraining {
							delay = s.scaled(lb.DrainingTimeout)
						}
						s.deregister(&lb.pool, id, 0, now, delay)
					} else {
						s.register(&lb.pool, id, 0, now)
					}
				}
			}
		}
		var b xmlw
		b.raw("<Activities>")
		for _, id := range ids {
			b.raw("<member>")
			b.elem("ActivityId", fmt.Sprintf("%s-%s", strings.ToLower(c.action), id))
			b.elem("AutoScalingGroupName", g.Name)
			b.elem("Description", fmt.Sprintf("Moving EC2 instance %s to %s", id, to))
			b.elem("Cause", fmt.Sprintf("At %s instance %s was moved to %s by the user.", now.UTC().Format(time.RFC3339), id, to))
			b.ts("StartTime", now)
			b.elem("StatusCode", "Successful")
			b.num("Progress", 100)
			b.raw("</member>")
		}
		b.raw("</Activities>")
		return queryResponse(c, b.String()), nil

	case "RecordLifecycleActionHeartbeat", "CompleteLifecycleAction":
		g, e := group()
		if e != nil {
			return "", e
		}
		return s.lifecycleAction(c, r, g)

	case "SuspendProcesses", "ResumeProcesses":
		g, e := group()
		if e != nil {
			return "", e
		}
		procs := members(c.params, "ScalingProcesses")
		for _, p := range procs {
			if !slices.Contains(ScalingProcesses, p) {
				return "", validation("Process %s is not a valid process.", p)
			}
		}
		if len(procs) == 0 {
			procs = ScalingProcesses
		}
		for _, p := range procs {
			if c.action == "SuspendProcesses" {
				g.suspended[p] = true
			} else {
				delete(g.suspended, p)
			}
		}
		return queryResponse(c, ""), nil
	}
	return "", errf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version 2011-01-01", c.action)
}

func azOf(r *regionState, id, region string) string {
	if inst := r.byID[id]; inst != nil {
		return inst.AZ
	}
	return region + "a"
}

package awsemu

import (
	"fmt"
	"time"
)

// TargetHealth reports the state of every target of a target group now
// (healthy, initial, unhealthy, draining, unused), keyed by instance ID, as
// DescribeTargetHealth would, without a request in the log: for monitors
// and test assertions. It runs the HealthCheck hook.
func (s *Server) TargetHealth(account, region, arn string) (map[string]string, error) {
	now := time.Now()
	return s.poolHealth(account, region, now, func(r *regionState) (*pool, error) {
		if tg := r.tg(arn); tg != nil {
			return &tg.pool, nil
		}
		return nil, fmt.Errorf("no target group %s in %s/%s", arn, account, region)
	})
}

// InstanceHealth reports the classic ELB state (InService, OutOfService)
// of every instance registered with it, keyed by instance ID, like
// TargetHealth does for target groups.
func (s *Server) InstanceHealth(account, region, name string) (map[string]string, error) {
	now := time.Now()
	out, err := s.poolHealth(account, region, now, func(r *regionState) (*pool, error) {
		if lb := r.elb(name); lb != nil {
			return &lb.pool, nil
		}
		return nil, fmt.Errorf("no load balancer %s in %s/%s", name, account, region)
	})
	for id, st := range out {
		if st == "healthy" {
			out[id] = "InService"
		} else {
			out[id] = "OutOfService"
		}
	}
	return out, err
}

// poolHealth reports the target-group state of every member of the pool
// find returns (called under s.mu), keyed by instance ID, after pruning
// the members whose draining is over.
func (s *Server) poolHealth(account, region string, now time.Time, find func(*regionState) (*pool, error)) (map[string]string, error) {
	s.mu.Lock()
	r := s.region(account, region)
	p, err := find(r)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.prune(p, now)
	ms, states := snapshot(r, p.members)
	s.mu.Unlock()
	out := make(map[string]string, len(ms))
	for i, m := range ms {
		out[m.id] = s.memberHealth(m, states[i], now).state
	}
	return out, nil
}

// snapshot copies members and their instances' states. Caller holds s.mu;
// health is decided after it is released (the hook may be slow).
func snapshot(r *regionState, ms []*member) ([]member, []string) {
	out := make([]member, len(ms))
	states := make([]string, len(ms))
	for i, m := range ms {
		out[i], states[i] = *m, instState(r, m.id)
	}
	return out, states
}

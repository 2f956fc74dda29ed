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
	s.mu.Lock()
	r := s.region(account, region)
	tg := r.tg(arn)
	if tg == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("no target group %s in %s/%s", arn, account, region)
	}
	s.prune(&tg.pool, now)
	ms, states := snapshot(r, tg.members)
	s.mu.Unlock()
	out := make(map[string]string, len(ms))
	for i, m := range ms {
		out[m.id] = s.memberHealth(m, states[i], now).state
	}
	return out, nil
}

// InstanceHealth reports the classic ELB state (InService, OutOfService)
// of every instance registered with it, keyed by instance ID, like
// TargetHealth does for target groups.
func (s *Server) InstanceHealth(account, region, name string) (map[string]string, error) {
	now := time.Now()
	s.mu.Lock()
	r := s.region(account, region)
	lb := r.elb(name)
	if lb == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("no load balancer %s in %s/%s", name, account, region)
	}
	s.prune(&lb.pool, now)
	ms, states := snapshot(r, lb.members)
	s.mu.Unlock()
	out := make(map[string]string, len(ms))
	for i, m := range ms {
		st := "OutOfService"
		if s.memberHealth(m, states[i], now).state == "healthy" {
			st = "InService"
		}
		out[m.id] = st
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

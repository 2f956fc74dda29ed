package awsemu

import (
	"sync"
	"time"
)

// Change is a target's state change in a load balancer, as the load
// balancer decided it: registered (initial), health checks passed
// (healthy) or failed (unhealthy), deregistered (draining), draining over
// (unused). Time is when it took effect.
type Change struct {
	Time     time.Time
	Kind     string // "target-group" or "elb"
	Name     string // target group or load balancer name
	Instance string
	Port     int
	From, To string // target group states, for classic ELBs too
	Reason   string
}

// Changes returns the state changes logged so far, oldest first.
func (s *Server) Changes() []Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Change(nil), s.changes...)
}

// change logs m's move to state and applies it. Caller holds s.mu.
func (s *Server) change(p *pool, m *member, at time.Time, to, reason string) {
	from := m.state
	if from == "" {
		from = "unused"
	}
	if !m.drainUntil.IsZero() && to != "draining" {
		from = "draining"
	}
	if to != "draining" && to != "unused" {
		m.state = to
	}
	if to == "initial" {
		m.state = "initial"
	}
	s.changes = append(s.changes, Change{Time: at, Kind: p.kind, Name: p.name, Instance: m.id, Port: m.port, From: from, To: to, Reason: reason})
}

// pools returns every target group and classic ELB. Caller holds s.mu.
func (s *Server) pools() []*pool {
	var out []*pool
	for _, r := range s.regions {
		for _, tg := range r.tgs {
			out = append(out, &tg.pool)
		}
		for _, lb := range r.elbs {
			out = append(out, &lb.pool)
		}
	}
	return out
}

// checkTick is how often the checker looks for due checks and ended
// drains; it bounds how late a state change is seen.
const checkTick = 20 * time.Millisecond

// checkLoop runs the load balancers' health checks until Close: each
// member is checked every interval of its pool; HealthyThreshold passes in
// a row make it healthy, UnhealthyThreshold failures unhealthy. Draining
// members are not checked and leave their pool when the delay is over.
func (s *Server) checkLoop() {
	defer close(s.checksDone)
	t := time.NewTicker(checkTick)
	defer t.Stop()
	for {
		select {
		case <-s.stopChecks:
			return
		case <-t.C:
		}
		s.checkDue(time.Now())
	}
}

type checkJob struct {
	p   *pool
	m   *member
	due time.Time
}

func (s *Server) checkDue(now time.Time) {
	s.mu.Lock()
	var jobs []*checkJob
	for _, p := range s.pools() {
		s.prune(p, now)
		for _, m := range p.members {
			if m.drainUntil.IsZero() && !m.nextCheck.After(now) {
				jobs = append(jobs, &checkJob{p: p, m: m, due: m.nextCheck})
			}
		}
	}
	s.mu.Unlock()
	if len(jobs) == 0 {
		return
	}
	// One probe per instance and round, shared by the pools that check it.
	type result struct {
		ok     bool
		reason string
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results = map[string]result{}
	)
	for _, j := range jobs {
		mu.Lock()
		_, started := results[j.m.id]
		if !started {
			results[j.m.id] = result{}
		}
		mu.Unlock()
		if started {
			continue
		}
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			ok, why := true, ""
			if s.opts.HealthCheck != nil {
				ok, why = s.opts.HealthCheck(id)
			}
			mu.Lock()
			results[id] = result{ok, why}
			mu.Unlock()
		}(j.m.id)
	}
	wg.Wait()

	done := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range jobs {
		m, hc := j.m, j.p.check
		if !m.drainUntil.IsZero() || !m.nextCheck.Equal(j.due) {
			continue // deregistered or re-registered meanwhile
		}
		res := results[m.id]
		m.nextCheck = j.due.Add(s.scaled(hc.Interval))
		if m.nextCheck.Before(done) {
			m.nextCheck = done
		}
		if res.ok {
			m.passes, m.fails = m.passes+1, 0
			if m.state != "healthy" && m.passes >= hc.HealthyThreshold {
				s.change(j.p, m, done, "healthy", "")
			}
			continue
		}
		m.fails, m.passes = m.fails+1, 0
		if res.reason == "" {
			res.reason = "Health checks failed"
		}
		m.reason = res.reason
		if m.state != "unhealthy" && m.fails >= hc.UnhealthyThreshold {
			s.change(j.p, m, done, "unhealthy", "Target.FailedHealthChecks")
		}
	}
}

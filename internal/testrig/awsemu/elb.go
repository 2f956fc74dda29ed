package awsemu

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TargetGroup is an ELBv2 target group (ALB/NLB) of target type instance.
type TargetGroup struct {
	Name                string
	ARN                 string // generated when empty
	Port                int    // default 80
	Protocol            string // default HTTP
	VpcID               string
	DeregistrationDelay int // seconds (deregistration_delay.timeout_seconds), default 300
	LoadBalancerARNs    []string
	Targets             []Target // registered and healthy from the start
	// HealthCheck is the target group's health check (defaults: every 30 s,
	// healthy after 5 passes, unhealthy after 2 failures, as AWS's).
	HealthCheck HealthCheck

	pool
}

// HealthCheck is a load balancer's health check settings. They govern the
// state of targets when Options.HealthChecks is set.
type HealthCheck struct {
	Interval           int // seconds between checks of one target
	HealthyThreshold   int // consecutive passes to turn healthy
	UnhealthyThreshold int // consecutive failures to turn unhealthy
}

func (h HealthCheck) withDefaults(interval, healthy, unhealthy int) HealthCheck {
	if h.Interval <= 0 {
		h.Interval = interval
	}
	if h.HealthyThreshold <= 0 {
		h.HealthyThreshold = healthy
	}
	if h.UnhealthyThreshold <= 0 {
		h.UnhealthyThreshold = unhealthy
	}
	return h
}

// Target is an instance on a port.
type Target struct {
	ID   string
	Port int // 0: the target group's port
}

// ClassicELB is a Classic Load Balancer.
type ClassicELB struct {
	Name               string
	DNSName            string
	ConnectionDraining bool // when set, deregistered instances drain for DrainingTimeout
	DrainingTimeout    int  // seconds, default 300
	Instances          []string
	AZs                []string
	InstancePort       int // where its listener sends traffic, default 80
	// HealthCheck defaults: every 30 s, healthy after 10 passes, unhealthy
	// after 2 failures, as AWS's.
	HealthCheck HealthCheck

	pool
}

// pool is the members of one target group or classic ELB, with what
// routing and health checking need.
type pool struct {
	kind, name string // "target-group" or "elb", and its name
	members    []*member
	check      HealthCheck
	next       int // round robin
}

// member is a registered (or draining) target of a target group or ELB.
type member struct {
	id           string
	port         int
	registeredAt time.Time // zero: healthy from the start (seeded)
	drainUntil   time.Time // non-zero: deregistered, draining until then

	// With Options.HealthChecks: the state the checks decided (initial,
	// healthy, unhealthy), the run of passes or failures, the next check,
	// and requests the proxy has in flight to it.
	state         string
	reason        string
	passes, fails int
	nextCheck     time.Time
	inflight      int
	gone          chan struct{} // closed when the member leaves the pool
}

// AddTargetGroup adds tg to account/region and returns its ARN.
func (s *Server) AddTargetGroup(account, region string, tg TargetGroup) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.region(account, region)
	if tg.Port == 0 {
		tg.Port = 80
	}
	if tg.Protocol == "" {
		tg.Protocol = "HTTP"
	}
	if tg.DeregistrationDelay == 0 {
		tg.DeregistrationDelay = 300
	}
	if tg.ARN == "" {
		tg.ARN = fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/%s/%016x", region, account, tg.Name, hash(tg.Name))
	}
	tg.HealthCheck = tg.HealthCheck.withDefaults(30, 5, 2)
	tg.pool = pool{kind: "target-group", name: tg.Name, check: tg.HealthCheck}
	now := time.Now()
	for i, t := range tg.Targets {
		p := t.Port
		if p == 0 {
			p = tg.Port
		}
		tg.members = append(tg.members, s.seeded(t.ID, p, tg.check, i, now))
	}
	tg.Targets = nil
	r.tgs = append(r.tgs, &tg)
	return tg.ARN
}

// AddClassicELB adds a Classic Load Balancer to account/region.
func (s *Server) AddClassicELB(account, region string, lb ClassicELB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.region(account, region)
	if lb.DrainingTimeout == 0 {
		lb.DrainingTimeout = 300
	}
	if lb.InstancePort == 0 {
		lb.InstancePort = 80
	}
	if lb.DNSName == "" {
		lb.DNSName = lb.Name + "-1234567890." + region + ".elb.amazonaws.com"
	}
	if len(lb.AZs) == 0 {
		lb.AZs = []string{region + "a", region + "b"}
	}
	lb.HealthCheck = lb.HealthCheck.withDefaults(30, 10, 2)
	lb.pool = pool{kind: "elb", name: lb.Name, check: lb.HealthCheck}
	now := time.Now()
	for i, id := range lb.Instances {
		lb.members = append(lb.members, s.seeded(id, 0, lb.check, i, now))
	}
	lb.Instances = nil
	r.elbs = append(r.elbs, &lb)
}

// health is a member's state at now: "initial", "healthy", "unhealthy",
// "draining", "unused" (instance not running), with reason and description.
type health struct{ state, reason, desc string }

// memberHealth decides a member's health. It may call the HealthCheck hook,
// so the caller must not hold s.mu.
func (s *Server) memberHealth(m member, instState string, now time.Time) health {
	switch {
	case !m.drainUntil.IsZero():
		return health{"draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"}
	case instState != "" && instState != "running":
		return health{"unused", "Target.InvalidState", "Target is in the " + instState + " state"}
	case s.opts.HealthChecks:
		switch m.state {
		case "initial":
			return health{"initial", "Elb.RegistrationInProgress", "Target registration is in progress"}
		case "unhealthy":
			return health{"unhealthy", "Target.FailedHealthChecks", m.reason}
		}
		return health{"healthy", "", ""}
	case !m.registeredAt.IsZero() && now.Before(m.registeredAt.Add(s.opts.InitialFor)):
		return health{"initial", "Elb.RegistrationInProgress", "Target registration is in progress"}
	}
	if s.opts.HealthCheck != nil {
		if ok, why := s.opts.HealthCheck(m.id); !ok {
			if why == "" {
				why = "Health checks failed"
			}
			return health{"unhealthy", "Target.FailedHealthChecks", why}
		}
	}
	return health{"healthy", "", ""}
}

// prune drops members whose draining is over, logging when it ended.
// Caller holds s.mu.
func (s *Server) prune(p *pool, now time.Time) {
	out := p.members[:0]
	for _, m := range p.members {
		if m.drainUntil.IsZero() || now.Before(m.drainUntil) {
			out = append(out, m)
			continue
		}
		s.change(p, m, m.drainUntil, "unused", "Target.NotRegistered")
		if m.gone != nil {
			close(m.gone)
		}
	}
	p.members = out
}

func (r *regionState) tg(arn string) *TargetGroup {
	for _, tg := range r.tgs {
		if tg.ARN == arn {
			return tg
		}
	}
	return nil
}

func tgNotFound(arn string) *apiError {
	return errf(http.StatusBadRequest, "TargetGroupNotFound", "Target groups '%s' not found", arn)
}

func (s *Server) elbv2(c call) (string, *apiError) {
	now := time.Now()
	switch c.action {
	case "DescribeTargetGroups":
		arns := members(c.params, "TargetGroupArns")
		names := members(c.params, "Names")
		lbArn := c.params.Get("LoadBalancerArn")
		s.mu.Lock()
		r := s.region(c.account, c.region)
		var sel []*TargetGroup
		for _, tg := range r.tgs {
			if (len(arns) == 0 || slices.Contains(arns, tg.ARN)) && (len(names) == 0 || slices.Contains(names, tg.Name)) &&
				(lbArn == "" || slices.Contains(tg.LoadBalancerARNs, lbArn)) {
				sel = append(sel, tg)
			}
		}
		for _, a := range arns {
			if r.tg(a) == nil {
				s.mu.Unlock()
				return "", tgNotFound(a)
			}
		}
		for _, n := range names {
			found := false
			for _, tg := range r.tgs {
				found = found || tg.Name == n
			}
			if !found {
				s.mu.Unlock()
				return "", errf(http.StatusBadRequest, "TargetGroupNotFound", "One or more target groups not found")
			}
		}
		from, to, next, e := page(len(sel), c.params.Get("Marker"), s.pageSize(c.params, "PageSize", 400))
		if e != nil {
			s.mu.Unlock()
			return "", e
		}
		var b xmlw
		b.raw("<TargetGroups>")
		for _, tg := range sel[from:to] {
			b.raw("<member>")
			b.elem("TargetGroupArn", tg.ARN)
			b.elem("TargetGroupName", tg.Name)
			b.elem("Protocol", tg.Protocol)
			b.num("Port", tg.Port)
			b.opt("VpcId", tg.VpcID)
			b.elem("TargetType", "instance")
			b.elem("HealthCheckProtocol", tg.Protocol)
			b.elem("HealthCheckPort", "traffic-port")
			b.boolean("HealthCheckEnabled", true)
			b.num("HealthCheckIntervalSeconds", s.reported(tg.check.Interval))
			b.num("HealthCheckTimeoutSeconds", max(1, s.reported(tg.check.Interval)/2))
			b.num("HealthyThresholdCount", tg.check.HealthyThreshold)
			b.num("UnhealthyThresholdCount", tg.check.UnhealthyThreshold)
			b.raw("<LoadBalancerArns>")
			for _, a := range tg.LoadBalancerARNs {
				b.elem("member", a)
			}
			b.raw("</LoadBalancerArns></member>")
		}
		b.raw("</TargetGroups>")
		s.mu.Unlock()
		b.opt("NextMarker", next)
		return queryResponse(c, b.String()), nil

	case "DescribeTargetGroupAttributes":
		s.mu.Lock()
		tg := s.region(c.account, c.region).tg(c.params.Get("TargetGroupArn"))
		if tg == nil {
			s.mu.Unlock()
			return "", tgNotFound(c.params.Get("TargetGroupArn"))
		}
		attrs := [][2]string{
			{"deregistration_delay.timeout_seconds", strconv.Itoa(s.reported(tg.DeregistrationDelay))},
			{"stickiness.enabled", "false"},
			{"stickiness.type", "lb_cookie"},
			{"load_balancing.algorithm.type", "round_robin"},
			{"slow_start.duration_seconds", "0"},
		}
		s.mu.Unlock()
		var b xmlw
		b.raw("<Attributes>")
		for _, a := range attrs {
			b.raw("<member>")
			b.elem("Key", a[0])
			b.elem("Value", a[1])
			b.raw("</member>")
		}
		b.raw("</Attributes>")
		return queryResponse(c, b.String()), nil

	case "DescribeTargetHealth":
		arn := c.params.Get("TargetGroupArn")
		want, e := targetsParam(c, 0)
		if e != nil {
			return "", e
		}
		s.mu.Lock()
		r := s.region(c.account, c.region)
		tg := r.tg(arn)
		if tg == nil {
			s.mu.Unlock()
			return "", tgNotFound(arn)
		}
		s.prune(&tg.pool, now)
		type row struct {
			m     member
			state string
			found bool
		}
		var rows []row
		if len(want) == 0 {
			for _, m := range tg.members {
				rows = append(rows, row{m: *m, found: true, state: instState(r, m.id)})
			}
		} else {
			for _, t := range want {
				if t.Port == 0 {
					t.Port = tg.Port
				}
				rw := row{m: member{id: t.ID, port: t.Port}}
				for _, m := range tg.members {
					if m.id == t.ID && m.port == t.Port {
						rw = row{m: *m, found: true, state: instState(r, m.id)}
					}
				}
				rows = append(rows, rw)
			}
		}
		s.mu.Unlock()
		var b xmlw
		b.raw("<TargetHealthDescriptions>")
		for _, rw := range rows {
			h := health{"unused", "Target.NotRegistered", "Target is not registered to the target group"}
			if rw.found {
				h = s.memberHealth(rw.m, rw.state, now)
			}
			b.raw("<member><Target>")
			b.elem("Id", rw.m.id)
			b.num("Port", rw.m.port)
			b.raw("</Target>")
			b.elem("HealthCheckPort", strconv.Itoa(rw.m.port))
			b.raw("<TargetHealth>")
			b.elem("State", h.state)
			b.opt("Reason", h.reason)
			b.opt("Description", h.desc)
			b.raw("</TargetHealth></member>")
		}
		b.raw("</TargetHealthDescriptions>")
		return queryResponse(c, b.String()), nil

	case "RegisterTargets", "DeregisterTargets":
		arn := c.params.Get("TargetGroupArn")
		ts, e := targetsParam(c, 1)
		if e != nil {
			return "", e
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		r := s.region(c.account, c.region)
		tg := r.tg(arn)
		if tg == nil {
			return "", tgNotFound(arn)
		}
		s.prune(&tg.pool, now)
		if c.action == "RegisterTargets" {
			var bad []string
			for _, t := range ts {
				if st := instState(r, t.ID); st != "running" {
					bad = append(bad, "'"+t.ID+"'")
				}
			}
			if len(bad) > 0 {
				return "", errf(http.StatusBadRequest, "InvalidTarget", "The following targets are not in a running state and cannot be registered: %s", strings.Join(bad, ", "))
			}
			for _, t := range ts {
				if t.Port == 0 {
					t.Port = tg.Port
				}
				s.register(&tg.pool, t.ID, t.Port, now)
			}
		} else {
			for _, t := range ts {
				if t.Port == 0 {
					t.Port = tg.Port
				}
				s.deregister(&tg.pool, t.ID, t.Port, now, s.scaled(tg.DeregistrationDelay))
			}
		}
		return queryResponse(c, ""), nil
	}
	return "", errf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version 2015-12-01", c.action)
}

// seeded is a member registered and healthy from the start; its checks
// are spread over the interval.
func (s *Server) seeded(id string, port int, hc HealthCheck, i int, now time.Time) *member {
	every := s.scaled(hc.Interval)
	return &member{id: id, port: port, state: "healthy", passes: hc.HealthyThreshold,
		nextCheck: now.Add(every * time.Duration(i%10) / 10), gone: make(chan struct{})}
}

// register adds (or re-registers a draining) member, which starts in
// "initial": its first health check is due at once. Caller holds s.mu.
func (s *Server) register(p *pool, id string, port int, now time.Time) {
	for _, m := range p.members {
		if m.id == id && m.port == port {
			if m.drainUntil.IsZero() {
				return
			}
			// Re-registered while draining: requests in flight carry on,
			// new ones wait for health checks again.
			s.change(p, m, now, "initial", "Elb.RegistrationInProgress")
			m.drainUntil = time.Time{}
			m.registeredAt, m.passes, m.fails, m.nextCheck = now, 0, 0, now
			return
		}
	}
	m := &member{id: id, port: port, registeredAt: now, nextCheck: now, gone: make(chan struct{})}
	p.members = append(p.members, m)
	s.change(p, m, now, "initial", "Elb.RegistrationInProgress")
}

// deregister starts draining a member (removing it at once for delay 0).
func (s *Server) deregister(p *pool, id string, port int, now time.Time, delay time.Duration) {
	for _, m := range p.members {
		if m.id == id && (port < 0 || m.port == port) && m.drainUntil.IsZero() {
			m.drainUntil = now.Add(delay)
			if delay <= 0 {
				m.drainUntil = now.Add(-time.Nanosecond)
			}
			s.change(p, m, now, "draining", "Target.DeregistrationInProgress")
		}
	}
}

func instState(r *regionState, id string) string {
	if inst := r.byID[id]; inst != nil {
		return inst.State
	}
	return ""
}

// targetsParam reads Targets.member.N.Id/Port; at least min of them.
func targetsParam(c call, minN int) ([]Target, *apiError) {
	var out []Target
	for i := 1; ; i++ {
		id := c.params.Get(fmt.Sprintf("Targets.member.%d.Id", i))
		if id == "" {
			break
		}
		t := Target{ID: id}
		if p := c.params.Get(fmt.Sprintf("Targets.member.%d.Port", i)); p != "" {
			t.Port, _ = strconv.Atoi(p)
		}
		out = append(out, t)
	}
	if len(out) < minN {
		return nil, validation("1 validation error detected: Value null at 'targets' failed to satisfy constraint: Member must not be null")
	}
	return out, nil
}

func (r *regionState) elb(name string) *ClassicELB {
	for _, lb := range r.elbs {
		if lb.Name == name {
			return lb
		}
	}
	return nil
}

func elbNotFound(name string) *apiError {
	return errf(http.StatusBadRequest, "LoadBalancerNotFound", "There is no ACTIVE Load Balancer named '%s'", name)
}

func (s *Server) elb(c call) (string, *apiError) {
	now := time.Now()
	switch c.action {
	case "DescribeLoadBalancers":
		names := members(c.params, "LoadBalancerNames")
		s.mu.Lock()
		r := s.region(c.account, c.region)
		var sel []*ClassicELB
		for _, n := range names {
			if r.elb(n) == nil {
				s.mu.Unlock()
				return "", elbNotFound(n)
			}
		}
		for _, lb := range r.elbs {
			if len(names) == 0 || slices.Contains(names, lb.Name) {
				sel = append(sel, lb)
			}
		}
		from, to, next, e := page(len(sel), c.params.Get("Marker"), s.pageSize(c.params, "PageSize", 400))
		if e != nil {
			s.mu.Unlock()
			return "", e
		}
		var b xmlw
		b.raw("<LoadBalancerDescriptions>")
		for _, lb := range sel[from:to] {
			s.prune(&lb.pool, now)
			b.raw("<member>")
			b.elem("LoadBalancerName", lb.Name)
			b.elem("DNSName", lb.DNSName)
			b.elem("Scheme", "internet-facing")
			b.raw("<Instances>")
			for _, m := range lb.members {
				if m.drainUntil.IsZero() {
					b.raw("<member>")
					b.elem("InstanceId", m.id)
					b.raw("</member>")
				}
			}
			b.raw("</Instances><HealthCheck>")
			b.elem("Target", "HTTP:"+strconv.Itoa(lb.InstancePort)+"/")
			b.num("Interval", s.reported(lb.check.Interval))
			b.num("Timeout", max(1, s.reported(lb.check.Interval)/2))
			b.num("HealthyThreshold", lb.check.HealthyThreshold)
			b.num("UnhealthyThreshold", lb.check.UnhealthyThreshold)
			b.raw("</HealthCheck><AvailabilityZones>")
			for _, az := range lb.AZs {
				b.elem("member", az)
			}
			b.raw("</AvailabilityZones></member>")
		}
		b.raw("</LoadBalancerDescriptions>")
		s.mu.Unlock()
		b.opt("NextMarker", next)
		return queryResponse(c, b.String()), nil

	case "DescribeLoadBalancerAttributes":
		s.mu.Lock()
		lb := s.region(c.account, c.region).elb(c.params.Get("LoadBalancerName"))
		if lb == nil {
			s.mu.Unlock()
			return "", elbNotFound(c.params.Get("LoadBalancerName"))
		}
		var b xmlw
		b.raw("<LoadBalancerAttributes><ConnectionDraining>")
		b.boolean("Enabled", lb.ConnectionDraining)
		b.num("Timeout", s.reported(lb.DrainingTimeout))
		b.raw("</ConnectionDraining><ConnectionSettings><IdleTimeout>60</IdleTimeout></ConnectionSettings>")
		b.raw("<CrossZoneLoadBalancing><Enabled>true</Enabled></CrossZoneLoadBalancing>")
		b.raw("<AccessLog><Enabled>false</Enabled></AccessLog></LoadBalancerAttributes>")
		s.mu.Unlock()
		return queryResponse(c, b.String()), nil

	case "DescribeInstanceHealth":
		name := c.params.Get("LoadBalancerName")
		want := instancesParam(c)
		s.mu.Lock()
		r := s.region(c.account, c.region)
		lb := r.elb(name)
		if lb == nil {
			s.mu.Unlock()
			return "", elbNotFound(name)
		}
		s.prune(&lb.pool, now)
		type row struct {
			m     member
			state string
		}
		var rows []row
		for _, m := range lb.members {
			if len(want) == 0 || slices.Contains(want, m.id) {
				rows = append(rows, row{*m, instState(r, m.id)})
			}
		}
		for _, id := range want {
			found := false
			for _, rw := range rows {
				found = found || rw.m.id == id
			}
			if !found {
				s.mu.Unlock()
				return "", errf(http.StatusBadRequest, "InvalidInstance", "Could not find EC2 instance %s registered with load balancer %s.", id, name)
			}
		}
		s.mu.Unlock()
		var b xmlw
		b.raw("<InstanceStates>")
		for _, rw := range rows {
			h := s.memberHealth(rw.m, rw.state, now)
			state, code, desc := "InService", "N/A", "N/A"
			switch h.state {
			case "draining":
				// As AWS reports it: still InService while connections
				// drain (its waiter instance_deregistered waits for
				// OutOfService or InvalidInstance, i.e. the end of draining).
				desc = "Instance deregistration currently in progress."
			case "initial":
				state, code, desc = "OutOfService", "ELB", "Instance registration is still in progress."
			case "unhealthy", "unused":
				state, code, desc = "OutOfService", "Instance", "Instance has failed at least the UnhealthyThreshold number of health checks consecutively. "+h.desc
			}
			b.raw("<member>")
			b.elem("InstanceId", rw.m.id)
			b.elem("State", state)
			b.elem("ReasonCode", code)
			b.elem("Description", desc)
			b.raw("</member>")
		}
		b.raw("</InstanceStates>")
		return queryResponse(c, b.String()), nil

	case "RegisterInstancesWithLoadBalancer", "DeregisterInstancesFromLoadBalancer":
		name := c.params.Get("LoadBalancerName")
		ids := instancesParam(c)
		s.mu.Lock()
		defer s.mu.Unlock()
		r := s.region(c.account, c.region)
		lb := r.elb(name)
		if lb == nil {
			return "", elbNotFound(name)
		}
		s.prune(&lb.pool, now)
		for _, id := range ids {
			if instState(r, id) == "" {
				return "", errf(http.StatusBadRequest, "InvalidInstance", "The requested instance %s is not valid.", id)
			}
		}
		for _, id := range ids {
			if c.action == "RegisterInstancesWithLoadBalancer" {
				s.register(&lb.pool, id, 0, now)
			} else {
				delay := time.Duration(0)
				if lb.ConnectionDraining {
					delay = s.scaled(lb.DrainingTimeout)
				}
				s.deregister(&lb.pool, id, 0, now, delay)
			}
		}
		var b xmlw
		b.raw("<Instances>")
		for _, m := range lb.members {
			if m.drainUntil.IsZero() {
				b.raw("<member>")
				b.elem("InstanceId", m.id)
				b.raw("</member>")
			}
		}
		b.raw("</Instances>")
		return queryResponse(c, b.String()), nil
	}
	return "", errf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version 2012-06-01", c.action)
}

func instancesParam(c call) []string {
	var out []string
	for i := 1; ; i++ {
		id := c.params.Get(fmt.Sprintf("Instances.member.%d.InstanceId", i))
		if id == "" {
			return out
		}
		out = append(out, id)
	}
}

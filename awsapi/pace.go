package awsapi

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
)

// Waits at the pace of the load balancer. A wait knows when the state it
// waits for can change at the earliest: a deregistered target stops
// draining after the deregistration delay (the classic ELB's connection
// draining timeout); a registered one turns healthy after HealthyThreshold
// checks, the first of them right away. It sleeps until then, then polls
// every poll interval (less a random tenth or two, never more), backing
// off while AWS throttles. Hosts waiting on the same load balancer share
// its health reads: one DescribeTargetHealth (DescribeInstanceHealth) for
// all of them, made when the first one needs it and joined by those that
// need it within coalesceWindow.

// settle is how long after the earliest moment the first poll is made: a
// load balancer applies its own change a little after it is due.
const settle = 100 * time.Millisecond

// coalesceWindow is how far apart two hosts' polls of one load balancer
// may be and still be one call: the later host's wait ends at most this
// much later than it could.
const coalesceWindow = 250 * time.Millisecond

// lbSettings are what the pace of one load balancer depends on.
type lbSettings struct {
	delay     time.Duration // deregistration delay / connection draining (0: none)
	interval  time.Duration // health check interval
	healthyAt int           // healthy threshold
}

// firstHealthy is how long after registration a target can be healthy.
func (s lbSettings) firstHealthy() time.Duration {
	return time.Duration(max(s.healthyAt-1, 0)) * s.interval
}

// lbKey names one load balancer of one region and role.
type lbKey struct {
	region, role string
	kind         string // "tg" or "elb"
	id           string // target group ARN or classic ELB name
}

// lbHealth is one read of a load balancer's health: target group states
// by "id:port", classic ELB states by instance ID.
type lbHealth struct {
	tg  map[string]elbv2types.TargetHealth
	elb map[string]elbtypes.InstanceState
}

// read is one shared health call.
type read struct {
	at, limit time.Time // when to call; it may move later, up to limit
	started   bool
	done      chan struct{}
	health    lbHealth
	err       error
}

// pacer holds the shared reads and the load balancers' settings.
type pacer struct {
	mu       sync.Mutex
	pending  map[lbKey][]*read
	settings map[lbKey]*settingsRead
}

// settingsRead is one read of a load balancer's settings, shared by the
// hosts that need it.
type settingsRead struct {
	done chan struct{}
	s    lbSettings
	err  error
}

func (p *pacer) init() {
	if p.pending == nil {
		p.pending = map[lbKey][]*read{}
		p.settings = map[lbKey]*settingsRead{}
	}
}

// health returns a read of k's health made at or after t: one already
// planned near t is joined, else one is planned for t.
func (f *Factory) health(ctx context.Context, c *Clients, k lbKey, t time.Time) (lbHealth, error) {
	p := &f.pace
	p.mu.Lock()
	p.init()
	var r *read
	for _, x := range p.pending[k] {
		if !x.started && !t.Before(x.at.Add(-coalesceWindow)) && !t.After(x.limit) {
			r = x
			if t.After(r.at) {
				r.at = t
			}
			break
		}
	}
	if r == nil {
		r = &read{at: t, limit: t.Add(coalesceWindow), done: make(chan struct{})}
		p.pending[k] = append(p.pending[k], r)
		go f.runRead(c, k, r)
	}
	p.mu.Unlock()
	select {
	case <-r.done:
		return r.health, r.err
	case <-ctx.Done():
		return lbHealth{}, ctx.Err()
	}
}

// runRead makes read r when it is due.
func (f *Factory) runRead(c *Clients, k lbKey, r *read) {
	p := &f.pace
	for {
		p.mu.Lock()
		d := time.Until(r.at)
		if d <= 0 {
			r.started = true
			list := p.pending[k]
			for i, x := range list {
				if x == r {
					p.pending[k] = append(list[:i:i], list[i+1:]...)
					break
				}
			}
			p.mu.Unlock()
			break
		}
		p.mu.Unlock()
		time.Sleep(d)
	}
	// The read serves several waits: none of their contexts may cut it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r.health, r.err = fetchHealth(ctx, c, k)
	close(r.done)
}

func fetchHealth(ctx context.Context, c *Clients, k lbKey) (lbHealth, error) {
	if k.kind == "tg" {
		out, err := c.ELBv2.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(k.id)})
		if err != nil {
			return lbHealth{}, err
		}
		h := lbHealth{tg: map[string]elbv2types.TargetHealth{}}
		for _, th := range out.TargetHealthDescriptions {
			if th.Target != nil && th.TargetHealth != nil {
				h.tg[targetKey(aws.ToString(th.Target.Id), aws.ToInt32(th.Target.Port))] = *th.TargetHealth
			}
		}
		return h, nil
	}
	out, err := c.ELB.DescribeInstanceHealth(ctx, &elb.DescribeInstanceHealthInput{LoadBalancerName: aws.String(k.id)})
	if err != nil {
		return lbHealth{}, err
	}
	h := lbHealth{elb: map[string]elbtypes.InstanceState{}}
	for _, s := range out.InstanceStates {
		h.elb[aws.ToString(s.InstanceId)] = s
	}
	return h, nil
}

func targetKey(id string, port int32) string { return id + ":" + strconv.Itoa(int(port)) }

// paced waits until check, given a health read of k made at or after the
// earliest moment, reports done: the first read is at earliest (plus
// settle), then one every poll interval, jittered; throttling doubles the
// interval (up to 30 s) instead of failing the wait.
func (f *Factory) paced(ctx context.Context, c *Clients, k lbKey, earliest, deadline time.Time, interval time.Duration,
	check func(lbHealth) bool) error {
	next := earliest.Add(settle)
	backoff := interval
	for {
		if next.After(deadline) {
			next = deadline
		}
		h, err := f.health(ctx, c, k, next)
		switch {
		case err == nil:
			if check(h) {
				return nil
			}
			backoff = interval
		case isThrottle(err):
			backoff = min(2*backoff, 30*time.Second)
		default:
			return err
		}
		now := time.Now()
		if !now.Before(deadline) {
			return errTimeout
		}
		next = now.Add(jitter(backoff))
	}
}

// jitter is d less up to a fifth: polls spread out, never later than d.
func jitter(d time.Duration) time.Duration {
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

var throttleCodes = map[string]bool{
	"Throttling": true, "ThrottlingException": true, "RequestLimitExceeded": true,
	"TooManyRequestsException": true, "RequestThrottled": true, "SlowDown": true,
}

func isThrottle(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && throttleCodes[api.ErrorCode()]
}

// lbPace returns (reading once per run) the settings of a target group
// (ARN) or classic ELB.
func (f *Factory) lbPace(ctx context.Context, c *Clients, k lbKey) (lbSettings, error) {
	p := &f.pace
	p.mu.Lock()
	p.init()
	sr, ok := p.settings[k]
	if !ok {
		sr = &settingsRead{done: make(chan struct{})}
		p.settings[k] = sr
	}
	p.mu.Unlock()
	if ok {
		select {
		case <-sr.done:
			return sr.s, sr.err
		case <-ctx.Done():
			return lbSettings{}, ctx.Err()
		}
	}
	sr.s, sr.err = readSettings(ctx, c, k)
	if sr.err != nil {
		p.mu.Lock()
		delete(p.settings, k) // the next wait tries again
		p.mu.Unlock()
	}
	close(sr.done)
	return sr.s, sr.err
}

func readSettings(ctx context.Context, c *Clients, k lbKey) (lbSettings, error) {
	var s lbSettings
	if k.kind == "tg" {
		attrs, err := c.ELBv2.DescribeTargetGroupAttributes(ctx, &elbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(k.id)})
		if err != nil {
			return s, err
		}
		for _, a := range attrs.Attributes {
			if aws.ToString(a.Key) == "deregistration_delay.timeout_seconds" {
				if n, err := strconv.Atoi(aws.ToString(a.Value)); err == nil {
					s.delay = time.Duration(n) * time.Second
				}
			}
		}
		out, err := c.ELBv2.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{k.id}})
		if err != nil {
			return s, err
		}
		for _, tg := range out.TargetGroups {
			s.interval = time.Duration(aws.ToInt32(tg.HealthCheckIntervalSeconds)) * time.Second
			s.healthyAt = int(aws.ToInt32(tg.HealthyThresholdCount))
		}
	} else {
		attrs, err := c.ELB.DescribeLoadBalancerAttributes(ctx, &elb.DescribeLoadBalancerAttributesInput{LoadBalancerName: aws.String(k.id)})
		if err != nil {
			return s, err
		}
		if cd := attrs.LoadBalancerAttributes.ConnectionDraining; cd != nil && cd.Enabled {
			s.delay = time.Duration(aws.ToInt32(cd.Timeout)) * time.Second
		}
		out, err := c.ELB.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerNames: []string{k.id}})
		if err != nil {
			return s, err
		}
		for _, lb := range out.LoadBalancerDescriptions {
			if hc := lb.HealthCheck; hc != nil {
				s.interval = time.Duration(aws.ToInt32(hc.Interval)) * time.Second
				s.healthyAt = int(aws.ToInt32(hc.HealthyThreshold))
			}
		}
	}
	return s, nil
}

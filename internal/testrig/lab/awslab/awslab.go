// Package awslab gives a lab (package lab) the AWS side of a real
// deployment, for ferry's tests and `make demo`: an awsemu endpoint on
// loopback that knows the lab's app hosts as EC2 instances spread over
// availability zones, behind a target group and a classic ELB, in one Auto
// Scaling group, plus the bastion as an instance with a public address.
// Load balancer health checks probe the app on each host for real, so a
// stopped or broken service turns unhealthy. It also writes an aws_ec2
// inventory file that finds the hosts by tag and jumps through the bastion.
//
// Nothing here reaches real AWS: Env points the SDK at the emulator.
package awslab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
	"github.com/ferrydeploy/ferry/internal/testrig/lab"
)

// Options tune Start. The zero value suits tests.
type Options struct {
	Region  string // default eu-west-1
	Account string // default 111111111111 (the emulator's default account)
	// DeregistrationDelay is the target group's deregistration delay and
	// the classic ELB's connection draining timeout, in seconds (default 3).
	DeregistrationDelay int
	// HealthCheck is both load balancers' health check (default: every
	// 1 s, healthy after 2 passes, unhealthy after 2 failures).
	HealthCheck awsemu.HealthCheck
	// TimeScale multiplies those delays and intervals (default 1: the
	// emulator's delays are real, and the API reports them).
	TimeScale float64
	// Port and Path are what the health check asks on each host's loopback
	// (default 8080 and /status: the example app).
	Port int
	Path string
	// SampleEvery, when set, records the target group's and classic ELB's
	// health at that interval until Close (see History).
	SampleEvery time.Duration
	// Dir receives the inventory file (default: the lab's directory).
	Dir string
	// Env gives app hosts (by lab name) another Env tag than "demo", e.g.
	// a developer's environment; the generated inventory finds Env=demo only.
	Env map[string]string
	// Launching is how many of the lab's last hosts are not instances yet:
	// Launch makes each one an instance that Auto Scaling launches.
	Launching int
}

// Names of what Start creates.
const (
	TargetGroup  = "app-tg"
	LoadBalancer = "app-elb"
	Group        = "app-asg"
)

// Static credentials: the emulator checks no signature.
const (
	accessKey = "AKIAFERRYLAB00000000"
	secretKey = "ferry-lab-secret"
)

// AWS is a running emulated AWS account seeded from a lab.
type AWS struct {
	Server         *awsemu.Server
	Endpoint       string // http://127.0.0.1:PORT
	Region         string
	Account        string
	Inventory      string            // the aws_ec2 inventory file
	TargetGroupARN string            // of TargetGroup
	Instances      map[string]string // lab host name → instance ID
	BastionID      string
	// ALB and ELB are the URLs of the load balancers' listeners: the
	// target group's (as its ALB) and the classic ELB's.
	ALB, ELB string

	lab   *lab.Lab
	opts  Options
	hosts map[string]string // instance ID → lab host name
	azs   []string
	// launchable are the instances of Options.Launching hosts, by host name.
	launchable map[string]awsemu.Instance

	histMu  sync.Mutex
	history []Sample
	stop    chan struct{}
	done    chan struct{}

	closeOnce sync.Once
}

// Sample is the health of the load balancers at one moment: instance ID →
// state (target group: healthy, initial, unhealthy, draining, unused;
// classic ELB: InService, OutOfService). Deregistered instances are absent.
type Sample struct {
	Time        time.Time
	TargetGroup map[string]string
	ELB         map[string]string
}

// Healthy counts the instances in service in both load balancers.
func (s Sample) Healthy() int {
	n := 0
	for id, st := range s.TargetGroup {
		if st == "healthy" && s.ELB[id] == "InService" {
			n++
		}
	}
	return n
}

// Start starts the emulator for l and seeds it. Close stops it.
func Start(ctx context.Context, l *lab.Lab, opts Options) (*AWS, error) {
	if len(l.Bastions) != 1 {
		return nil, errors.New("awslab: the lab must have exactly one bastion (an aws_ec2 inventory names one)")
	}
	if opts.Region == "" {
		opts.Region = "eu-west-1"
	}
	if opts.Account == "" {
		opts.Account = "111111111111"
	}
	if opts.TimeScale <= 0 {
		opts.TimeScale = 1
	}
	if opts.DeregistrationDelay <= 0 {
		opts.DeregistrationDelay = 3
	}
	if opts.HealthCheck == (awsemu.HealthCheck{}) {
		opts.HealthCheck = awsemu.HealthCheck{Interval: 1, HealthyThreshold: 2, UnhealthyThreshold: 2}
	}
	if opts.Port == 0 {
		opts.Port = 8080
	}
	if opts.Path == "" {
		opts.Path = "/status"
	}
	if opts.Dir == "" {
		opts.Dir = l.Dir
	}
	a := &AWS{
		Region: opts.Region, Account: opts.Account, lab: l, opts: opts,
		Instances: map[string]string{}, hosts: map[string]string{},
	}
	a.Server = awsemu.New(awsemu.Options{
		DefaultAccount: opts.Account,
		TimeScale:      opts.TimeScale,
		HealthChecks:   true,
		HealthCheck:    a.healthCheck,
		Dial:           a.dial,
	})
	a.seed()
	endpoint, err := a.Server.Start("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a.Endpoint = endpoint
	for _, lb := range []struct {
		url  *string
		name string
	}{{&a.ALB, a.TargetGroupARN}, {&a.ELB, LoadBalancer}} {
		u, err := a.Server.ServeLoadBalancer(a.Account, a.Region, lb.name, "127.0.0.1:0")
		if err != nil {
			a.Server.Close()
			return nil, fmt.Errorf("awslab: %w", err)
		}
		*lb.url = u
	}
	a.Inventory = filepath.Join(opts.Dir, "inventory.aws_ec2.yml")
	if err := os.WriteFile(a.Inventory, []byte(a.inventory()), 0o644); err != nil {
		a.Server.Close()
		return nil, fmt.Errorf("awslab: write inventory: %w", err)
	}
	if opts.SampleEvery > 0 {
		a.stop, a.done = make(chan struct{}), make(chan struct{})
		go a.monitor(opts.SampleEvery)
	}
	if err := ctx.Err(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// StartT starts the emulator for a test and closes it at cleanup.
func StartT(t testing.TB, l *lab.Lab, opts Options) *AWS {
	t.Helper()
	a, err := Start(context.Background(), l, opts)
	if err != nil {
		t.Fatalf("start emulated AWS: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// seed creates the instances, load balancers and the Auto Scaling group.
func (a *AWS) seed() {
	s, acct, region := a.Server, a.Account, a.Region
	a.azs = []string{region + "a", region + "b", region + "c"}
	if len(a.lab.Hosts) < 3 {
		a.azs = a.azs[:max(1, len(a.lab.Hosts))]
	}
	var ids []string
	a.launchable = map[string]awsemu.Instance{}
	for i, h := range a.lab.Hosts {
		env := "demo"
		if e, ok := a.opts.Env[h.Name]; ok {
			env = e
		}
		inst := awsemu.Instance{
			ID:        fmt.Sprintf("i-0%016x", 0xfe000+i+1),
			AZ:        a.azs[i%len(a.azs)],
			PrivateIP: h.Addr,
			Type:      "t3.small",
			KeyName:   "deploy",
			Tags:      map[string]string{"Name": h.Name, "Service": "app", "Env": env},
		}
		a.Instances[h.Name] = inst.ID
		a.hosts[inst.ID] = h.Name
		if i >= len(a.lab.Hosts)-a.opts.Launching {
			a.launchable[h.Name] = inst
			continue
		}
		ids = append(ids, s.AddInstance(acct, region, inst))
	}
	b := a.lab.Bastions[0]
	a.BastionID = s.AddInstance(acct, region, awsemu.Instance{
		ID:        "i-0b0000000000a5700",
		AZ:        a.azs[0],
		PrivateIP: "172.31.0.10",
		PublicIP:  b.Addr,
		Type:      "t3.nano",
		Tags:      map[string]string{"Name": b.Name, "Role": "bastion", "Env": "demo"},
	})

	targets := make([]awsemu.Target, len(ids))
	for i, id := range ids {
		targets[i] = awsemu.Target{ID: id}
	}
	albARN := fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/app/app-alb/50dc6c495c0c9188", region, acct)
	a.TargetGroupARN = s.AddTargetGroup(acct, region, awsemu.TargetGroup{
		Name: TargetGroup, Port: a.opts.Port, Protocol: "HTTP", VpcID: "vpc-0a1b2c3d",
		DeregistrationDelay: a.opts.DeregistrationDelay, LoadBalancerARNs: []string{albARN}, Targets: targets,
		HealthCheck: a.opts.HealthCheck,
	})
	s.AddClassicELB(acct, region, awsemu.ClassicELB{
		Name: LoadBalancer, ConnectionDraining: true, DrainingTimeout: a.opts.DeregistrationDelay,
		Instances: ids, AZs: a.azs, InstancePort: a.opts.Port, HealthCheck: a.opts.HealthCheck,
	})
	s.AddASG(acct, region, awsemu.ASG{
		Name: Group, Min: 1, Max: len(ids), Desired: len(ids), InstanceIDs: ids,
		TargetGroupARNs: []string{a.TargetGroupARN}, LoadBalancerNames: []string{LoadBalancer},
	})
}

// inventory is the aws_ec2 file: app hosts by tag, named by their Name tag
// (their private address otherwise), reached through the bastion found by
// its tag, as the lab's deploy user with the lab's key.
func (a *AWS) inventory() string {
	return fmt.Sprintf(`# aws_ec2 inventory of the ferry lab's emulated AWS (generated).
# The endpoint comes from AWS_ENDPOINT_URL: see ferry-lab run --aws.
plugin: aws_ec2
regions: [%s]
filters:
  tag:Service: app
  tag:Env: demo
hostnames:
  - tag:Name
  - private-ip-address
groups:
  app: "tags.Service == 'app'"
keyed_groups:
  - key: tags.Env
    prefix: env
  - key: placement.availability_zone
    prefix: az
  - key: autoscaling_group
    prefix: asg
compose:
  ansible_user: "'%s'"
  ansible_ssh_private_key_file: %s
bastion:
  filters:
    tag:Role: bastion
    tag:Env: demo
  user: %s
`, a.Region, a.lab.User, strconv.Quote(exprString(a.lab.KeyFile)), a.lab.User)
}

// exprString is s as an expr string literal.
func exprString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Env is what points ferry (and any AWS SDK) at the emulator.
func (a *AWS) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + a.Endpoint,
		"AWS_ACCESS_KEY_ID=" + accessKey,
		"AWS_SECRET_ACCESS_KEY=" + secretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + a.Region,
		"AWS_DEFAULT_REGION=" + a.Region,
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"FERRY_LAB_AWS_INVENTORY=" + a.Inventory,
		"FERRY_LAB_AWS_ENDPOINT=" + a.Endpoint,
		"FERRY_LAB_ALB_URL=" + a.ALB,
		"FERRY_LAB_ELB_URL=" + a.ELB,
	}
}

// HostOf returns the lab host name of an instance ID ("" when unknown).
func (a *AWS) HostOf(instanceID string) string { return a.hosts[instanceID] }

// healthCheck is the emulator's HealthCheck hook: one check.
func (a *AWS) healthCheck(instanceID string) (bool, string) {
	host, ok := a.hosts[instanceID]
	if !ok {
		return true, ""
	}
	return a.Probe(host)
}

// dial is the emulator's Dial hook: the load balancers reach a target's
// port inside its host.
func (a *AWS) dial(ctx context.Context, instanceID string, port int) (net.Conn, error) {
	host, ok := a.hosts[instanceID]
	if !ok {
		return nil, fmt.Errorf("awslab: instance %s is no lab host", instanceID)
	}
	return a.lab.Dial(ctx, host, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}

// Probe asks the app on a lab host for its health page, from inside the
// host, as a load balancer health check would: 200 is healthy, anything
// else unhealthy with AWS's description of why.
func (a *AWS) Probe(host string) (healthy bool, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return a.lab.Dial(ctx, host, addr)
		},
		DisableKeepAlives: true,
	}}
	u := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(a.opts.Port)), Path: a.opts.Path}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return false, "Request timed out"
		}
		return false, "Health checks failed: " + connError(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Sprintf("Health checks failed with these codes: [%d]", resp.StatusCode)
	}
	return true, ""
}

func connError(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// monitor records a Sample every interval until Close.
func (a *AWS) monitor(every time.Duration) {
	defer close(a.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		tg, err1 := a.Server.TargetHealth(a.Account, a.Region, a.TargetGroupARN)
		lb, err2 := a.Server.InstanceHealth(a.Account, a.Region, LoadBalancer)
		if err1 == nil && err2 == nil {
			a.histMu.Lock()
			a.history = append(a.history, Sample{Time: time.Now(), TargetGroup: tg, ELB: lb})
			a.histMu.Unlock()
		}
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
}

// History returns the samples recorded so far (Options.SampleEvery).
func (a *AWS) History() []Sample {
	a.histMu.Lock()
	defer a.histMu.Unlock()
	return append([]Sample(nil), a.history...)
}

// ResetHistory forgets the samples recorded so far.
func (a *AWS) ResetHistory() {
	a.histMu.Lock()
	a.history = nil
	a.histMu.Unlock()
}

// Close stops the monitor and the endpoint.
func (a *AWS) Close() error {
	var err error
	a.closeOnce.Do(func() {
		if a.stop != nil {
			close(a.stop)
			<-a.done
		}
		err = a.Server.Close()
	})
	return err
}

// Call is one request that changed something, in the lab's terms.
type Call struct {
	Time     time.Time
	Action   string
	Target   string // target group name, load balancer or Auto Scaling group
	Host     string // lab host name ("" when the call names no instance)
	Instance string
	Detail   string // processes of Suspend/ResumeProcesses
}

// Calls returns the requests that changed load balancers or Auto Scaling
// groups, oldest first, one per instance they name.
func (a *AWS) Calls() []Call {
	var out []Call
	for _, r := range a.Server.Requests() {
		target := ""
		var ids []string
		switch r.Action {
		case "RegisterTargets", "DeregisterTargets":
			target = r.Params.Get("TargetGroupArn")
			if target == a.TargetGroupARN {
				target = TargetGroup
			}
			ids = members(r.Params, "Targets.member.%d.Id")
		case "RegisterInstancesWithLoadBalancer", "DeregisterInstancesFromLoadBalancer":
			target = r.Params.Get("LoadBalancerName")
			ids = members(r.Params, "Instances.member.%d.InstanceId")
		case "EnterStandby", "ExitStandby":
			target = r.Params.Get("AutoScalingGroupName")
			ids = members(r.Params, "InstanceIds.member.%d")
		case "SuspendProcesses", "ResumeProcesses":
			procs := members(r.Params, "ScalingProcesses.member.%d")
			if len(procs) == 0 {
				procs = []string{"all processes"}
			}
			out = append(out, Call{Time: r.Time, Action: r.Action, Target: r.Params.Get("AutoScalingGroupName"), Detail: strings.Join(procs, ",")})
			continue
		default:
			continue
		}
		for _, id := range ids {
			out = append(out, Call{Time: r.Time, Action: r.Action, Target: target, Host: a.hosts[id], Instance: id})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

func members(p url.Values, format string) []string {
	var out []string
	for i := 1; ; i++ {
		v := p.Get(fmt.Sprintf(format, i))
		if v == "" {
			return out
		}
		out = append(out, v)
	}
}

// WriteCalls prints Calls, one line each, for the operator, with the load
// balancers' state changes between them.
func (a *AWS) WriteCalls(w io.Writer) {
	type line struct {
		t    time.Time
		text string
	}
	var lines []line
	for _, c := range a.Calls() {
		who := c.Host
		if who == "" {
			who = c.Detail
		} else {
			who += " (" + c.Instance + ")"
		}
		lines = append(lines, line{c.Time, fmt.Sprintf("%-36s %-8s %s", c.Action, c.Target, who)})
	}
	for _, c := range a.Server.Changes() {
		lines = append(lines, line{c.Time, fmt.Sprintf("  %-34s %-8s %s (%s)", c.From+" → "+c.To, c.Name, a.hosts[c.Instance], c.Instance)})
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].t.Before(lines[j].t) })
	for _, l := range lines {
		fmt.Fprintf(w, "%s  %s\n", l.t.Format("15:04:05.000"), l.text)
	}
}

// Log is the emulator's request log and load balancer state changes in
// the lab's terms, for benchmarks (ferry-lab run --aws-report).
type Log struct {
	Calls   []LogCall   `json:"calls"`
	Changes []LogChange `json:"changes"`
}

// LogCall is one API call.
type LogCall struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	Action  string    `json:"action"`
}

// LogChange is one target's state change in a load balancer.
type LogChange struct {
	Time         time.Time `json:"time"`
	LoadBalancer string    `json:"load_balancer"` // "target-group/NAME" or "elb/NAME"
	Host         string    `json:"host"`
	From         string    `json:"from"`
	To           string    `json:"to"`
}

// Log returns the log so far.
func (a *AWS) Log() Log {
	var l Log
	for _, r := range a.Server.Requests() {
		l.Calls = append(l.Calls, LogCall{Time: r.Time, Service: r.Service, Action: r.Action})
	}
	for _, c := range a.Server.Changes() {
		l.Changes = append(l.Changes, LogChange{Time: c.Time, LoadBalancer: c.Kind + "/" + c.Name, Host: a.hosts[c.Instance], From: c.From, To: c.To})
	}
	return l
}

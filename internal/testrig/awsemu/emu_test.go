package awsemu_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
)

const base = "111111111111"

// sdkConfig points the real SDK at the emulator the way a user would
// (BaseEndpoint), with static credentials and no retries so injected
// faults reach the test.
func sdkConfig(t *testing.T, url, region string, creds aws.CredentialsProvider) aws.Config {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	if creds == nil {
		creds = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(region),
		config.WithCredentialsProvider(creds), config.WithBaseEndpoint(url), config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func start(t *testing.T, opts awsemu.Options) (*awsemu.Server, string) {
	t.Helper()
	s := awsemu.New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func errCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

func TestDescribeInstancesPagesAndFilters(t *testing.T) {
	s, url := start(t, awsemu.Options{MaxPageSize: 7})
	s.AddInstances(base, "eu-west-1", 40, func(i int, in *awsemu.Instance) {
		if i%10 == 0 {
			in.State = "stopped"
		}
		if i < 5 {
			in.PublicIP = "203.0.113.10"
		}
	})
	s.AddInstances(base, "us-east-1", 3, nil)
	c := ec2.NewFromConfig(sdkConfig(t, url, "eu-west-1", nil))
	ctx := context.Background()

	count := func(filters ...ec2types.Filter) (int, int) {
		t.Helper()
		n, pages := 0, 0
		p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{Filters: filters, MaxResults: aws.Int32(1000)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, r := range out.Reservations {
				if aws.ToString(r.OwnerId) != base {
					t.Errorf("owner %q", aws.ToString(r.OwnerId))
				}
				n += len(r.Instances)
			}
		}
		return n, pages
	}
	if n, pages := count(); n != 40 || pages != 6 {
		t.Errorf("all: %d instances in %d pages, want 40 in 6", n, pages)
	}
	f := func(name string, vals ...string) ec2types.Filter {
		return ec2types.Filter{Name: aws.String(name), Values: vals}
	}
	if n, _ := count(f("instance-state-name", "running")); n != 36 {
		t.Errorf("running: %d, want 36", n)
	}
	if n, _ := count(f("tag:Role", "api"), f("instance-state-name", "running")); n != 12 {
		t.Errorf("api running: %d, want 12", n) // i%3==0 and i%10!=0 over 0..39: 14 - 2
	}
	if n, _ := count(f("tag:Name", "web-*")); n != 13 {
		t.Errorf("web-* names: %d, want 13", n)
	}
	if n, _ := count(f("tag-key", "Ro?e")); n != 40 {
		t.Errorf("tag-key wildcard: %d", n)
	}
	if n, _ := count(f("tag:Missing", "*")); n != 0 {
		t.Errorf("absent tag matched %d", n)
	}
	if n, _ := count(f("availability-zone", "eu-west-1b", "eu-west-1c")); n != 26 {
		t.Errorf("az: %d", n)
	}
	if n, _ := count(f("ip-address", "203.0.113.*")); n != 5 {
		t.Errorf("public ip: %d", n)
	}

	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{f("tag:Name", "api-eu-west-1-3")}})
	if err != nil {
		t.Fatal(err)
	}
	in := out.Reservations[0].Instances[0]
	if in.State.Name != ec2types.InstanceStateNameRunning || aws.ToString(in.Placement.AvailabilityZone) != "eu-west-1a" ||
		!strings.HasPrefix(aws.ToString(in.PrivateIpAddress), "10.") || in.LaunchTime == nil || len(in.Tags) != 3 ||
		!strings.HasSuffix(aws.ToString(in.PrivateDnsName), ".compute.internal") {
		t.Errorf("instance decoded wrong: %+v", in)
	}
	byID, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{aws.ToString(in.InstanceId)}})
	if err != nil || len(byID.Reservations) != 1 {
		t.Fatalf("by id: %v %v", byID, err)
	}

	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{f("tag_Role", "x")}})
	if errCode(err) != "InvalidParameterValue" {
		t.Errorf("bad filter: %v", err)
	}
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-nope"}})
	if errCode(err) != "InvalidInstanceID.NotFound" {
		t.Errorf("unknown id: %v", err)
	}
}

func TestAssumeRoleSeesOtherAccount(t *testing.T) {
	s, url := start(t, awsemu.Options{})
	s.AddInstances(base, "us-east-1", 2, nil)
	s.AddInstances("222222222222", "us-east-1", 5, nil)
	ctx := context.Background()
	cfg := sdkConfig(t, url, "us-east-1", nil)

	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != base {
		t.Fatalf("base identity: %v %v", id, err)
	}
	out, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::222222222222:role/deploy"), RoleSessionName: aws.String("t")})
	if err != nil {
		t.Fatal(err)
	}
	cr := out.Credentials
	roleCfg := sdkConfig(t, url, "us-east-1", credentials.NewStaticCredentialsProvider(
		aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken)))
	id, err = sts.NewFromConfig(roleCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != "222222222222" {
		t.Fatalf("role identity: %v %v", id, err)
	}
	di, err := ec2.NewFromConfig(roleCfg).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range di.Reservations {
		n += len(r.Instances)
	}
	if n != 5 {
		t.Errorf("role account sees %d instances, want 5", n)
	}
	reqs := s.Requests()
	last := reqs[len(reqs)-1]
	if last.Account != "222222222222" || last.Region != "us-east-1" || last.Service != "ec2" || last.Action != "DescribeInstances" {
		t.Errorf("request log: %+v", last)
	}
	_, err = sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("not-an-arn"), RoleSessionName: aws.String("t")})
	if errCode(err) != "ValidationError" {
		t.Errorf("bad arn: %v", err)
	}
}

func TestFaultInjection(t *testing.T) {
	s, url := start(t, awsemu.Options{})
	s.AddInstances(base, "us-east-1", 1, nil)
	ctx := context.Background()
	c := ec2.NewFromConfig(sdkConfig(t, url, "us-east-1", nil))
	v2 := elbv2.NewFromConfig(sdkConfig(t, url, "us-east-1", nil))

	s.Throttle("DescribeInstances", 1)
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); errCode(err) != "RequestLimitExceeded" {
		t.Errorf("throttled EC2: %v", err)
	}
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		t.Errorf("after the throttled call: %v", err)
	}
	s.Throttle("DescribeTargetGroups", 1)
	if _, err := v2.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{}); errCode(err) != "Throttling" {
		t.Errorf("throttled ELBv2: %v", err)
	}

	s.Deny("DescribeInstances", "us-east-1", base)
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); errCode(err) != "UnauthorizedOperation" {
		t.Errorf("denied EC2: %v", err)
	}
	other := ec2.NewFromConfig(sdkConfig(t, url, "eu-west-1", nil))
	if _, err := other.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		t.Errorf("denial leaked to another region: %v", err)
	}
	s.Deny("DescribeTargetGroups", "", "")
	_, err := v2.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{})
	if errCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "elasticloadbalancing:DescribeTargetGroups") {
		t.Errorf("denied ELBv2: %v", err)
	}
	s.AllowAll()
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		t.Errorf("after AllowAll: %v", err)
	}
}

// poll calls f until it returns true, at most n times.
func poll(t *testing.T, n int, f func() bool) bool {
	t.Helper()
	for i := 0; i < n; i++ {
		if f() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func TestTargetGroupLifecycle(t *testing.T) {
	unhealthy := map[string]bool{}
	s, url := start(t, awsemu.Options{TimeScale: 0.001, InitialFor: 30 * time.Millisecond,
		HealthCheck: func(id string) (bool, string) {
			if unhealthy[id] {
				return false, "Health checks failed with these codes: [502]"
			}
			return true, ""
		}})
	ids := s.AddInstances(base, "us-east-1", 2, nil)
	arn := s.AddTargetGroup(base, "us-east-1", awsemu.TargetGroup{Name: "api", Port: 8080, DeregistrationDelay: 60,
		Targets: []awsemu.Target{{ID: ids[0]}}})
	ctx := context.Background()
	c := elbv2.NewFromConfig(sdkConfig(t, url, "us-east-1", nil))

	state := func(id string) elbv2types.TargetHealth {
		out, err := c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: &arn,
			Targets: []elbv2types.TargetDescription{{Id: aws.String(id), Port: aws.Int32(8080)}}})
		if err != nil {
			t.Fatal(err)
		}
		return *out.TargetHealthDescriptions[0].TargetHealth
	}
	if st := state(ids[0]); st.State != elbv2types.TargetHealthStateEnumHealthy {
		t.Errorf("seeded target: %v", st.State)
	}
	if st := state(ids[1]); st.State != elbv2types.TargetHealthStateEnumUnused || st.Reason != elbv2types.TargetHealthReasonEnumNotRegistered {
		t.Errorf("unregistered target: %+v", st)
	}
	attrs, err := c.DescribeTargetGroupAttributes(ctx, &elbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	// The API shows the delay in force: 60 s × 0.001, rounded up to a second.
	found := false
	for _, a := range attrs.Attributes {
		found = found || aws.ToString(a.Key) == "deregistration_delay.timeout_seconds" && aws.ToString(a.Value) == "1"
	}
	if !found {
		t.Errorf("attributes: %+v", attrs.Attributes)
	}

	// Deregistration drains for 60 s × 0.001, then the target is gone.
	if _, err := c.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: &arn,
		Targets: []elbv2types.TargetDescription{{Id: aws.String(ids[0])}}}); err != nil {
		t.Fatal(err)
	}
	if st := state(ids[0]); st.State != elbv2types.TargetHealthStateEnumDraining || st.Reason != elbv2types.TargetHealthReasonEnumDeregistrationInProgress {
		t.Errorf("after deregister: %+v", st)
	}
	if !poll(t, 200, func() bool { return state(ids[0]).State == elbv2types.TargetHealthStateEnumUnused }) {
		t.Errorf("draining never ended")
	}

	// Registration: initial, then what the health check says.
	unhealthy[ids[1]] = true
	if _, err := c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: &arn,
		Targets: []elbv2types.TargetDescription{{Id: aws.String(ids[1])}}}); err != nil {
		t.Fatal(err)
	}
	if st := state(ids[1]); st.State != elbv2types.TargetHealthStateEnumInitial {
		t.Errorf("just registered: %+v", st)
	}
	var last elbv2types.TargetHealth
	if !poll(t, 200, func() bool { last = state(ids[1]); return last.State == elbv2types.TargetHealthStateEnumUnhealthy }) {
		t.Fatalf("never unhealthy: %+v", last)
	}
	if !strings.Contains(aws.ToString(last.Description), "502") || last.Reason != elbv2types.TargetHealthReasonEnumFailedHealthChecks {
		t.Errorf("unhealthy reason: %+v", last)
	}
	_, err = c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String("arn:nope"),
		Targets: []elbv2types.TargetDescription{{Id: aws.String(ids[1])}}})
	if errCode(err) != "TargetGroupNotFound" {
		t.Errorf("unknown tg: %v", err)
	}
	_, err = c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: &arn,
		Targets: []elbv2types.TargetDescription{{Id: aws.String("i-0000000000000dead")}}})
	if errCode(err) != "InvalidTarget" {
		t.Errorf("unknown instance: %v", err)
	}
	tgs, err := c.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Names: []string{"api"}})
	if err != nil || len(tgs.TargetGroups) != 1 || aws.ToInt32(tgs.TargetGroups[0].Port) != 8080 {
		t.Errorf("describe tg: %+v %v", tgs, err)
	}
}

func TestClassicELBDraining(t *testing.T) {
	s, url := start(t, awsemu.Options{TimeScale: 0.001})
	ids := s.AddInstances(base, "us-east-1", 1, nil)
	s.AddClassicELB(base, "us-east-1", awsemu.ClassicELB{Name: "legacy", ConnectionDraining: true, DrainingTimeout: 50, Instances: ids})
	ctx := context.Background()
	c := elb.NewFromConfig(sdkConfig(t, url, "us-east-1", nil))
	inst := []elbtypes.Instance{{InstanceId: aws.String(ids[0])}}

	lbs, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{})
	if err != nil || len(lbs.LoadBalancerDescriptions) != 1 || len(lbs.LoadBalancerDescriptions[0].Instances) != 1 {
		t.Fatalf("describe: %+v %v", lbs, err)
	}
	if _, err := c.DeregisterInstancesFromLoadBalancer(ctx, &elb.DeregisterInstancesFromLoadBalancerInput{LoadBalancerName: aws.String("legacy"), Instances: inst}); err != nil {
		t.Fatal(err)
	}
	h, err := c.DescribeInstanceHealth(ctx, &elb.DescribeInstanceHealthInput{LoadBalancerName: aws.String("legacy"), Instances: inst})
	// AWS: "InService: Instance deregistration currently in progress" until
	// draining ends (botocore's instance_deregistered waiter relies on it).
	if err != nil || len(h.InstanceStates) != 1 || aws.ToString(h.InstanceStates[0].State) != "InService" ||
		aws.ToString(h.InstanceStates[0].Description) != "Instance deregistration currently in progress." {
		t.Fatalf("while draining: %+v %v", h, err)
	}
	if !poll(t, 200, func() bool {
		_, err := c.DescribeInstanceHealth(ctx, &elb.DescribeInstanceHealthInput{LoadBalancerName: aws.String("legacy"), Instances: inst})
		return errCode(err) == "InvalidInstance"
	}) {
		t.Error("draining never ended")
	}
	if _, err := c.RegisterInstancesWithLoadBalancer(ctx, &elb.RegisterInstancesWithLoadBalancerInput{LoadBalancerName: aws.String("legacy"), Instances: inst}); err != nil {
		t.Fatal(err)
	}
	h, err = c.DescribeInstanceHealth(ctx, &elb.DescribeInstanceHealthInput{LoadBalancerName: aws.String("legacy")})
	if err != nil || aws.ToString(h.InstanceStates[0].State) != "InService" {
		t.Errorf("after register: %+v %v", h, err)
	}
	if _, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerNames: []string{"nope"}}); errCode(err) != "LoadBalancerNotFound" {
		t.Errorf("unknown lb: %v", err)
	}
}

func TestAutoScaling(t *testing.T) {
	s, url := start(t, awsemu.Options{})
	ids := s.AddInstances(base, "us-east-1", 3, nil)
	s.AddASG(base, "us-east-1", awsemu.ASG{Name: "api-asg", Min: 1, Max: 4, InstanceIDs: ids})
	ctx := context.Background()
	c := autoscaling.NewFromConfig(sdkConfig(t, url, "us-east-1", nil))

	out, err := c.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: ids[1:2]})
	if err != nil || len(out.AutoScalingInstances) != 1 || aws.ToString(out.AutoScalingInstances[0].AutoScalingGroupName) != "api-asg" {
		t.Fatalf("describe instances: %+v %v", out, err)
	}
	if _, err := c.EnterStandby(ctx, &autoscaling.EnterStandbyInput{AutoScalingGroupName: aws.String("api-asg"),
		InstanceIds: ids[1:2], ShouldDecrementDesiredCapacity: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	desired, lc, _, _ := s.ASGState(base, "us-east-1", "api-asg")
	if desired != 2 || lc[ids[1]] != "Standby" {
		t.Errorf("after standby: desired %d, %v", desired, lc)
	}
	_, err = c.EnterStandby(ctx, &autoscaling.EnterStandbyInput{AutoScalingGroupName: aws.String("api-asg"),
		InstanceIds: ids[1:2], ShouldDecrementDesiredCapacity: aws.Bool(true)})
	if errCode(err) != "ValidationError" {
		t.Errorf("standby twice: %v", err)
	}
	if _, err := c.ExitStandby(ctx, &autoscaling.ExitStandbyInput{AutoScalingGroupName: aws.String("api-asg"), InstanceIds: ids[1:2]}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SuspendProcesses(ctx, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String("api-asg"),
		ScalingProcesses: []string{"Launch", "AZRebalance"}}); err != nil {
		t.Fatal(err)
	}
	g, err := c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"api-asg"}})
	if err != nil || len(g.AutoScalingGroups) != 1 || len(g.AutoScalingGroups[0].SuspendedProcesses) != 2 ||
		aws.ToInt32(g.AutoScalingGroups[0].DesiredCapacity) != 3 || len(g.AutoScalingGroups[0].Instances) != 3 {
		t.Errorf("describe groups: %+v %v", g, err)
	}
	if _, err := c.ResumeProcesses(ctx, &autoscaling.ResumeProcessesInput{AutoScalingGroupName: aws.String("api-asg")}); err != nil {
		t.Fatal(err)
	}
	if _, _, susp, _ := s.ASGState(base, "us-east-1", "api-asg"); len(susp) != 0 {
		t.Errorf("resume all left %v", susp)
	}
	_, err = c.SuspendProcesses(ctx, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String("api-asg"), ScalingProcesses: []string{"Lunch"}})
	if errCode(err) != "ValidationError" {
		t.Errorf("bad process: %v", err)
	}
	_, err = c.SuspendProcesses(ctx, &autoscaling.SuspendProcessesInput{AutoScalingGroupName: aws.String("nope")})
	if errCode(err) != "ValidationError" {
		t.Errorf("unknown group: %v", err)
	}
}

func TestStartServes(t *testing.T) {
	s := awsemu.New(awsemu.Options{})
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := sts.NewFromConfig(sdkConfig(t, url, "us-east-1", nil))
	if _, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
}

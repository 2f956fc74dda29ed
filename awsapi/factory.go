// Package awsapi is ferry's AWS access from the controller: SDK clients per
// region and account (base credentials, or a role assumed through STS),
// with adaptive retries for throttling; draining an instance from its load
// balancers and putting it back; and Auto Scaling standby and process
// suspension. The inventory's EC2 plugin and the elb/asg modules use it.
package awsapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

// Config says how to reach AWS.
type Config struct {
	Profile     string   // shared config profile; "" uses AWS_PROFILE / default
	Region      string   // region for calls that name none (e.g. STS); default from the environment, else us-east-1
	AssumeRoles []string // role ARNs ferry may assume: one per extra account
	// EndpointURL overrides every service endpoint (an emulator). Usually
	// unset: the SDK already honours AWS_ENDPOINT_URL.
	EndpointURL string
	// Credentials replaces the default credential chain (tests).
	Credentials aws.CredentialsProvider
	MaxAttempts int           // per call, throttling included; default 10
	MaxBackoff  time.Duration // longest wait between attempts; default 20s
	// PollInterval is how often waits (draining, health, standby) poll
	// once the state they wait for can have changed; default 1s. Waits on
	// load balancers first sleep until that moment (see Drain, Register).
	PollInterval time.Duration
	// Env is the environment the SDK's variables (AWS_PROFILE, AWS_REGION,
	// keys, AWS_ENDPOINT_URL[_SERVICE], ...) and USER come from; nil is
	// the process's. See envOptions.
	Env LookupEnv
}

// Clients are the SDK clients for one region and one set of credentials.
type Clients struct {
	Region  string
	RoleARN string // "" for the base credentials
	EC2     *ec2.Client
	ELB     *elb.Client
	ELBv2   *elbv2.Client
	ASG     *autoscaling.Client
	STS     *sts.Client
	// CloudWatch: alarms and metrics for verify gates.
	CloudWatch *cloudwatch.Client
}

// Factory builds and caches Clients per (region, role).
type Factory struct {
	cfg  Config
	base aws.Config

	mu          sync.Mutex
	creds       map[string]aws.CredentialsProvider
	clients     map[[2]string]*Clients
	baseAccount string

	pace pacer // shared health reads, load balancer settings
}

// NewFactory loads the base AWS configuration (profile, credentials,
// region, endpoint) once.
func NewFactory(ctx context.Context, cfg Config) (*Factory, error) {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 20 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			// Adaptive mode slows the client down when AWS throttles, on top
			// of retrying, so a 10k-instance inventory survives RequestLimitExceeded.
			return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
				o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
					so.MaxAttempts = cfg.MaxAttempts
					so.MaxBackoff = cfg.MaxBackoff
				})
			})
		}),
	}
	env := envOf(cfg)
	opts = append(opts, envOptions(cfg, env)...)
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	if cfg.EndpointURL != "" {
		opts = append(opts, config.WithBaseEndpoint(cfg.EndpointURL))
	}
	base, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		if p := cmp.Or(cfg.Profile, env.first("AWS_PROFILE", "AWS_DEFAULT_PROFILE")); p != "" {
			return nil, fmt.Errorf("load AWS config for profile %q: %w (check ~/.aws/config or AWS_PROFILE)", p, err)
		}
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	if base.Region == "" {
		base.Region = "us-east-1"
	}
	base.ConfigSources = append([]any{envEndpoints{env}}, base.ConfigSources...)
	for _, arn := range cfg.AssumeRoles {
		if _, err := AccountOfRole(arn); err != nil {
			return nil, err
		}
	}
	return &Factory{cfg: cfg, base: base, creds: map[string]aws.CredentialsProvider{}, clients: map[[2]string]*Clients{}}, nil
}

// AddRoles makes more role ARNs usable by For (e.g. the aws_role_arn
// host variable of an instance found through an assumed role).
func (f *Factory) AddRoles(arns ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, arn := range arns {
		if _, err := AccountOfRole(arn); err != nil {
			return err
		}
		if !slices.Contains(f.cfg.AssumeRoles, arn) {
			f.cfg.AssumeRoles = append(f.cfg.AssumeRoles, arn)
		}
	}
	return nil
}

// DefaultRegion is the region of the base configuration.
func (f *Factory) DefaultRegion() string { return f.base.Region }

// Roles are the role ARNs of the configuration.
func (f *Factory) Roles() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cfg.AssumeRoles...)
}

// ForRole returns the clients for region with the base credentials
// (roleARN "") or with the role's assumed credentials.
func (f *Factory) ForRole(region, roleARN string) *Clients {
	if region == "" {
		region = f.base.Region
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := [2]string{region, roleARN}
	if c := f.clients[k]; c != nil {
		return c
	}
	cfg := f.base.Copy()
	cfg.Region = region
	if roleARN != "" {
		p := f.creds[roleARN]
		if p == nil {
			stsClient := sts.NewFromConfig(f.base)
			p = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, roleARN, func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = sessionName(envOf(f.cfg).get("USER"))
			}))
			f.creds[roleARN] = p
		}
		cfg.Credentials = p
	}
	c := &Clients{
		Region: region, RoleARN: roleARN,
		EC2: ec2.NewFromConfig(cfg), ELB: elb.NewFromConfig(cfg), ELBv2: elbv2.NewFromConfig(cfg),
		ASG: autoscaling.NewFromConfig(cfg), STS: sts.NewFromConfig(cfg),
		CloudWatch: newCloudWatch(cfg),
	}
	f.clients[k] = c
	return c
}

// For returns the clients for region and account: "" or the base
// account's ID use the base credentials, any other account the role of
// AssumeRoles in that account.
func (f *Factory) For(ctx context.Context, region, account string) (*Clients, error) {
	role, err := f.RoleFor(ctx, account)
	if err != nil {
		return nil, err
	}
	return f.ForRole(region, role), nil
}

// RoleFor maps an account ID to the role ARN used for it ("" = base).
func (f *Factory) RoleFor(ctx context.Context, account string) (string, error) {
	if account == "" {
		return "", nil
	}
	for _, arn := range f.Roles() {
		if a, _ := AccountOfRole(arn); a == account {
			return arn, nil
		}
	}
	base, err := f.BaseAccount(ctx)
	if err != nil {
		return "", err
	}
	if base == account {
		return "", nil
	}
	return "", fmt.Errorf("no credentials for AWS account %s: add a role of that account to assume_roles (base credentials are account %s)", account, base)
}

// BaseAccount returns the account of the base credentials (STS
// GetCallerIdentity, asked once).
func (f *Factory) BaseAccount(ctx context.Context) (string, error) {
	f.mu.Lock()
	acct := f.baseAccount
	f.mu.Unlock()
	if acct != "" {
		return acct, nil
	}
	out, err := f.ForRole("", "").STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", Explain(err, f.base.Region, "", "")
	}
	acct = aws.ToString(out.Account)
	f.mu.Lock()
	f.baseAccount = acct
	f.mu.Unlock()
	return acct, nil
}

// AccountOfRole returns the account ID in arn:aws:iam::ACCOUNT:role/NAME.
func AccountOfRole(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || len(parts[4]) != 12 || !strings.HasPrefix(parts[5], "role/") {
		return "", fmt.Errorf("%q is not a role ARN (want arn:aws:iam::123456789012:role/NAME)", arn)
	}
	return parts[4], nil
}

func sessionName(u string) string {
	if u == "" {
		u = "controller"
	}
	s := "ferry-" + u
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// DeniedError is an AWS call refused by IAM, said in one line.
type DeniedError struct {
	Action  string // IAM action, e.g. ec2:DescribeInstances
	Region  string
	Account string // "" when unknown
	Role    string // role assumed, "" for the base credentials
	Err     error
}

func (e *DeniedError) Error() string {
	who := "the base credentials"
	if e.Role != "" {
		who = "role " + e.Role
	}
	acct := e.Account
	if acct == "" {
		acct = "unknown"
	}
	if e.Action == "sts:AssumeRole" {
		return fmt.Sprintf("access denied: sts:AssumeRole of %s (account %s, region %s): the base credentials may not assume it; check the role's trust policy and the caller's sts:AssumeRole permission", who, acct, e.Region)
	}
	return fmt.Sprintf("access denied: %s in region %s, account %s: allow %s for %s in IAM", e.Action, e.Region, acct, e.Action, who)
}

func (e *DeniedError) Unwrap() error { return e.Err }

var deniedCodes = map[string]bool{
	"UnauthorizedOperation": true, "AccessDenied": true, "AccessDeniedException": true,
	"UnauthorizedAccess": true, "AuthFailure": true, "InvalidClientTokenId": true,
}

// Explain turns an access-denied error into a *DeniedError naming the IAM
// action that failed (the innermost AWS operation: sts:AssumeRole when a
// role could not be assumed); other errors are returned unchanged.
func Explain(err error, region, account, role string) error {
	var api smithy.APIError
	if err == nil || !errors.As(err, &api) || !deniedCodes[api.ErrorCode()] {
		return err
	}
	var op *smithy.OperationError
	for e := err; e != nil; e = errors.Unwrap(e) {
		if o, ok := e.(*smithy.OperationError); ok {
			op = o
		}
	}
	action := "unknown action"
	if op != nil {
		action = iamService(op.ServiceID) + ":" + op.OperationName
		if op.OperationName == "AssumeRole" && role != "" {
			account, _ = AccountOfRole(role)
		}
	}
	return &DeniedError{Action: action, Region: region, Account: account, Role: role, Err: err}
}

func iamService(serviceID string) string {
	switch serviceID {
	case "Elastic Load Balancing", "Elastic Load Balancing v2":
		return "elasticloadbalancing"
	case "Auto Scaling":
		return "autoscaling"
	}
	return strings.ToLower(strings.ReplaceAll(serviceID, " ", ""))
}

// wait polls check at once, then every interval (jittered) until it
// reports done, ctx ends or deadline passes (then it returns errTimeout).
// Throttling doubles the interval (up to 30 s) instead of failing.
func wait(ctx context.Context, interval time.Duration, deadline time.Time, check func() (done bool, err error)) error {
	backoff := interval
	for {
		done, err := check()
		switch {
		case err == nil && done:
			return nil
		case err == nil:
			backoff = interval
		case isThrottle(err):
			backoff = min(2*backoff, 30*time.Second)
		default:
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return errTimeout
		}
		t := time.NewTimer(min(jitter(backoff), left))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

var errTimeout = errors.New("timed out")

// CheckCredentials gets the base credentials once, so that a command
// without any says so before its first call instead of with the SDK's
// error from deep inside it.
func (f *Factory) CheckCredentials(ctx context.Context) error {
	if f.base.Credentials == nil {
		return errors.New("no AWS credentials")
	}
	if _, err := f.base.Credentials.Retrieve(ctx); err != nil {
		return fmt.Errorf("no AWS credentials (%v)", err)
	}
	return nil
}

// Package awsemu is a small, stateful, local stand-in for the AWS APIs ferry
// uses (EC2, STS, Classic ELB, ELBv2, Auto Scaling). It speaks the real wire
// protocols (query requests in, XML out, real error shapes), so ferry's code
// is tested through the unmodified aws-sdk-go-v2 clients pointed at it with
// AWS_ENDPOINT_URL / BaseEndpoint. It is for tests and demos only: it checks
// no signatures and knows nothing of IAM beyond injected denials.
//
// The account of a request is found from the SigV4 access key id (keys handed
// out by AssumeRole belong to the role's account; any other key belongs to
// Options.DefaultAccount) and the region from the credential scope.
package awsemu

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Options tune the emulator.
type Options struct {
	// DefaultAccount owns requests signed with keys the emulator did not
	// issue. Default "111111111111".
	DefaultAccount string
	// TimeScale multiplies AWS-side waits (target group deregistration
	// delay, classic ELB connection draining, health check intervals), so
	// tests can use realistic settings (300 s) and wait milliseconds. The
	// API reports the scaled settings (whole seconds, rounded up), so a
	// client that paces itself by them sees the truth. Default 1.
	TimeScale float64
	// InitialFor is how long a newly registered target stays "initial"
	// (classic ELB: OutOfService, registration in progress) before its
	// health check decides. Real time, not scaled.
	InitialFor time.Duration
	// HealthCheck decides whether a registered instance is healthy once
	// InitialFor has passed. Nil means always healthy.
	HealthCheck func(instanceID string) (healthy bool, reason string)
	// HealthChecks makes load balancers check their targets actively, at
	// each one's HealthCheck interval and thresholds (through the
	// HealthCheck hook), so target states change over time on their own
	// and are logged (Changes); ServeLoadBalancer needs it. Without it a
	// target is "initial" for InitialFor, then asks the hook when described.
	HealthChecks bool
	// Dial connects the load balancers' proxies to a target's port
	// (ServeLoadBalancer).
	Dial func(ctx context.Context, instanceID string, port int) (net.Conn, error)
	// MaxPageSize caps every page size (EC2 MaxResults, ELB PageSize,
	// ASG MaxRecords), to exercise pagination. Default 1000.
	MaxPageSize int
}

// Request is one API call as the emulator saw it.
type Request struct {
	Time    time.Time
	Service string // ec2, sts, elb, elbv2, autoscaling, monitoring (CloudWatch)
	Action  string
	Region  string
	Account string
	Params  url.Values
}

// Server is the emulator. Its zero value is not usable: call New.
type Server struct {
	opts Options

	mu       sync.Mutex
	regions  map[scope]*regionState
	keys     map[string]string // issued access key id → account
	log      []Request
	changes  []Change
	throttle map[string]int // action → remaining throttled calls
	denials  []denial
	seq      int

	httpSrv *http.Server
	ln      net.Listener

	stopChecks chan struct{}
	checksDone chan struct{}
	proxies    []*http.Server
}

type scope struct{ account, region string }

type denial struct{ action, region, account string }

type regionState struct {
	instances []*Instance
	byID      map[string]*Instance
	tgs       []*TargetGroup
	elbs      []*ClassicELB
	asgs      []*ASG
	cw        cloudWatch
}

// New returns an emulator with no resources.
func New(opts Options) *Server {
	if opts.DefaultAccount == "" {
		opts.DefaultAccount = "111111111111"
	}
	if opts.TimeScale <= 0 {
		opts.TimeScale = 1
	}
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = 1000
	}
	return &Server{
		opts:     opts,
		regions:  map[scope]*regionState{},
		keys:     map[string]string{},
		throttle: map[string]int{},
	}
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background.
// It returns the endpoint URL to give the SDK as BaseEndpoint.
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("awsemu listen: %w", err)
	}
	s.ln = ln
	s.httpSrv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.httpSrv.Serve(ln) }()
	if s.opts.HealthChecks {
		s.stopChecks, s.checksDone = make(chan struct{}), make(chan struct{})
		go s.checkLoop()
	}
	return "http://" + ln.Addr().String(), nil
}

// Close stops a server started with Start, its health checks and its
// load balancers' proxies.
func (s *Server) Close() error {
	if s.httpSrv == nil {
		return nil
	}
	if s.stopChecks != nil {
		close(s.stopChecks)
		<-s.checksDone
		s.stopChecks = nil
	}
	s.mu.Lock()
	proxies := s.proxies
	s.proxies = nil
	s.mu.Unlock()
	for _, p := range proxies {
		_ = p.Close()
	}
	return s.httpSrv.Close()
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	s.log = nil
	s.changes = nil
	s.mu.Unlock()
}

// Throttle makes the next n calls of action fail with the service's
// throttling error (EC2 RequestLimitExceeded, others Throttling).
func (s *Server) Throttle(action string, n int) {
	s.mu.Lock()
	s.throttle[action] += n
	s.mu.Unlock()
}

// Deny makes action fail with access denied (EC2 UnauthorizedOperation,
// others AccessDenied). Empty region or account match any.
func (s *Server) Deny(action, region, account string) {
	s.mu.Lock()
	s.denials = append(s.denials, denial{action, region, account})
	s.mu.Unlock()
}

// AllowAll removes every injected denial and throttle.
func (s *Server) AllowAll() {
	s.mu.Lock()
	s.denials = nil
	s.throttle = map[string]int{}
	s.mu.Unlock()
}

// region returns (creating) the state of account/region. Caller holds s.mu.
func (s *Server) region(account, region string) *regionState {
	k := scope{account, region}
	r := s.regions[k]
	if r == nil {
		r = &regionState{byID: map[string]*Instance{}}
		s.regions[k] = r
	}
	return r
}

// call is one decoded request.
type call struct {
	service, action, region, account, accessKey string
	params                                      url.Values
	reqID                                       string
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	c := call{params: r.Form, action: r.Form.Get("Action")}
	ak, region, svc, ok := parseAuth(r.Header.Get("Authorization"))
	switch svc {
	case "elasticloadbalancing":
		if r.Form.Get("Version") == "2012-06-01" {
			svc = "elb"
		} else {
			svc = "elbv2"
		}
	}
	c.service, c.region, c.accessKey = svc, region, ak

	s.mu.Lock()
	s.seq++
	c.reqID = fmt.Sprintf("00000000-0000-4000-8000-%012d", s.seq)
	c.account = s.keys[ak]
	if c.account == "" {
		c.account = s.opts.DefaultAccount
	}
	s.log = append(s.log, Request{Time: time.Now(), Service: c.service, Action: c.action,
		Region: c.region, Account: c.account, Params: cloneValues(r.Form)})
	throttled := false
	if n := s.throttle[c.action]; n > 0 {
		s.throttle[c.action] = n - 1
		throttled = true
	}
	denied := false
	for _, d := range s.denials {
		if d.action == c.action && (d.region == "" || d.region == c.region) && (d.account == "" || d.account == c.account) {
			denied = true
		}
	}
	s.mu.Unlock()

	if !ok {
		writeError(w, c, http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token")
		return
	}
	if throttled {
		if c.service == "ec2" {
			writeError(w, c, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
		} else {
			writeError(w, c, http.StatusBadRequest, "Throttling", "Rate exceeded")
		}
		return
	}
	if denied {
		if c.service == "ec2" {
			writeError(w, c, http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to perform this operation.")
		} else {
			writeError(w, c, http.StatusForbidden, "AccessDenied", fmt.Sprintf(
				"User: arn:aws:iam::%s:user/ferry is not authorized to perform: %s:%s", c.account, iamPrefix(c.service), c.action))
		}
		return
	}

	var (
		body string
		e    *apiError
	)
	switch c.service {
	case "ec2":
		body, e = s.ec2(c)
	case "sts":
		body, e = s.sts(c)
	case "elb":
		body, e = s.elb(c)
	case "elbv2":
		body, e = s.elbv2(c)
	case "autoscaling":
		body, e = s.autoscaling(c)
	case "monitoring":
		body, e = s.cloudwatch(c)
	default:
		e = errf(http.StatusBadRequest, "UnknownService", "service %q is not emulated", svc)
	}
	if e != nil {
		writeError(w, c, e.status, e.code, e.msg)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", c.reqID)
	_, _ = w.Write([]byte(body))
}

func iamPrefix(service string) string {
	switch service {
	case "elb", "elbv2":
		return "elasticloadbalancing"
	}
	return service
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		if k == "Action" || k == "Version" {
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// parseAuth reads access key, region and service from a SigV4 header:
// "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ec2/aws4_request, ...".
func parseAuth(h string) (accessKey, region, service string, ok bool) {
	i := strings.Index(h, "Credential=")
	if i < 0 {
		return "", "", "", false
	}
	cred := h[i+len("Credential="):]
	if j := strings.IndexAny(cred, ", "); j >= 0 {
		cred = cred[:j]
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return "", "", "", false
	}
	return parts[0], parts[2], parts[3], true
}

type apiError struct {
	status    int
	code, msg string
}

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func validation(format string, args ...any) *apiError {
	return errf(http.StatusBadRequest, "ValidationError", format, args...)
}

// writeError writes the error shape the SDK expects: EC2's
// <Response><Errors><Error>, the query protocol's <ErrorResponse>.
func writeError(w http.ResponseWriter, c call, status int, code, msg string) {
	var b xmlw
	if c.service == "ec2" {
		b.raw(`<?xml version="1.0" encoding="UTF-8"?>`)
		b.raw("<Response><Errors><Error>")
		b.elem("Code", code)
		b.elem("Message", msg)
		b.raw("</Error></Errors>")
		b.elem("RequestID", c.reqID)
		b.raw("</Response>")
	} else {
		typ := "Sender"
		if status >= 500 {
			typ = "Receiver"
		}
		b.raw(`<ErrorResponse xmlns="` + namespace(c.service) + `"><Error>`)
		b.elem("Type", typ)
		b.elem("Code", code)
		b.elem("Message", msg)
		b.raw("</Error>")
		b.elem("RequestId", c.reqID)
		b.raw("</ErrorResponse>")
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", c.reqID)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

func namespace(service string) string {
	switch service {
	case "sts":
		return "https://sts.amazonaws.com/doc/2011-06-15/"
	case "elb":
		return "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/"
	case "elbv2":
		return "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
	case "autoscaling":
		return "http://autoscaling.amazonaws.com/doc/2011-01-01/"
	case "monitoring":
		return "http://monitoring.amazonaws.com/doc/2010-08-01/"
	}
	return "http://ec2.amazonaws.com/doc/2016-11-15/"
}

// queryResponse wraps result XML in <XResponse><XResult> with metadata.
func queryResponse(c call, result string) string {
	var b xmlw
	b.raw("<" + c.action + `Response xmlns="` + namespace(c.service) + `">`)
	b.raw("<" + c.action + "Result>")
	b.raw(result)
	b.raw("</" + c.action + "Result>")
	b.raw("<ResponseMetadata>")
	b.elem("RequestId", c.reqID)
	b.raw("</ResponseMetadata>")
	b.raw("</" + c.action + "Response>")
	return b.String()
}

// members returns the values of a query list: prefix.member.N (query
// protocol) or prefix.N (EC2), in index order.
func members(p url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := p[fmt.Sprintf("%s.member.%d", prefix, i)]
		if !ok {
			v, ok = p[fmt.Sprintf("%s.%d", prefix, i)]
		}
		if !ok || len(v) == 0 {
			return out
		}
		out = append(out, v[0])
	}
}

// pageSize reads a page size parameter, capped by MaxPageSize.
func (s *Server) pageSize(p url.Values, name string, def int) int {
	n := def
	if v := p.Get(name); v != "" {
		fmt.Sscan(v, &n)
	}
	if n <= 0 {
		n = def
	}
	if n > s.opts.MaxPageSize {
		n = s.opts.MaxPageSize
	}
	return n
}

// page slices n items starting at the offset held by token; the next token
// is "" at the end.
func page(total int, token string, n int) (from, to int, next string, err *apiError) {
	if token != "" {
		if _, e := fmt.Sscanf(token, "p%d", &from); e != nil || from < 0 || from > total {
			return 0, 0, "", errf(http.StatusBadRequest, "InvalidParameterValue", "invalid pagination token %q", token)
		}
	}
	to = min(from+n, total)
	if to < total {
		next = fmt.Sprintf("p%d", to)
	}
	return from, to, next, nil
}

func (s *Server) scaled(seconds int) time.Duration {
	return time.Duration(float64(seconds) * s.opts.TimeScale * float64(time.Second))
}

// reported is a setting of seconds as the API shows it: scaled, whole
// seconds rounded up (0 stays 0).
func (s *Server) reported(seconds int) int {
	if seconds <= 0 {
		return 0
	}
	return int(math.Ceil(float64(seconds) * s.opts.TimeScale))
}

package awsemu_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
)

// waitFor polls cond (bounded) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// A target group that carries traffic: requests go to healthy targets
// only; a deregistered target finishes its request in flight and gets no
// new one; registered again, it gets traffic once its checks pass; every
// state change is logged.
func TestLoadBalancerCarriesTraffic(t *testing.T) {
	var (
		mu      sync.Mutex
		hits    = map[string]int{}
		release = make(chan struct{})
	)
	backends := map[string]string{}
	s := awsemu.New(awsemu.Options{
		HealthChecks: true, TimeScale: 0.1, // interval 1 s → 100 ms, delay 10 s → 1 s
		Dial: func(ctx context.Context, id string, _ int) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", backends[id])
		},
	})
	ids := s.AddInstances(base, "us-east-1", 2, nil)
	for _, id := range ids {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits[id]++
			mu.Unlock()
			if r.URL.Path == "/slow" {
				<-release
			}
			fmt.Fprint(w, id)
		}))
		t.Cleanup(srv.Close)
		backends[id] = srv.Listener.Addr().String()
	}
	arn := s.AddTargetGroup(base, "us-east-1", awsemu.TargetGroup{Name: "web", Port: 8080, DeregistrationDelay: 10,
		HealthCheck: awsemu.HealthCheck{Interval: 1, HealthyThreshold: 2, UnhealthyThreshold: 2},
		Targets:     []awsemu.Target{{ID: ids[0]}, {ID: ids[1]}}})
	endpoint, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	lb, err := s.ServeLoadBalancer(base, "us-east-1", arn, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(lb + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		code, body := get("/")
		if code != 200 {
			t.Fatalf("GET: %d %s", code, body)
		}
		seen[body] = true
	}
	if len(seen) != 2 {
		t.Fatalf("round robin reached %v", seen)
	}

	// A slow request in flight to ids[0] (the next in turn), then ids[0]
	// is deregistered: the request still completes, new ones avoid it.
	slow := make(chan string, 1)
	go func() {
		_, body := get("/slow")
		slow <- body
	}()
	waitFor(t, "the slow request in flight", func() bool { return s.InFlight()[ids[0]] == 1 })
	c := elbv2.NewFromConfig(sdkConfig(t, endpoint, "us-east-1", nil))
	ctx := context.Background()
	if _, err := c.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: &arn,
		Targets: []elbv2types.TargetDescription{{Id: aws.String(ids[0])}}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if _, body := get("/"); body != ids[1] {
			t.Fatalf("request to %s while it drains", body)
		}
	}
	close(release)
	if body := <-slow; body != ids[0] {
		t.Fatalf("in-flight request answered by %q", body)
	}
	waitFor(t, "the drain to end", func() bool {
		h, _ := s.TargetHealth(base, "us-east-1", arn)
		_, there := h[ids[0]]
		return !there
	})

	// Registered again: initial, no traffic until two checks pass.
	mu.Lock()
	before := hits[ids[0]]
	mu.Unlock()
	if _, err := c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: &arn,
		Targets: []elbv2types.TargetDescription{{Id: aws.String(ids[0])}}}); err != nil {
		t.Fatal(err)
	}
	state := func() string { h, _ := s.TargetHealth(base, "us-east-1", arn); return h[ids[0]] }
	// Bounded by a deadline, not a count: on a quiet machine a thousand
	// requests take less than two health-check intervals.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		st := state()
		if st == "healthy" {
			break
		}
		if st != "initial" || time.Now().After(deadline) {
			t.Fatalf("re-registered target %s after %d requests", st, i)
		}
		time.Sleep(2 * time.Millisecond)
		// A request answered by it counts only if it was initial throughout.
		if _, body := get("/"); body != ids[1] && state() == "initial" {
			t.Fatalf("request to %s before it is healthy", body)
		}
	}
	waitFor(t, "traffic to the re-registered target", func() bool { _, body := get("/"); return body == ids[0] })
	mu.Lock()
	if hits[ids[0]] <= before {
		t.Errorf("no request reached the re-registered target")
	}
	mu.Unlock()

	var got []string
	for _, ch := range s.Changes() {
		if ch.Instance == ids[0] {
			got = append(got, ch.From+"→"+ch.To)
		}
	}
	if want := "healthy→draining draining→unused unused→initial initial→healthy"; strings.Join(got, " ") != want {
		t.Errorf("changes of %s: %v, want %s", ids[0], got, want)
	}
}

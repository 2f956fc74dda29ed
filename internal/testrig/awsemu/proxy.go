package awsemu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"time"
)

// ServeLoadBalancer makes a target group (by ARN) or classic ELB (by name)
// carry traffic: an HTTP reverse proxy listening on addr (e.g.
// "127.0.0.1:0") sends each request to the next healthy target, round
// robin, through Options.Dial. A target that is draining gets no new
// request while those in flight finish (they are cut when its delay
// ends); one registered again gets requests only once its health checks
// pass. With no healthy target the answer is 503, as a load balancer's.
// It needs Options.HealthChecks and a started server; Close stops it.
// It returns the proxy's URL.
func (s *Server) ServeLoadBalancer(account, region, lb, addr string) (string, error) {
	if !s.opts.HealthChecks || s.opts.Dial == nil {
		return "", errors.New("awsemu: load balancers carry traffic only with Options.HealthChecks and Options.Dial")
	}
	s.mu.Lock()
	r := s.region(account, region)
	found := r.tg(lb) != nil || r.elb(lb) != nil
	s.mu.Unlock()
	if !found {
		return "", fmt.Errorf("awsemu: no target group or load balancer %q in %s/%s", lb, account, region)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("awsemu: load balancer listen: %w", err)
	}
	dial := s.opts.Dial
	tr := &http.Transport{
		// The request's host is instance:port (see pick): one pool of
		// connections per target.
		DialContext: func(ctx context.Context, _, hostport string) (net.Conn, error) {
			id, p, err := net.SplitHostPort(hostport)
			if err != nil {
				return nil, err
			}
			port, _ := strconv.Atoi(p)
			return dial(ctx, id, port)
		},
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	h := &lbHandler{s: s, account: account, region: region, lb: lb, proxy: &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(targetKey{}).(string)
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", t
			pr.SetXForwarded()
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.WriteHeader(http.StatusBadGateway) // as an ALB answers when a target fails
		},
	}}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.proxies = append(s.proxies, srv)
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

type targetKey struct{}

type lbHandler struct {
	s                   *Server
	account, region, lb string
	proxy               *httputil.ReverseProxy
}

func (h *lbHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m, release := h.s.pick(h.account, h.region, h.lb)
	if m == nil {
		http.Error(w, "503 Service Temporarily Unavailable", http.StatusServiceUnavailable)
		return
	}
	defer release()
	// The request ends when the client goes or the target leaves the pool
	// (its deregistration delay is over).
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-m.gone:
			cancel()
		case <-ctx.Done():
		}
	}()
	target := net.JoinHostPort(m.id, strconv.Itoa(m.port))
	h.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, targetKey{}, target)))
}

// pick chooses the next healthy member of a target group or classic ELB,
// counting the request in flight until release.
func (s *Server) pick(account, region, lb string) (*member, func()) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.region(account, region)
	var p *pool
	port := 0
	if tg := r.tg(lb); tg != nil {
		p, port = &tg.pool, tg.Port
	} else if e := r.elb(lb); e != nil {
		p, port = &e.pool, e.InstancePort
	} else {
		return nil, nil
	}
	s.prune(p, now)
	n := len(p.members)
	for i := 0; i < n; i++ {
		m := p.members[(p.next+i)%n]
		if !m.drainUntil.IsZero() || m.state != "healthy" || instState(r, m.id) != "running" {
			continue
		}
		p.next = (p.next + i + 1) % n
		m.inflight++
		c := *m
		if c.port == 0 {
			c.port = port
		}
		if c.port == 0 {
			c.port = 80
		}
		return &c, func() {
			s.mu.Lock()
			m.inflight--
			s.mu.Unlock()
		}
	}
	return nil, nil
}

// InFlight reports the requests the load balancers' proxies have in
// flight to each instance now.
func (s *Server) InFlight() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, p := range s.pools() {
		for _, m := range p.members {
			if m.inflight > 0 {
				out[m.id] += m.inflight
			}
		}
	}
	return out
}

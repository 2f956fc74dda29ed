// Package load drives a constant rate of HTTP requests through the lab's
// load balancers while something (a rollout) happens, and says what the
// users would have seen: requests, failures (connection errors and 5xx),
// latency quantiles and a per-second timeline. The requests are made by
// vegeta's attacker, at a constant rate whatever the answers take (open
// model: a slow target does not slow the load down).
package load

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Options tune Start.
type Options struct {
	// URLs are requested in turn (e.g. the ALB's and the classic ELB's).
	URLs []string
	// Rate is the requests per second, spread evenly (default 200).
	Rate int
	// Timeout bounds one request (default 5s): a request that takes longer
	// is a failure.
	Timeout time.Duration
}

// Counts are the running totals, readable while the load runs.
type Counts struct {
	Requests, Failures int64
}

// Generator is a running load.
type Generator struct {
	attacker *vegeta.Attacker
	results  <-chan *vegeta.Result
	started  time.Time

	requests, failures atomic.Int64

	mu      sync.Mutex
	metrics vegeta.Metrics
	seconds map[int64]*Second
	errs    map[string]int
	conn    int
	status  map[int]int

	done chan struct{}
	once sync.Once
	rep  Report
}

// Second is one second of the timeline: requests that started in it and
// those of them that failed.
type Second struct {
	Start              time.Time
	Requests, Failures int
}

// Report is what the load saw from Start to Stop.
type Report struct {
	Rate       int
	Start, End time.Time
	Duration   time.Duration
	Requests   int
	Failures   int            // connection errors, timeouts and 5xx
	ConnErrors int            // no HTTP answer (refused, reset, timed out)
	Status     map[int]int    // answers by status code
	Errors     map[string]int // failures by message
	P50, P90   time.Duration
	P99, Max   time.Duration
	Timeline   []Second
}

// Start begins the load. Stop ends it; ctx ending stops it too.
func Start(ctx context.Context, opts Options) (*Generator, error) {
	if len(opts.URLs) == 0 {
		return nil, fmt.Errorf("load: no URL to request")
	}
	if opts.Rate <= 0 {
		opts.Rate = 200
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	targets := make([]vegeta.Target, len(opts.URLs))
	for i, u := range opts.URLs {
		targets[i] = vegeta.Target{Method: http.MethodGet, URL: u}
	}
	g := &Generator{
		attacker: vegeta.NewAttacker(vegeta.Timeout(opts.Timeout), vegeta.KeepAlive(true), vegeta.MaxBody(4<<10)),
		seconds:  map[int64]*Second{}, errs: map[string]int{}, status: map[int]int{},
		done: make(chan struct{}), started: time.Now(),
	}
	g.rep.Rate = opts.Rate
	// Duration 0: until Stop.
	g.results = g.attacker.Attack(vegeta.NewStaticTargeter(targets...), vegeta.Rate{Freq: opts.Rate, Per: time.Second}, 0, "ferry-lab")
	go g.collect()
	go func() {
		select {
		case <-ctx.Done():
			g.attacker.Stop()
		case <-g.done:
		}
	}()
	return g, nil
}

// failed says whether a user would count the answer as a failure.
func failed(r *vegeta.Result) bool { return r.Error != "" || r.Code == 0 || r.Code >= 500 }

func (g *Generator) collect() {
	defer close(g.done)
	for r := range g.results {
		g.requests.Add(1)
		bad := failed(r)
		if bad {
			g.failures.Add(1)
		}
		g.mu.Lock()
		g.metrics.Add(r)
		sec := r.Timestamp.Truncate(time.Second)
		s := g.seconds[sec.Unix()]
		if s == nil {
			s = &Second{Start: sec}
			g.seconds[sec.Unix()] = s
		}
		s.Requests++
		if r.Code != 0 {
			g.status[int(r.Code)]++
		}
		if bad {
			s.Failures++
			msg := r.Error
			if r.Code == 0 {
				g.conn++
			}
			if msg == "" {
				msg = fmt.Sprintf("HTTP %d", r.Code)
			}
			g.errs[msg]++
		}
		g.mu.Unlock()
	}
}

// Live returns the totals so far.
func (g *Generator) Live() Counts {
	return Counts{Requests: g.requests.Load(), Failures: g.failures.Load()}
}

// Stop ends the load, waits for the requests in flight and reports.
func (g *Generator) Stop() Report {
	g.once.Do(func() {
		g.attacker.Stop()
		<-g.done
		g.mu.Lock()
		defer g.mu.Unlock()
		g.metrics.Close()
		r := &g.rep
		r.Start, r.End = g.started, time.Now()
		r.Duration = r.End.Sub(r.Start)
		r.Requests = int(g.requests.Load())
		r.Failures = int(g.failures.Load())
		r.ConnErrors, r.Status, r.Errors = g.conn, g.status, g.errs
		r.P50 = g.metrics.Latencies.Quantile(0.5)
		r.P90 = g.metrics.Latencies.Quantile(0.9)
		r.P99 = g.metrics.Latencies.Quantile(0.99)
		r.Max = g.metrics.Latencies.Max
		for _, s := range g.seconds {
			r.Timeline = append(r.Timeline, *s)
		}
		sort.Slice(r.Timeline, func(i, j int) bool { return r.Timeline[i].Start.Before(r.Timeline[j].Start) })
	})
	return g.rep
}

// Summary is the report in one line.
func (r Report) Summary() string {
	return fmt.Sprintf("%d requests at %d/s over %s, %d failed (%d connection errors), latency p50 %s p90 %s p99 %s max %s",
		r.Requests, r.Rate, r.Duration.Round(100*time.Millisecond), r.Failures, r.ConnErrors,
		Round(r.P50), Round(r.P90), Round(r.P99), Round(r.Max))
}

// Round keeps a latency readable: milliseconds, or tens of microseconds
// under 10 ms.
func Round(d time.Duration) time.Duration {
	if d > 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

// Write prints the summary, the failures by kind and the timeline.
func (r Report) Write(w io.Writer) {
	fmt.Fprintln(w, r.Summary())
	var msgs []string
	for m := range r.Errors {
		msgs = append(msgs, m)
	}
	sort.Strings(msgs)
	for _, m := range msgs {
		fmt.Fprintf(w, "  %6d × %s\n", r.Errors[m], m)
	}
	for _, s := range r.Timeline {
		bar := strings.Repeat("#", min(s.Failures, 60))
		fmt.Fprintf(w, "  %s %5d requests %5d failed %s\n", s.Start.Format("15:04:05"), s.Requests, s.Failures, bar)
	}
}

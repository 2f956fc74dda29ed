package playbooks

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/parallel"
	"github.com/ferrydeploy/ferry/internal/promtext"
	"github.com/ferrydeploy/ferry/tasks"
)

// GateAWS is what verify gates read from CloudWatch (awsapi.Factory has it).
type GateAWS interface {
	Alarms(ctx context.Context, region string, names []string, prefix string) ([]awsapi.Alarm, error)
	MetricValue(ctx context.Context, region string, q awsapi.MetricQuery) (float64, bool, error)
}

// pollResult is one check's answer in one poll.
type pollResult struct {
	ok       bool
	pollFail bool // the check could not ask (AWS unreachable, throttled...): not a verdict
	skipped  bool // nothing to decide yet (too few requests)
	msg      string
}

// gate runs play.Verify after batch num on its finished hosts; baseline
// are hosts still on the old release (for canary checks). It returns ""
// when the gate passed, else why it failed.
func (r *Runner) gate(ctx context.Context, play *Play, num int, hosts, baseline []*hostRun) string {
	v := play.Verify
	names := make([]string, len(hosts))
	for i, hr := range hosts {
		names[i] = hr.h.Name
	}
	var kinds []string
	for _, c := range v.Checks {
		kinds = append(kinds, c.Name)
	}
	start := r.opts.Now()
	r.emit(events.Event{Kind: events.GateStart, Play: play.Name, Batch: num, Hosts: names, Duration: v.Bake,
		Msg: fmt.Sprintf("bake %s, every %s: %s", v.Bake, v.Interval, strings.Join(kinds, ", "))})
	end := func(st events.Status, msg string) string {
		r.emit(events.Event{Kind: events.GateEnd, Play: play.Name, Batch: num, Status: st, Msg: msg, Duration: r.opts.Now().Sub(start)})
		if st == events.StatusOK {
			return ""
		}
		return msg
	}
	// Canary checks compare what was served since the gate started.
	marks := map[*Check]map[string][]promtext.Sample{}
	for _, c := range v.Checks {
		if c.Kind == CheckCanary {
			marks[c] = r.scrape(ctx, c, append(append([]*hostRun{}, hosts...), baseline...))
		}
	}
	failures := 0
	for poll := 1; ; poll++ {
		for _, c := range v.Checks {
			res := r.runCheck(ctx, c, start, hosts, baseline, marks[c])
			st := events.StatusOK
			switch {
			case res.skipped:
				st = events.StatusSkipped
			case !res.ok:
				st = events.StatusFailed
			}
			r.emit(events.Event{Kind: events.GateCheck, Play: play.Name, Batch: num, Task: c.Name, Module: c.Kind, TaskIndex: poll, Status: st, Msg: res.msg})
			if ctx.Err() != nil {
				return end(events.StatusInterrupted, "interrupted during the bake")
			}
			if res.ok || res.skipped || res.pollFail && v.IgnorePollFailures {
				continue
			}
			failures++
			if failures > v.FailureLimit {
				return end(events.StatusFailed, fmt.Sprintf("%s (%s) failed: %s", c.Name, c.Kind, res.msg))
			}
		}
		if r.opts.Now().Sub(start) >= v.Bake {
			return end(events.StatusOK, fmt.Sprintf("%d polls in %s, %d failed (limit %d)", poll, v.Bake, failures, v.FailureLimit))
		}
		wait := min(v.Interval, v.Bake-r.opts.Now().Sub(start))
		select {
		case <-ctx.Done():
			return end(events.StatusInterrupted, "interrupted during the bake")
		case <-time.After(max(wait, 0)):
		}
	}
}

func (r *Runner) runCheck(ctx context.Context, c *Check, start time.Time, hosts, baseline []*hostRun, mark map[string][]promtext.Sample) pollResult {
	switch c.Kind {
	case CheckHTTP:
		return r.checkHTTP(ctx, c, hosts)
	case CheckAlarms, CheckMetrics:
		if r.opts.CloudWatch == nil {
			return pollResult{pollFail: true, msg: "no AWS configured for CloudWatch"}
		}
		if c.Kind == CheckAlarms {
			return r.checkAlarms(ctx, c)
		}
		return r.checkMetric(ctx, c, start)
	case CheckCanary:
		return r.checkCanary(ctx, c, hosts, baseline, mark)
	}
	return pollResult{msg: "unknown check kind " + c.Kind}
}

// checkHTTP asks every host of the batch, from the host itself, with the
// http module (its SSH direct-tcpip transport).
func (r *Runner) checkHTTP(ctx context.Context, c *Check, hosts []*hostRun) pollResult {
	mod, ok := tasks.Lookup("http")
	if !ok {
		return pollResult{msg: "the http module is missing"}
	}
	status := make([]any, len(c.Status))
	for i, s := range c.Status {
		status[i] = s
	}
	lines := make([]string, len(hosts))
	bad := make([]bool, len(hosts))
	parallel.Each(ctx, len(hosts), r.opts.Forks, func(i int) {
		hr := hosts[i]
		args := map[string]any{"url": c.URL, "status": status, "timeout": "10s"}
		if c.BodyContains != "" {
			args["body_contains"] = c.BodyContains
		}
		t0 := time.Now()
		out, err := mod.Run(ctx, &tasks.Host{Name: hr.h.Name, Conn: hr.conn, Vars: hr.h.Vars, State: map[string]any{}}, args)
		lat := time.Since(t0)
		switch {
		case err != nil:
			bad[i], lines[i] = true, fmt.Sprintf("%s: %v", hr.h.Name, err)
		case out.Failed:
			bad[i], lines[i] = true, fmt.Sprintf("%s: %s", hr.h.Name, out.Msg)
		case c.MaxLatency > 0 && lat > c.MaxLatency:
			bad[i], lines[i] = true, fmt.Sprintf("%s: %v in %s, over max_latency %s", hr.h.Name, out.Result["status"], lat.Round(time.Millisecond), c.MaxLatency)
		default:
			lines[i] = fmt.Sprintf("%s: %v in %s", hr.h.Name, out.Result["status"], lat.Round(time.Millisecond))
		}
	})
	res := pollResult{ok: true}
	var failed []string
	for i := range hosts {
		if bad[i] {
			res.ok = false
			failed = append(failed, lines[i])
		}
	}
	if res.ok {
		res.msg = strings.Join(lines, "; ")
	} else {
		res.msg = strings.Join(failed, "; ")
	}
	return res
}

func (r *Runner) checkAlarms(ctx context.Context, c *Check) pollResult {
	alarms, err := r.opts.CloudWatch.Alarms(ctx, c.Region, c.Alarms, c.Prefix)
	if err != nil {
		return pollResult{pollFail: true, msg: err.Error()}
	}
	found := map[string]bool{}
	var firing, states []string
	for _, a := range alarms {
		found[a.Name] = true
		states = append(states, a.Name+"="+a.State)
		if a.State == "ALARM" {
			msg := a.Name + " is ALARM"
			if a.Reason != "" {
				msg += " (" + a.Reason + ")"
			}
			firing = append(firing, msg)
		}
	}
	for _, n := range c.Alarms {
		if !found[n] {
			return pollResult{pollFail: true, msg: fmt.Sprintf("alarm %s does not exist", n)}
		}
	}
	if len(alarms) == 0 {
		return pollResult{pollFail: true, msg: fmt.Sprintf("no alarm starts with %q", c.Prefix)}
	}
	sort.Strings(states)
	if len(firing) > 0 {
		return pollResult{msg: strings.Join(firing, "; ")}
	}
	return pollResult{ok: true, msg: strings.Join(states, ", ")}
}

func (r *Runner) checkMetric(ctx context.Context, c *Check, start time.Time) pollResult {
	now := r.opts.Now()
	from := start
	if c.Period > 0 && now.Sub(from) < c.Period {
		from = now.Add(-c.Period)
	}
	q := awsapi.MetricQuery{Namespace: c.Namespace, Metric: c.Metric, Stat: c.Stat, Dimensions: c.Dimensions, Period: c.Period, Start: from, End: now.Add(time.Second)}
	v, ok, err := r.opts.CloudWatch.MetricValue(ctx, c.Region, q)
	if err != nil {
		return pollResult{pollFail: true, msg: err.Error()}
	}
	name := fmt.Sprintf("%s %s/%s", c.Stat, c.Namespace, c.Metric)
	if !ok {
		return pollResult{ok: true, msg: name + ": no data"}
	}
	switch {
	case c.Max != nil && v > *c.Max:
		return pollResult{msg: fmt.Sprintf("%s = %g, over max %g", name, v, *c.Max)}
	case c.Min != nil && v < *c.Min:
		return pollResult{msg: fmt.Sprintf("%s = %g, under min %g", name, v, *c.Min)}
	}
	return pollResult{ok: true, msg: fmt.Sprintf("%s = %g", name, v)}
}

// scrape reads c.URL from each host (through its connection); a host that
// does not answer is left out.
func (r *Runner) scrape(ctx context.Context, c *Check, hosts []*hostRun) map[string][]promtext.Sample {
	out := map[string][]promtext.Sample{}
	var mu sync.Mutex
	parallel.Each(ctx, len(hosts), r.opts.Forks, func(i int) {
		hr := hosts[i]
		if hr.conn == nil {
			return
		}
		tr := &http.Transport{DialContext: hr.conn.DialContext, Proxy: nil, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(cctx, http.MethodGet, c.URL, nil)
		if err != nil {
			return
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return
		}
		s, err := promtext.Parse(resp.Body)
		if err != nil {
			return
		}
		mu.Lock()
		out[hr.h.Name] = s
		mu.Unlock()
	})
	return out
}

// side is one group's traffic since the gate started.
type side struct {
	requests, errors float64
	buckets          map[float64]float64
}

func (c *Check) delta(now, mark map[string][]promtext.Sample, hosts []*hostRun) (side, []string) {
	s := side{buckets: map[float64]float64{}}
	var missing []string
	for _, hr := range hosts {
		cur, ok := now[hr.h.Name]
		if !ok {
			missing = append(missing, hr.h.Name)
			continue
		}
		before := mark[hr.h.Name] // nil when the host did not answer at the start (restarted): all counts are new
		total := promtext.Sum(cur, c.RequestsMetric, nil) - promtext.Sum(before, c.RequestsMetric, nil)
		errs := 0.0
		for _, code := range []string{"500", "502", "503", "504"} {
			m := map[string]string{"code": code}
			errs += promtext.Sum(cur, c.RequestsMetric, m) - promtext.Sum(before, c.RequestsMetric, m)
		}
		if total < 0 { // the counters restarted: count from zero
			total = promtext.Sum(cur, c.RequestsMetric, nil)
			errs = 0
			for _, code := range []string{"500", "502", "503", "504"} {
				errs += promtext.Sum(cur, c.RequestsMetric, map[string]string{"code": code})
			}
			before = nil
		}
		s.requests += total
		s.errors += errs
		b0 := promtext.Buckets(before, c.LatencyMetric)
		for le, n := range promtext.Buckets(cur, c.LatencyMetric) {
			s.buckets[le] += n - b0[le]
		}
	}
	return s, missing
}

// checkCanary compares the batch's hosts with the baseline hosts over the
// requests each side served since the gate started.
func (r *Runner) checkCanary(ctx context.Context, c *Check, hosts, baseline []*hostRun, mark map[string][]promtext.Sample) pollResult {
	if len(baseline) == 0 {
		return pollResult{skipped: true, msg: "no host is left on the old release to compare with"}
	}
	now := r.scrape(ctx, c, append(append([]*hostRun{}, hosts...), baseline...))
	canary, miss1 := c.delta(now, mark, hosts)
	base, miss2 := c.delta(now, mark, baseline)
	if missing := append(miss1, miss2...); len(missing) > 0 {
		return pollResult{pollFail: true, msg: fmt.Sprintf("no metrics from %s at %s", strings.Join(missing, ", "), c.URL)}
	}
	if canary.requests < float64(c.MinRequests) || base.requests < float64(c.MinRequests) {
		return pollResult{skipped: true, msg: fmt.Sprintf("too few requests yet: canary %.0f, baseline %.0f (min_requests %d)", canary.requests, base.requests, c.MinRequests)}
	}
	cr, br := canary.errors/canary.requests, base.errors/base.requests
	msg := fmt.Sprintf("error ratio canary %.3f (%.0f/%.0f), baseline %.3f (%.0f/%.0f), tolerance +%.3f", cr, canary.errors, canary.requests, br, base.errors, base.requests, c.ErrorRatio)
	if cr > br+c.ErrorRatio {
		return pollResult{msg: msg}
	}
	if c.LatencyRatio > 0 {
		cq, ok1 := promtext.Quantile(c.Quantile, canary.buckets)
		bq, ok2 := promtext.Quantile(c.Quantile, base.buckets)
		if ok1 && ok2 {
			msg += fmt.Sprintf("; p%g latency canary %s, baseline %s, max ×%g", c.Quantile*100, secs(cq), secs(bq), c.LatencyRatio)
			if bq > 0 && cq > bq*c.LatencyRatio {
				return pollResult{msg: msg}
			}
		}
	}
	return pollResult{ok: true, msg: msg}
}

func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(10 * time.Microsecond).String()
}

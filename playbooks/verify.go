// A play's verify gate: after a batch (or the named ones), checks run
// again and again for a bake time; too many failed polls roll the batch
// back and halt the rollout, as CodeDeploy's alarms and Argo Rollouts'
// analyses do, with nothing to install.

package playbooks

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ferrydeploy/ferry/diag"
)

// Verify is a play's gate.
type Verify struct {
	Batches            []int         // after these batches (1-based); empty: after every batch
	Bake               time.Duration // how long the checks keep running after the batch
	Interval           time.Duration // between two polls
	FailureLimit       int           // failed polls tolerated over the bake; one more fails the gate
	IgnorePollFailures bool          // an alarms or metrics poll that could not ask AWS does not count
	Checks             []*Check
	Pos                diag.Pos
}

// After reports whether the gate runs after batch num.
func (v *Verify) After(num int) bool {
	return v != nil && (len(v.Batches) == 0 || slices.Contains(v.Batches, num))
}

// UsesAWS reports whether a check asks CloudWatch.
func (v *Verify) UsesAWS() bool {
	if v == nil {
		return false
	}
	for _, c := range v.Checks {
		if c.Kind == CheckAlarms || c.Kind == CheckMetrics {
			return true
		}
	}
	return false
}

// Kinds of checks.
const (
	CheckHTTP    = "http"
	CheckAlarms  = "alarms"
	CheckMetrics = "metrics"
	CheckCanary  = "canary"
)

var checkKinds = []string{CheckHTTP, CheckAlarms, CheckMetrics, CheckCanary}

// Check is one check of a gate. Its fields are literal values (no {{ }}).
type Check struct {
	Name string
	Kind string
	Pos  diag.Pos

	// http: a request to every host of the batch, made from the host
	// (through its SSH connection, as the http module does).
	URL          string
	Status       []int
	BodyContains string
	MaxLatency   time.Duration

	// alarms: named CloudWatch alarms, or every alarm whose name starts with Prefix.
	Alarms []string
	Prefix string
	Region string

	// metrics: a CloudWatch metric's statistic over the time since the
	// gate started (at least Period), compared with Max and/or Min.
	Namespace  string
	Metric     string
	Stat       string
	Dimensions map[string]string
	Period     time.Duration
	Max, Min   *float64

	// canary: each host's Prometheus text endpoint (URL, read from the
	// host), the batch's hosts against hosts still on the old release,
	// over the requests served since the gate started.
	ErrorRatio     float64 // the new hosts' 5xx ratio may exceed the baseline's by this much (0.01 = one point)
	Quantile       float64 // latency quantile compared (0.9)
	LatencyRatio   float64 // the new hosts' quantile may be this many times the baseline's (1.5); 0: not compared
	MinRequests    int     // fewer requests than this on either side: the poll decides nothing
	RequestsMetric string  // counter by code (http_requests_total)
	LatencyMetric  string  // histogram (http_request_duration_seconds)
}

func (l *loader) verify(v *yaml.Node) *Verify {
	g := &Verify{Pos: l.pos(v), Bake: 5 * time.Minute, Interval: 10 * time.Second}
	if v.Kind != yaml.MappingNode {
		l.errorf(l.pos(v), "e.g. `verify: {bake: 5m, interval: 10s, checks: [...]}`", "verify: want a mapping, not %s", kindName(v))
		return nil
	}
	keys := []string{"batches", "bake", "interval", "failure_limit", "ignore_poll_failures", "checks"}
	for _, kv := range l.pairs(v, "verify") {
		switch kv.key {
		case "batches":
			g.Batches = l.pauseAfter(kv.v)
		case "bake":
			g.Bake = l.duration(kv.v, "verify.bake")
		case "interval":
			g.Interval = l.duration(kv.v, "verify.interval")
			if g.Interval <= 0 {
				l.errorf(l.pos(kv.v), "e.g. 10s", "verify.interval: must be more than 0")
			}
		case "failure_limit":
			if n, ok := l.int(kv.v, "verify.failure_limit"); ok {
				if n < 0 {
					l.errorf(l.pos(kv.v), "0: the first failed poll fails the gate", "verify.failure_limit: must be 0 or more")
				}
				g.FailureLimit = n
			}
		case "ignore_poll_failures":
			g.IgnorePollFailures = l.bool(kv.v, "verify.ignore_poll_failures")
		case "checks":
			if kv.v.Kind != yaml.SequenceNode {
				l.errorf(l.pos(kv.v), "a list: `- http: {url: ...}`", "verify.checks: want a list, not %s", kindName(kv.v))
				continue
			}
			for _, c := range kv.v.Content {
				if ch := l.check(l.resolve(c)); ch != nil {
					g.Checks = append(g.Checks, ch)
				}
			}
		default:
			l.errorf(l.pos(kv.k), diag.Suggest(kv.key, keys), "verify: unknown key %q (keys: %s)", kv.key, strings.Join(keys, ", "))
		}
	}
	if len(g.Checks) == 0 {
		l.errorf(g.Pos, "add `checks:` (http, alarms, metrics, canary)", "verify: no checks")
	}
	return g
}

func (l *loader) check(n *yaml.Node) *Check {
	if n.Kind != yaml.MappingNode {
		l.errorf(l.pos(n), "e.g. `- http: {url: \"http://127.0.0.1:8080/\"}`", "verify.checks: a check is a mapping, not %s", kindName(n))
		return nil
	}
	c := &Check{Pos: l.pos(n)}
	var body *yaml.Node
	for _, kv := range l.pairs(n, "check") {
		switch {
		case kv.key == "name":
			c.Name = l.str(kv.v, "check name")
		case slices.Contains(checkKinds, kv.key):
			if c.Kind != "" {
				l.errorf(l.pos(kv.k), "one kind per check: split it in two", "check: both %s and %s", c.Kind, kv.key)
				continue
			}
			c.Kind, body = kv.key, l.resolve(kv.v)
		default:
			l.errorf(l.pos(kv.k), diag.Suggest(kv.key, append(checkKinds, "name")), "check: unknown key %q (a check is one of %s, and a name)", kv.key, strings.Join(checkKinds, ", "))
		}
	}
	if c.Kind == "" {
		l.errorf(c.Pos, "add one of: "+strings.Join(checkKinds, ", "), "check: no kind")
		return nil
	}
	if body.Kind != yaml.MappingNode {
		l.errorf(l.pos(body), "", "%s check: want a mapping, not %s", c.Kind, kindName(body))
		return nil
	}
	what := c.Kind + " check"
	num := func(v *yaml.Node, k string) (float64, bool) {
		if v.Kind == yaml.ScalarNode {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v.Value), 64); err == nil && !math.IsNaN(f) {
				return f, true
			}
		}
		l.errorf(l.pos(v), "", "%s: %s: want a number, not %s", what, k, kindName(v))
		return 0, false
	}
	allowed := map[string][]string{
		CheckHTTP:    {"url", "status", "body_contains", "max_latency"},
		CheckAlarms:  {"names", "prefix", "region"},
		CheckMetrics: {"namespace", "metric", "stat", "dimensions", "period", "max", "min", "region"},
		CheckCanary:  {"url", "error_ratio", "quantile", "latency_ratio", "min_requests", "requests_metric", "latency_metric"},
	}[c.Kind]
	c.Stat, c.Quantile, c.ErrorRatio, c.MinRequests = "Sum", 0.9, 0.01, 20
	c.RequestsMetric, c.LatencyMetric = "http_requests_total", "http_request_duration_seconds"
	for _, kv := range l.pairs(body, what) {
		if !slices.Contains(allowed, kv.key) {
			l.errorf(l.pos(kv.k), diag.Suggest(kv.key, allowed), "%s: unknown key %q (keys: %s)", what, kv.key, strings.Join(allowed, ", "))
			continue
		}
		v := l.resolve(kv.v)
		switch kv.key {
		case "url":
			c.URL = l.str(v, what+": url")
		case "status":
			for _, s := range l.strList(v, what+": status") {
				i, err := strconv.Atoi(s)
				if err != nil {
					l.errorf(l.pos(v), "e.g. 200 or [200, 204]", "%s: status %q is not a number", what, s)
				}
				c.Status = append(c.Status, i)
			}
		case "body_contains":
			c.BodyContains = l.str(v, what+": body_contains")
		case "max_latency":
			c.MaxLatency = l.duration(v, what+": max_latency")
		case "names":
			c.Alarms = l.strList(v, what+": names")
		case "prefix":
			c.Prefix = l.str(v, what+": prefix")
		case "region":
			c.Region = l.str(v, what+": region")
		case "namespace":
			c.Namespace = l.str(v, what+": namespace")
		case "metric":
			c.Metric = l.str(v, what+": metric")
		case "stat":
			c.Stat = l.str(v, what+": stat")
		case "dimensions":
			c.Dimensions = map[string]string{}
			if v.Kind != yaml.MappingNode {
				l.errorf(l.pos(v), "e.g. {TargetGroup: targetgroup/app/123}", "%s: dimensions: want a mapping, not %s", what, kindName(v))
				continue
			}
			for _, d := range l.pairs(v, what+": dimensions") {
				c.Dimensions[d.key] = l.str(d.v, what+": dimension "+d.key)
			}
		case "period":
			c.Period = l.duration(v, what+": period")
		case "max":
			if f, ok := num(v, "max"); ok {
				c.Max = &f
			}
		case "min":
			if f, ok := num(v, "min"); ok {
				c.Min = &f
			}
		case "error_ratio":
			c.ErrorRatio, _ = num(v, "error_ratio")
		case "quantile":
			if c.Quantile, _ = num(v, "quantile"); c.Quantile <= 0 || c.Quantile >= 1 {
				l.errorf(l.pos(v), "e.g. 0.9 or 0.99", "%s: quantile must be between 0 and 1", what)
			}
		case "latency_ratio":
			c.LatencyRatio, _ = num(v, "latency_ratio")
		case "min_requests":
			c.MinRequests, _ = l.int(v, what+": min_requests")
		case "requests_metric":
			c.RequestsMetric = l.str(v, what+": requests_metric")
		case "latency_metric":
			c.LatencyMetric = l.str(v, what+": latency_metric")
		}
	}
	switch c.Kind {
	case CheckHTTP:
		if c.URL == "" {
			l.errorf(l.pos(body), "e.g. url: http://127.0.0.1:8080/", "http check: url is required")
		}
		if len(c.Status) == 0 {
			c.Status = []int{200}
		}
	case CheckAlarms:
		if (len(c.Alarms) == 0) == (c.Prefix == "") {
			l.errorf(l.pos(body), "names: [app-5xx] or prefix: app-", "alarms check: give names or a prefix (one of the two)")
		}
	case CheckMetrics:
		if c.Namespace == "" || c.Metric == "" || c.Max == nil && c.Min == nil {
			l.errorf(l.pos(body), "e.g. {namespace: AWS/ApplicationELB, metric: HTTPCode_Target_5XX_Count, stat: Sum, max: 0}", "metrics check: namespace, metric and max or min are required")
		}
	case CheckCanary:
		if c.URL == "" {
			c.URL = "http://127.0.0.1:8080/metrics"
		}
	}
	if c.Name == "" {
		c.Name = c.Kind
	}
	return c
}

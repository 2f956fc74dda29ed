package awsemu

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CloudWatch, query protocol: alarms whose state a test sets (SetAlarmState,
// or Server.SetAlarm), and metric data put by PutMetricData and read back
// by GetMetricData with a statistic over the query's time range.

type cloudWatch struct {
	alarms map[string]*Alarm
	points []metricPoint
}

// Alarm is one metric alarm.
type Alarm struct {
	Name    string
	State   string // OK, ALARM, INSUFFICIENT_DATA
	Reason  string
	Updated time.Time
}

type metricPoint struct {
	namespace, name string
	dims            map[string]string
	value           float64
	at              time.Time
}

var alarmStates = []string{"OK", "ALARM", "INSUFFICIENT_DATA"}

// SetAlarm creates the alarm or sets its state, as a test flips it.
func (s *Server) SetAlarm(account, region, name, state, reason string) error {
	if !slices.Contains(alarmStates, state) {
		return fmt.Errorf("alarm state %q is not one of %v", state, alarmStates)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cw := &s.region(account, region).cw
	if cw.alarms == nil {
		cw.alarms = map[string]*Alarm{}
	}
	cw.alarms[name] = &Alarm{Name: name, State: state, Reason: reason, Updated: time.Now()}
	return nil
}

// PutMetric records one data point, as PutMetricData does.
func (s *Server) PutMetric(account, region, namespace, name string, dims map[string]string, value float64, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cw := &s.region(account, region).cw
	cw.points = append(cw.points, metricPoint{namespace: namespace, name: name, dims: dims, value: value, at: at})
}

func (s *Server) cloudwatch(c call) (string, *apiError) {
	p := c.params
	s.mu.Lock()
	defer s.mu.Unlock()
	cw := &s.region(c.account, c.region).cw
	switch c.action {
	case "DescribeAlarms":
		names := members(p, "AlarmNames")
		prefix, state := p.Get("AlarmNamePrefix"), p.Get("StateValue")
		var keys []string
		for k := range cw.alarms {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b xmlw
		b.open("MetricAlarms")
		for _, k := range keys {
			a := cw.alarms[k]
			if len(names) > 0 && !slices.Contains(names, a.Name) || prefix != "" && !strings.HasPrefix(a.Name, prefix) || state != "" && a.State != state {
				continue
			}
			b.open("member")
			b.elem("AlarmName", a.Name)
			b.elem("AlarmArn", fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", c.region, c.account, a.Name))
			b.elem("StateValue", a.State)
			b.elem("StateReason", a.Reason)
			b.ts("StateUpdatedTimestamp", a.Updated)
			b.close("member")
		}
		b.close("MetricAlarms")
		return queryResponse(c, b.String()), nil
	case "SetAlarmState":
		name, state := p.Get("AlarmName"), p.Get("StateValue")
		a := cw.alarms[name]
		if a == nil {
			return "", errf(http.StatusNotFound, "ResourceNotFound", "alarm %s does not exist", name)
		}
		if !slices.Contains(alarmStates, state) {
			return "", validation("StateValue %q is not one of %v", state, alarmStates)
		}
		a.State, a.Reason, a.Updated = state, p.Get("StateReason"), time.Now()
		return queryResponse(c, ""), nil
	case "PutMetricData":
		ns := p.Get("Namespace")
		if ns == "" {
			return "", validation("Namespace is required")
		}
		for i := 1; ; i++ {
			pre := fmt.Sprintf("MetricData.member.%d.", i)
			name := p.Get(pre + "MetricName")
			if name == "" {
				break
			}
			v, err := strconv.ParseFloat(p.Get(pre+"Value"), 64)
			if err != nil {
				return "", validation("%sValue: %v", pre, err)
			}
			at := time.Now()
			if ts := p.Get(pre + "Timestamp"); ts != "" {
				if t, err := time.Parse(time.RFC3339, ts); err == nil {
					at = t
				}
			}
			cw.points = append(cw.points, metricPoint{namespace: ns, name: name, dims: dims(p, pre+"Dimensions"), value: v, at: at})
		}
		return queryResponse(c, ""), nil
	case "GetMetricData":
		start, err1 := time.Parse(time.RFC3339, p.Get("StartTime"))
		end, err2 := time.Parse(time.RFC3339, p.Get("EndTime"))
		if err1 != nil || err2 != nil {
			return "", validation("StartTime and EndTime are required (ISO 8601)")
		}
		var b xmlw
		b.open("MetricDataResults")
		for i := 1; ; i++ {
			pre := fmt.Sprintf("MetricDataQueries.member.%d.", i)
			id := p.Get(pre + "Id")
			if id == "" {
				break
			}
			ms := pre + "MetricStat."
			ns, name, stat := p.Get(ms+"Metric.Namespace"), p.Get(ms+"Metric.MetricName"), p.Get(ms+"Stat")
			want := dims(p, ms+"Metric.Dimensions")
			var vals []float64
			var last time.Time
			for _, pt := range cw.points {
				if pt.namespace != ns || pt.name != name || pt.at.Before(start) || !pt.at.Before(end) || !sameDims(pt.dims, want) {
					continue
				}
				vals = append(vals, pt.value)
				if pt.at.After(last) {
					last = pt.at
				}
			}
			b.open("member")
			b.elem("Id", id)
			b.elem("Label", name)
			b.open("Timestamps")
			if len(vals) > 0 {
				b.ts("member", last)
			}
			b.close("Timestamps")
			b.open("Values")
			if len(vals) > 0 {
				v, e := statistic(stat, vals)
				if e != nil {
					return "", e
				}
				b.elem("member", strconv.FormatFloat(v, 'g', -1, 64))
			}
			b.close("Values")
			b.elem("StatusCode", "Complete")
			b.close("member")
		}
		b.close("MetricDataResults")
		return queryResponse(c, b.String()), nil
	}
	return "", errf(http.StatusBadRequest, "InvalidAction", "CloudWatch action %q is not emulated", c.action)
}

// dims reads prefix.member.N.Name/Value.
func dims(p map[string][]string, prefix string) map[string]string {
	out := map[string]string{}
	for i := 1; ; i++ {
		n := fmt.Sprintf("%s.member.%d.", prefix, i)
		name := first(p[n+"Name"])
		if name == "" {
			return out
		}
		out[name] = first(p[n+"Value"])
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func sameDims(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func statistic(stat string, vals []float64) (float64, *apiError) {
	switch stat {
	case "Sum":
		s := 0.0
		for _, v := range vals {
			s += v
		}
		return s, nil
	case "Average":
		s := 0.0
		for _, v := range vals {
			s += v
		}
		return s / float64(len(vals)), nil
	case "Maximum":
		m := math.Inf(-1)
		for _, v := range vals {
			m = max(m, v)
		}
		return m, nil
	case "Minimum":
		m := math.Inf(1)
		for _, v := range vals {
			m = min(m, v)
		}
		return m, nil
	case "SampleCount":
		return float64(len(vals)), nil
	}
	return 0, validation("Stat %q is not emulated (Sum, Average, Maximum, Minimum, SampleCount)", stat)
}

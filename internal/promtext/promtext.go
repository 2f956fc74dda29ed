// Package promtext reads the Prometheus text exposition format, as far as
// ferry's canary gate needs it: each sample's name, labels and value. It
// reads what a host answers, so it bounds what it keeps and never fails on
// a line it does not understand: it skips it.
package promtext

import (
	"bufio"
	"io"
	"math"
	"strconv"
	"strings"
)

// Sample is one line: name{labels} value.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// MaxSamples bounds what Parse keeps from one answer.
const MaxSamples = 10000

// Parse reads samples from r (at most MaxSamples; comments and lines it
// cannot read are skipped).
func Parse(r io.Reader) ([]Sample, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64*1024)
	var out []Sample
	for sc.Scan() && len(out) < MaxSamples {
		if s, ok := parseLine(sc.Text()); ok {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}

func parseLine(line string) (Sample, bool) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return Sample{}, false
	}
	var s Sample
	rest := ""
	if i := strings.IndexAny(line, "{ \t"); i < 0 {
		return Sample{}, false
	} else if line[i] == '{' {
		s.Name = line[:i]
		j := strings.LastIndexByte(line, '}')
		if j < i {
			return Sample{}, false
		}
		labels, ok := parseLabels(line[i+1 : j])
		if !ok {
			return Sample{}, false
		}
		s.Labels, rest = labels, line[j+1:]
	} else {
		s.Name, rest = line[:i], line[i:]
	}
	if s.Name == "" {
		return Sample{}, false
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return Sample{}, false
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || math.IsNaN(v) {
		return Sample{}, false
	}
	s.Value = v
	return s, true
}

// parseLabels reads a="x",b="y" (escapes \" \\ \n inside values).
func parseLabels(s string) (map[string]string, bool) {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ,")
		if s == "" {
			return out, true
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return nil, false
		}
		name := strings.TrimSpace(s[:eq])
		var b strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				default:
					b.WriteByte(s[i])
				}
				continue
			}
			b.WriteByte(s[i])
		}
		if i >= len(s) {
			return nil, false
		}
		out[name] = b.String()
		s = s[i+1:]
	}
}

// Sum adds the values of the samples named name whose labels include all
// of match.
func Sum(samples []Sample, name string, match map[string]string) float64 {
	t := 0.0
	for _, s := range samples {
		if s.Name != name {
			continue
		}
		ok := true
		for k, v := range match {
			ok = ok && s.Labels[k] == v
		}
		if ok {
			t += s.Value
		}
	}
	return t
}

// Buckets returns a histogram's cumulative bucket counts by upper bound
// (the le label; +Inf included), from the samples named name+"_bucket".
func Buckets(samples []Sample, name string) map[float64]float64 {
	out := map[float64]float64{}
	for _, s := range samples {
		if s.Name != name+"_bucket" {
			continue
		}
		le, err := strconv.ParseFloat(s.Labels["le"], 64)
		if err != nil {
			continue
		}
		out[le] += s.Value
	}
	return out
}

// Quantile estimates the q-quantile of a histogram from cumulative bucket
// counts (as Prometheus' histogram_quantile: linear inside the bucket).
// ok is false when there are no observations.
func Quantile(q float64, buckets map[float64]float64) (float64, bool) {
	bounds := make([]float64, 0, len(buckets))
	for b := range buckets {
		bounds = append(bounds, b)
	}
	sortFloats(bounds)
	if len(bounds) == 0 {
		return 0, false
	}
	total := buckets[bounds[len(bounds)-1]]
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for _, b := range bounds {
		c := buckets[b]
		if c >= rank {
			if math.IsInf(b, 1) {
				return prevBound, true // beyond the last finite bucket: its bound
			}
			if c == prevCount {
				return b, true
			}
			return prevBound + (b-prevBound)*(rank-prevCount)/(c-prevCount), true
		}
		prevBound, prevCount = b, c
	}
	return prevBound, true
}

func sortFloats(a []float64) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

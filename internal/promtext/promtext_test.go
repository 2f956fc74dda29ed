package promtext

import (
	"math"
	"strings"
	"testing"
)

const sample = `# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200"} 80
http_requests_total{code="500",path="/a\"b"} 20
http_request_duration_seconds_bucket{le="0.01"} 50
http_request_duration_seconds_bucket{le="0.1"} 90
http_request_duration_seconds_bucket{le="+Inf"} 100
http_request_duration_seconds_count 100
garbage line here
up 1
`

func TestParse(t *testing.T) {
	s, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if got := Sum(s, "http_requests_total", nil); got != 100 {
		t.Errorf("total %v", got)
	}
	if got := Sum(s, "http_requests_total", map[string]string{"code": "500"}); got != 20 {
		t.Errorf("5xx %v", got)
	}
	if got := Sum(s, "up", nil); got != 1 {
		t.Errorf("up %v", got)
	}
	b := Buckets(s, "http_request_duration_seconds")
	if q, ok := Quantile(0.5, b); !ok || q != 0.01 {
		t.Errorf("p50 %v %v", q, ok)
	}
	if q, _ := Quantile(0.7, b); math.Abs(q-0.055) > 1e-9 {
		t.Errorf("p70 %v, want 0.055 (linear in the bucket)", q)
	}
	if q, _ := Quantile(0.95, b); q != 0.1 {
		t.Errorf("p95 %v: beyond the last finite bucket gives its bound", q)
	}
	if _, ok := Quantile(0.9, map[float64]float64{}); ok {
		t.Error("quantile of nothing")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add(`a{b="c\\",d="\n"} 1e3`)
	f.Add(`x{ 1`)
	f.Fuzz(func(t *testing.T, in string) {
		s, _ := Parse(strings.NewReader(in))
		if len(s) > MaxSamples {
			t.Fatalf("%d samples", len(s))
		}
		for _, x := range s {
			if x.Name == "" || math.IsNaN(x.Value) {
				t.Fatalf("bad sample %+v", x)
			}
		}
		Quantile(0.9, Buckets(s, "x"))
	})
}

package main

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"
)

// metrics counts what the app serves, for GET /metrics (Prometheus' text
// format): requests by status code and a latency histogram. /metrics
// itself is not counted.
type metrics struct {
	mu       sync.Mutex
	byStatus map[int]uint64
	buckets  []float64 // upper bounds, seconds
	counts   []uint64  // per bucket (not cumulative)
	sum      float64
	total    uint64
	served   uint64 // requests to "/" (for the error rate)
}

func newMetrics() *metrics {
	b := []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
	return &metrics{byStatus: map[int]uint64{}, buckets: b, counts: make([]uint64, len(b))}
}

// fail reports whether this request is one of the share rate that fails:
// every n-th request, so the rate holds over any 1/rate requests.
func (m *metrics) fail(rate float64) bool {
	if rate <= 0 {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.served++
	n := uint64(1/rate + 0.5)
	return n > 0 && m.served%n == 0
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) {
	w.status = s
	w.ResponseWriter.WriteHeader(s)
}

func (m *metrics) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		d := time.Since(start).Seconds()
		m.mu.Lock()
		defer m.mu.Unlock()
		m.byStatus[sw.status]++
		m.total++
		m.sum += d
		for i, b := range m.buckets {
			if d <= b {
				m.counts[i]++
				break
			}
		}
	})
}

func (m *metrics) serve(w http.ResponseWriter, _ *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintln(w, "# HELP http_requests_total Requests served, by status code.")
	fmt.Fprintln(w, "# TYPE http_requests_total counter")
	codes := make([]int, 0, len(m.byStatus))
	for c := range m.byStatus {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		fmt.Fprintf(w, "http_requests_total{code=\"%d\"} %d\n", c, m.byStatus[c])
	}
	fmt.Fprintln(w, "# HELP http_request_duration_seconds Request latency.")
	fmt.Fprintln(w, "# TYPE http_request_duration_seconds histogram")
	var cum uint64
	for i, b := range m.buckets {
		cum += m.counts[i]
		fmt.Fprintf(w, "http_request_duration_seconds_bucket{le=\"%g\"} %d\n", b, cum)
	}
	fmt.Fprintf(w, "http_request_duration_seconds_bucket{le=\"+Inf\"} %d\n", m.total)
	fmt.Fprintf(w, "http_request_duration_seconds_sum %g\n", m.sum)
	fmt.Fprintf(w, "http_request_duration_seconds_count %d\n", m.total)
}

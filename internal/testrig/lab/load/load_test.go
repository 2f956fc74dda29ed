package load

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// The generator counts every answer: 5xx and connection errors are
// failures, the timeline adds up, and Live sees the totals grow.
func TestCountsFailures(t *testing.T) {
	var n, served500 atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%5 == 0 {
			served500.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	// A port nobody listens on: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/"
	ln.Close()

	g, err := Start(context.Background(), Options{URLs: []string{srv.URL + "/", srv.URL + "/", dead}, Rate: 150})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; g.Live().Requests < 150; i++ {
		if i > 500 {
			t.Fatal("no requests counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := g.Stop()
	if r.Requests < 150 {
		t.Fatalf("report: %s", r.Summary())
	}
	sum, fails := 0, 0
	for _, s := range r.Timeline {
		sum += s.Requests
		fails += s.Failures
	}
	if sum != r.Requests || fails != r.Failures {
		t.Errorf("timeline adds up to %d requests, %d failures; report says %d, %d", sum, fails, r.Requests, r.Failures)
	}
	if int64(r.Status[500]) != served500.Load() || r.ConnErrors == 0 || r.Failures != r.ConnErrors+r.Status[500] {
		t.Errorf("failures %d: %d connection errors, %d × 500 (server sent %d); %v", r.Failures, r.ConnErrors, r.Status[500], served500.Load(), r.Errors)
	}
	if r.Status[200]+r.Failures != r.Requests {
		t.Errorf("200s %d + failures %d != requests %d", r.Status[200], r.Failures, r.Requests)
	}
	if r.P99 <= 0 || r.Max < r.P99 {
		t.Errorf("latency p99 %s max %s", r.P99, r.Max)
	}
}

// Command app is the tiny HTTP service that ferry's example playbooks deploy
// (and that the lab's tests run under the systemctl stand-in). GET /status
// reports the build's version, the hostname and the PID as JSON.
//
// Build a release with its version baked in:
//
//	CGO_ENABLED=0 go build -ldflags "-X main.version=v2" -o dist/app ./playbooks/examples/app
//
// A "broken" build (a version containing "broken", or APP_BROKEN=1) answers
// /status with 500, to exercise failed smoke tests and rollbacks. A "flaky"
// build (a version containing "flaky", or APP_ERROR_RATE=0.2) answers
// /status, so it passes its smoke test, but fails that share of the
// other requests with 500: what only a gate watching real traffic catches.
//
// GET /metrics reports, in Prometheus' text format, the requests served
// by status code and a histogram of their latency.
//
// Like a real service it takes a moment to become ready after it starts
// (-ready-delay, env APP_READY_DELAY, default 500ms): until then every
// request gets 503. On SIGTERM it stops accepting connections and
// finishes the requests in flight (for up to -drain-timeout) before it
// exits.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type status struct {
	Version  string `json:"version"`
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	Started  string `json:"started"`
}

func main() {
	listen := flag.String("listen", envOr("APP_LISTEN", "127.0.0.1:8080"), "address to listen on (env APP_LISTEN)")
	readyDelay := flag.Duration("ready-delay", envDuration("APP_READY_DELAY", 500*time.Millisecond), "time from start to ready; 503 until then (env APP_READY_DELAY)")
	drainTimeout := flag.Duration("drain-timeout", 10*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	flag.Parse()
	started := time.Now()
	if v := os.Getenv("APP_VERSION"); v != "" {
		version = v
	}
	broken := os.Getenv("APP_BROKEN") == "1" || strings.Contains(version, "broken")
	errorRate := 0.0
	if strings.Contains(version, "flaky") {
		errorRate = 0.2
	}
	if v, err := strconv.ParseFloat(os.Getenv("APP_ERROR_RATE"), 64); err == nil {
		errorRate = v
	}
	m := newMetrics()
	host, _ := os.Hostname()
	st := status{Version: version, Hostname: host, PID: os.Getpid(), Started: time.Now().UTC().Format(time.RFC3339Nano)}

	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if broken {
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]any{"version": st.Version, "hostname": st.Hostname, "error": "broken build"})
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// ?delay=50ms: a request that takes that long (at most 10 s), so a
		// load test has requests in flight when a host is drained or stopped.
		if d, err := time.ParseDuration(r.URL.Query().Get("delay")); err == nil && d > 0 {
			select {
			case <-time.After(min(d, 10*time.Second)):
			case <-r.Context().Done():
				return
			}
		}
		if m.fail(errorRate) {
			http.Error(w, "flaky build", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "app %s on %s\n", st.Version, st.Hostname)
	})
	mux.HandleFunc("/metrics", m.serve)

	// SIGHUP (systemctl reload) must not kill the service.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			log.Printf("app %s: reload requested (nothing to reload)", version)
		}
	}()

	// Not ready yet (warming up): 503, as a starting service behind a
	// load balancer answers its health checks.
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if time.Since(started) < *readyDelay {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{Addr: *listen, Handler: m.count(handler), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log.Printf("app %s listening on %s (pid %d)", version, *listen, os.Getpid())
	done := make(chan struct{})
	go func() {
		<-ctx.Done()
		defer close(done)
		// Graceful: stop accepting, finish requests in flight, then exit 0.
		shutdown, cancel := context.WithTimeout(context.Background(), *drainTimeout)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Printf("app: %v", err)
		os.Exit(1)
	}
	// ListenAndServe returns as soon as Shutdown starts: wait for the
	// requests in flight before exiting.
	<-done
	log.Printf("app %s stopped", version)
}

func envDuration(key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(key)); err == nil {
		return d
	}
	return def
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

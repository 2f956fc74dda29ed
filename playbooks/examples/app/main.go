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
	flag.Parse()
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
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
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

	srv := &http.Server{Addr: *listen, Handler: m.count(mux), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		// Graceful: finish requests in flight, then exit 0.
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("app %s listening on %s (pid %d)", version, *listen, os.Getpid())
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Printf("app: %v", err)
		os.Exit(1)
	}
	log.Printf("app %s stopped", version)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Command awsemu-serve runs the AWS emulator (package awsemu) as a process
// of its own, seeded with generated EC2 instances, so a benchmark can time a
// client (ferry, ansible-inventory) without the endpoint's CPU in the same
// process. It is a test helper, not part of ferry.
//
//	awsemu-serve [-addr 127.0.0.1:0] [-instances 10000]
//	             [-regions us-east-1,us-west-2,eu-west-1,ap-southeast-2]
//	             [-accounts 111111111111] [-ready FILE]
//
// Instances are spread evenly over accounts × regions (see
// awsemu.Server.AddInstances: tags Name, Role, Env=prod; running). Accounts
// other than the first are reached by assuming any role in them. The
// endpoint URL is printed on stdout and, with -ready, written to FILE once
// the server listens. It serves until SIGINT or SIGTERM.
//
// Besides the AWS APIs it answers two paths of its own, so a benchmark can
// tell the endpoint's share of a client's wall time:
//
//	GET  /__emu/stats  JSON: requests, bytes, busy_sum_s (time spent building
//	                   responses, summed) and busy_union_s (wall time during
//	                   which at least one response was being built)
//	POST /__emu/reset  clears those counters
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "awsemu-serve: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("awsemu-serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address (keep it on loopback)")
	n := fs.Int("instances", 10000, "instances in total, spread over accounts × regions")
	regions := fs.String("regions", "us-east-1,us-west-2,eu-west-1,ap-southeast-2", "comma-separated regions")
	accounts := fs.String("accounts", "111111111111", "comma-separated 12-digit account IDs; the first one owns the static credentials")
	ready := fs.String("ready", "", "write the endpoint URL to this file once listening")
	if err := fs.Parse(args); err != nil {
		return err
	}
	regs, accts := split(*regions), split(*accounts)
	if len(regs) == 0 || len(accts) == 0 || *n < 0 {
		return errors.New("need at least one region and one account, and -instances >= 0")
	}
	for _, a := range accts {
		if len(a) != 12 || strings.Trim(a, "0123456789") != "" {
			return fmt.Errorf("account %q: want 12 digits", a)
		}
	}

	emu := awsemu.New(awsemu.Options{DefaultAccount: accts[0]})
	seed(emu, *n, accts, regs)

	h := &handler{emu: emu}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	url := "http://" + ln.Addr().String()
	fmt.Fprintln(stdout, url)
	if *ready != "" {
		// Written atomically so a waiting script never reads half a URL.
		tmp := *ready + ".tmp"
		if err := os.WriteFile(tmp, []byte(url+"\n"), 0o644); err != nil {
			return fmt.Errorf("ready file: %w", err)
		}
		if err := os.Rename(tmp, *ready); err != nil {
			return fmt.Errorf("ready file: %w", err)
		}
	}

	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	}
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// seed spreads n instances over accounts × regions, the first scopes taking
// the remainder.
func seed(emu *awsemu.Server, n int, accounts, regions []string) {
	scopes := len(accounts) * len(regions)
	i := 0
	for _, a := range accounts {
		for _, r := range regions {
			k := n / scopes
			if i < n%scopes {
				k++
			}
			i++
			emu.AddInstances(a, r, k, nil)
		}
	}
}

// handler times the emulator's work on each request: the response is built
// into a buffer first, so the time measured excludes sending it (which
// depends on how fast the client reads).
type handler struct {
	emu *awsemu.Server

	mu       sync.Mutex
	requests int
	bytes    int64
	spans    []span
}

type span struct{ start, end time.Time }

// logEvery bounds the emulator's own request log, which a long benchmark
// would otherwise grow without end.
const logEvery = 1000

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/__emu/stats":
		h.stats(w)
		return
	case "/__emu/reset":
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		h.mu.Lock()
		h.requests, h.bytes, h.spans = 0, 0, nil
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	start := time.Now()
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	h.emu.ServeHTTP(rec, r)
	end := time.Now()

	h.mu.Lock()
	h.requests++
	h.bytes += int64(rec.body.Len())
	h.spans = append(h.spans, span{start, end})
	trim := h.requests%logEvery == 0
	h.mu.Unlock()
	if trim {
		h.emu.ResetRequests()
	}

	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

// Stats is the answer of /__emu/stats.
type Stats struct {
	Requests   int     `json:"requests"`
	Bytes      int64   `json:"bytes"`
	BusySum    float64 `json:"busy_sum_s"`
	BusyUnion  float64 `json:"busy_union_s"`
	FirstToEnd float64 `json:"first_to_last_s"`
}

func (h *handler) stats(w http.ResponseWriter) {
	h.mu.Lock()
	st := Stats{Requests: h.requests, Bytes: h.bytes}
	spans := append([]span(nil), h.spans...)
	h.mu.Unlock()
	st.BusySum, st.BusyUnion, st.FirstToEnd = measure(spans)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

// measure returns the summed length of spans, the length of their union
// (concurrent requests counted once) and the time from the first start to
// the last end, in seconds.
func measure(spans []span) (sum, union, total float64) {
	if len(spans) == 0 {
		return 0, 0, 0
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start.Before(spans[j].start) })
	var u time.Duration
	cur := spans[0]
	last := spans[0].end
	for _, s := range spans {
		sum += s.end.Sub(s.start).Seconds()
		if s.end.After(last) {
			last = s.end
		}
		if s.start.After(cur.end) {
			u += cur.end.Sub(cur.start)
			cur = s
			continue
		}
		if s.end.After(cur.end) {
			cur.end = s.end
		}
	}
	u += cur.end.Sub(cur.start)
	return sum, u.Seconds(), last.Sub(spans[0].start).Seconds()
}

// recorder is an http.ResponseWriter that keeps the response in memory.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.body.Write(p)
}

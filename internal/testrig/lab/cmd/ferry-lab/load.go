package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab/awslab"
	"github.com/ferrydeploy/ferry/internal/testrig/lab/load"
)

const loadUsage = `usage:
  ferry-lab load [--rate N] [--path P] [--url URL]... [--every D] [--status FILE] [--report FILE] [--wait-in-service D] -- COMMAND...
`

// runLoad is `ferry-lab load`: a constant load through the lab's load
// balancers (FERRY_LAB_ALB_URL and FERRY_LAB_ELB_URL, set by run --aws)
// for as long as COMMAND runs. On a terminal COMMAND gets every row but the
// last, which shows the live counters (screen.go); without one they go to
// stderr every --every; FILE (--status) keeps them too. The recap follows
// COMMAND: requests, how many failed, p99.
// It exits with COMMAND's status.
func runLoad(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry-lab load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rate := fs.Int("rate", 200, "requests per second")
	path := fs.String("path", "/?delay=20ms", "path requested on each load balancer")
	every := fs.Duration("every", 5*time.Second, "without a terminal: print the counters this often")
	status := fs.String("status", "", "also keep the live counters in this file")
	report := fs.String("report", "", "write the report to this file (JSON)")
	inService := fs.Duration("wait-in-service", 0, "first wait at most this long for every host of the lab's target group and classic ELB to be in service (inside run --aws)")
	var urls multi
	fs.Var(&urls, "url", "load balancer URL (default: $FERRY_LAB_ALB_URL and $FERRY_LAB_ELB_URL)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	command := fs.Args()
	if len(command) == 0 {
		fmt.Fprintf(stderr, "ferry-lab load: no command given\n%s", loadUsage)
		return 2
	}
	if len(urls) == 0 {
		for _, k := range []string{"FERRY_LAB_ALB_URL", "FERRY_LAB_ELB_URL"} {
			if v := os.Getenv(k); v != "" {
				urls = append(urls, v)
			}
		}
	}
	if len(urls) == 0 {
		fmt.Fprintf(stderr, "ferry-lab load: no load balancer: give --url, or run it inside ferry-lab run --aws\n")
		return 2
	}
	for i := range urls {
		urls[i] = strings.TrimSuffix(urls[i], "/") + *path
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if *inService > 0 {
		fmt.Fprintf(stderr, "== waiting for every host to be in service in %s and %s\n", awslab.TargetGroup, awslab.LoadBalancer)
		// A signal (Ctrl-C) ends the wait: nothing runs yet to pass it on to.
		wctx, wcancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-sigs:
				wcancel()
			case <-wctx.Done():
			}
		}()
		err := waitInService(wctx, *inService)
		interrupted := wctx.Err() != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded)
		wcancel()
		if interrupted {
			fmt.Fprintln(stderr, "ferry-lab load: interrupted while waiting for the hosts to be in service")
			return 130
		}
		if err != nil {
			fmt.Fprintf(stderr, "ferry-lab load: %v\n", err)
			return 1
		}
	}
	g, err := load.Start(ctx, load.Options{URLs: urls, Rate: *rate})
	if err != nil {
		fmt.Fprintf(stderr, "ferry-lab load: %v\n", err)
		return 1
	}

	line := func() string {
		c := g.Live()
		return fmt.Sprintf("load %d/s through %s: %d requests, %d failed", *rate, lbNames(urls), c.Requests, c.Failures)
	}
	keep := func() {
		if *status != "" {
			_ = os.WriteFile(*status, []byte(line()+"\n"), 0o644)
		}
	}
	cmd := exec.Command(command[0], command[1:]...)
	var waitErr error
	split := isTerminal(os.Stdin) && isTerminal(os.Stdout)
	if split {
		// On a terminal the counters go on its last row, under the
		// command's screen (screen.go); --status still gets them.
		waitErr = runSplit(cmd, os.Stdin, os.Stdout, func() string { keep(); return line() }, sigs)
		if errors.Is(waitErr, errNoSplit) {
			split = false
			cmd = exec.Command(command[0], command[1:]...)
		}
	}
	if !split {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			g.Stop()
			fmt.Fprintf(stderr, "ferry-lab load: %v\n", err)
			return 127
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		lastPrint := time.Now()
	loop:
		for {
			select {
			case waitErr = <-done:
				break loop
			case sig := <-sigs:
				// A Ctrl-C on the terminal reached the command already.
				if sig != syscall.SIGINT || !isTerminal(os.Stdin) {
					_ = cmd.Process.Signal(sig)
				}
			case <-tick.C:
				keep()
				if time.Since(lastPrint) >= *every {
					fmt.Fprintf(stderr, "== %s\n", line())
					lastPrint = time.Now()
				}
			}
		}
	}
	rep := g.Stop()
	// The recap: how many of the users' requests failed, then (only if
	// some did) when and how; the JSON report has everything.
	fmt.Fprintf(stderr, "== load through %s during the run: %d requests, %d failed, p99 %s\n", lbNames(urls), rep.Requests, rep.Failures, load.Round(rep.P99))
	if rep.Failures > 0 {
		rep.Write(stderr)
	} else {
		fmt.Fprintln(stderr, rep.Summary())
	}
	if *report != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*report, b, 0o644); err != nil {
			fmt.Fprintf(stderr, "ferry-lab load: %v\n", err)
		}
	}
	return exitStatus(waitErr, stderr, "ferry-lab load")
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// lbNames names the load balancers for the counters: the lab's ALB and
// classic ELB by their variables, any other by its host.
func lbNames(urls []string) string {
	var names []string
	for _, u := range urls {
		switch {
		case os.Getenv("FERRY_LAB_ALB_URL") != "" && strings.HasPrefix(u, strings.TrimSuffix(os.Getenv("FERRY_LAB_ALB_URL"), "/")):
			names = append(names, "the ALB")
		case os.Getenv("FERRY_LAB_ELB_URL") != "" && strings.HasPrefix(u, strings.TrimSuffix(os.Getenv("FERRY_LAB_ELB_URL"), "/")):
			names = append(names, "the ELB")
		default:
			if pu, err := url.Parse(u); err == nil && pu.Host != "" {
				names = append(names, pu.Host)
			} else {
				names = append(names, u)
			}
		}
	}
	return strings.Join(names, " and ")
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab/load"
)

const loadUsage = `usage:
  ferry-lab load [--rate N] [--path P] [--url URL]... [--every D] [--status FILE] [--report FILE] -- COMMAND...
`

// runLoad is `ferry-lab load`: a constant load through the lab's load
// balancers (FERRY_LAB_ALB_URL and FERRY_LAB_ELB_URL, set by run --aws)
// for as long as COMMAND runs. The live counters go to the terminal's
// title (and to FILE with --status) while COMMAND owns the screen, or to
// stderr every --every without a terminal; the report follows COMMAND.
// It exits with COMMAND's status.
func runLoad(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry-lab load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rate := fs.Int("rate", 200, "requests per second")
	path := fs.String("path", "/?delay=20ms", "path requested on each load balancer")
	every := fs.Duration("every", 5*time.Second, "without a terminal: print the counters this often")
	status := fs.String("status", "", "also keep the live counters in this file")
	report := fs.String("report", "", "write the report to this file (JSON)")
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
	g, err := load.Start(ctx, load.Options{URLs: urls, Rate: *rate})
	if err != nil {
		fmt.Fprintf(stderr, "ferry-lab load: %v\n", err)
		return 1
	}

	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		g.Stop()
		fmt.Fprintf(stderr, "ferry-lab load: %v\n", err)
		return 127
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	tty := isTerminal(os.Stderr)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastPrint := time.Now()
	show := func() {
		c := g.Live()
		line := fmt.Sprintf("load %d/s: %d requests, %d failed", *rate, c.Requests, c.Failures)
		if *status != "" {
			_ = os.WriteFile(*status, []byte(line+"\n"), 0o644)
		}
		switch {
		case tty:
			// The command owns the screen: the counters live in the title.
			fmt.Fprintf(stderr, "\x1b]2;%s\x07", line)
		case time.Since(lastPrint) >= *every:
			fmt.Fprintf(stderr, "== %s\n", line)
			lastPrint = time.Now()
		}
	}
	var waitErr error
loop:
	for {
		select {
		case waitErr = <-done:
			break loop
		case sig := <-sigs:
			if sig != syscall.SIGINT || !isTerminal(os.Stdin) {
				_ = cmd.Process.Signal(sig)
			}
		case <-tick.C:
			show()
		}
	}
	rep := g.Stop()
	if tty {
		fmt.Fprint(stderr, "\x1b]2;\x07")
	}
	fmt.Fprintf(stderr, "== load through the load balancers during the run: %d requests, %d failed\n", rep.Requests, rep.Failures)
	rep.Write(stderr)
	if *report != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*report, b, 0o644); err != nil {
			fmt.Fprintf(stderr, "ferry-lab load: %v\n", err)
		}
	}
	var exitErr *exec.ExitError
	switch {
	case waitErr == nil:
		return 0
	case errors.As(waitErr, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return exitErr.ExitCode()
	default:
		fmt.Fprintf(stderr, "ferry-lab load: %v\n", waitErr)
		return 1
	}
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

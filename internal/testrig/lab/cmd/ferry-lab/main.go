// Command ferry-lab starts a lab of real sshd hosts behind a bastion (see
// package lab) for demos and manual testing, runs a command in it, and tears
// it down afterwards, even on Ctrl-C.
//
//	ferry-lab run [--hosts N] [--jumps 1|2] [--dir DIR] [--aws] -- COMMAND...
//	ferry-lab up  [--hosts N] [--jumps 1|2] [--dir DIR] [--aws]
//	ferry-lab load [--rate N] -- COMMAND...   (inside run --aws)
//
// run exports FERRY_LAB_DIR, FERRY_LAB_INVENTORY, FERRY_LAB_KEY,
// FERRY_LAB_KNOWN_HOSTS, FERRY_LAB_SSH_CONFIG and FERRY_LAB_BASTION
// (user@addr; FERRY_LAB_JUMP holds the whole chain) to COMMAND, which
// inherits the terminal, and exits with COMMAND's status. up prints the same
// variables and keeps the lab until interrupted. Needs root.
//
// --aws also starts an emulated AWS endpoint on 127.0.0.1 (package awslab):
// the hosts as EC2 instances behind a target group and a classic ELB, in an
// Auto Scaling group, health-checked for real. It exports AWS_ENDPOINT_URL,
// credentials, AWS_REGION, AWS_EC2_METADATA_DISABLED and
// FERRY_LAB_AWS_INVENTORY (an aws_ec2 inventory of the hosts), and run prints
// the load balancer and Auto Scaling calls made at the end. Both load
// balancers carry traffic (FERRY_LAB_ALB_URL, FERRY_LAB_ELB_URL); `load`
// drives a constant load through them while its COMMAND runs (see
// runLoad).
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
	"syscall"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/internal/testrig/lab/awslab"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  ferry-lab run [--hosts N] [--jumps 1|2] [--dir DIR] [--aws [--aws-time-scale F] [--aws-report FILE]] [-q] -- COMMAND...
  ferry-lab up  [--hosts N] [--jumps 1|2] [--dir DIR] [--aws [--aws-time-scale F]] [-q]
  ferry-lab load [--rate N] [--path P] [--url URL]... [--status FILE] [--report FILE] [--wait-in-service D] -- COMMAND...
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "load" {
		return runLoad(args[1:], stderr)
	}
	if len(args) == 0 || (args[0] != "run" && args[0] != "up") {
		fmt.Fprint(stderr, usage)
		return 2
	}
	verb := args[0]
	fs := flag.NewFlagSet("ferry-lab "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	hosts := fs.Int("hosts", 3, "number of app hosts")
	jumps := fs.Int("jumps", 1, "bastions in the chain (1 or 2)")
	dir := fs.String("dir", "", "lab directory (default: a temporary one, removed afterwards)")
	quiet := fs.Bool("q", false, "no progress output")
	withAWS := fs.Bool("aws", false, "also emulate AWS: EC2 instances, load balancers, an Auto Scaling group")
	startTimeout := fs.Duration("start-timeout", 0, "how long every sshd may take to answer (default 30s; more for hundreds of hosts on a busy machine)")
	awsReport := fs.String("aws-report", "", "with --aws: at the end, write the emulator's API calls and load balancer state changes to this file (JSON)")
	timeScale := fs.Float64("aws-time-scale", 1, "with --aws: multiplies the load balancers' delays (3 s draining, health checks every 1 s)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	command := fs.Args()
	if verb == "run" && len(command) == 0 {
		fmt.Fprintf(stderr, "ferry-lab run: no command given\n%s", usage)
		return 2
	}
	if *withAWS && *jumps != 1 {
		fmt.Fprintf(stderr, "ferry-lab %s: --aws needs --jumps 1 (an aws_ec2 inventory names one bastion)\n", verb)
		return 2
	}
	if *timeScale <= 0 {
		fmt.Fprintf(stderr, "ferry-lab %s: --aws-time-scale must be above 0\n", verb)
		return 2
	}
	if verb == "up" && len(command) > 0 {
		fmt.Fprintf(stderr, "ferry-lab up: unexpected arguments %q (did you mean ferry-lab run -- ...?)\n", command)
		return 2
	}

	// Catch signals from the start: a Ctrl-C during startup must still
	// tear down what was created.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	startDone, watcherDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-sigs:
			cancel()
		case <-startDone:
		}
	}()

	opts := lab.Options{Hosts: *hosts, Jumps: *jumps, Dir: *dir, StartTimeout: *startTimeout}
	if !*quiet {
		opts.Log = stderr
	}
	l, err := lab.Start(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "ferry-lab: %v\n", err)
		return 1
	}
	defer func() {
		if err := l.Close(); err != nil {
			fmt.Fprintf(stderr, "ferry-lab: %v\n", err)
		}
	}()
	env := []string{
		"FERRY_LAB_DIR=" + l.Dir,
		"FERRY_LAB_INVENTORY=" + l.Inventory,
		"FERRY_LAB_KEY=" + l.KeyFile,
		"FERRY_LAB_KNOWN_HOSTS=" + l.KnownHosts,
		"FERRY_LAB_SSH_CONFIG=" + l.SSHConfig,
		"FERRY_LAB_BASTION=" + l.Bastion(),
		"FERRY_LAB_JUMP=" + l.JumpSpec(),
	}
	if *withAWS {
		a, err := awslab.Start(ctx, l, awslab.Options{TimeScale: *timeScale})
		if err != nil {
			fmt.Fprintf(stderr, "ferry-lab: %v\n", err)
			return 1
		}
		defer a.Close()
		if *awsReport != "" {
			defer func() {
				b, _ := json.Marshal(a.Log())
				if err := os.WriteFile(*awsReport, b, 0o644); err != nil {
					fmt.Fprintf(stderr, "ferry-lab: %v\n", err)
				}
			}()
		}
		if !*quiet {
			fmt.Fprintf(stderr, "ferry-lab: emulated AWS at %s (%s): %d instances behind target group %s and elb %s, in %s\n",
				a.Endpoint, a.Region, len(a.Instances), awslab.TargetGroup, awslab.LoadBalancer, awslab.Group)
			defer func() {
				fmt.Fprintf(stderr, "== AWS calls (load balancers, Auto Scaling):\n")
				a.WriteCalls(stderr)
			}()
		}
		env = append(env, a.Env()...)
	}
	close(startDone)
	<-watcherDone // from here on, signals are the command's business
	if ctx.Err() != nil {
		return 130
	}

	if verb == "up" {
		for _, e := range env {
			fmt.Fprintf(stdout, "export %s\n", e)
		}
		fmt.Fprintf(stdout, "# try: ssh -F %s %s hostname\n", l.SSHConfig, l.Hosts[0].Name)
		<-sigs
		return 0
	}

	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "ferry-lab: %v\n", err)
		return 127
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitErr := waitCommand(cmd, done, sigs)
	return exitStatus(waitErr, stderr, "ferry-lab")
}

// waitCommand waits for the command to end. A Ctrl-C on the terminal reaches
// the command directly (it shares our process group), so SIGINT is passed
// on only when there is no terminal; SIGTERM and SIGHUP are passed on. After
// a signal the command gets a bounded grace period, then it is killed.
func waitCommand(cmd *exec.Cmd, done <-chan error, sigs <-chan os.Signal) error {
	tty := isTerminal(os.Stdin)
	var deadline <-chan time.Time
	for {
		select {
		case err := <-done:
			return err
		case sig := <-sigs:
			if sig != syscall.SIGINT || !tty {
				_ = cmd.Process.Signal(sig)
			}
			if deadline == nil {
				deadline = time.After(60 * time.Second)
			}
		case <-deadline:
			_ = cmd.Process.Kill()
			return <-done
		}
	}
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// exitStatus is the exit status a shell would give for a command that
// ended with err (128+N when signal N killed it); an error that is not the
// command's exit is reported on stderr under prefix, status 1.
func exitStatus(err error, stderr io.Writer, prefix string) int {
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return exitErr.ExitCode()
	default:
		fmt.Fprintf(stderr, "%s: %v\n", prefix, err)
		return 1
	}
}

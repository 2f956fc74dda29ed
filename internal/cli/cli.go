// Package cli implements ferry's commands. cmd/ferry only calls Main, so the
// whole CLI can be driven in-process by tests (testscript) and benchmarks.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/willabides/kongplete"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/parallel"
	_ "github.com/ferrydeploy/ferry/inventory/ec2" // the aws_ec2 inventory plugin
)

// exitError carries an exit code up to Main with the message to print.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// exit returns an error that makes Main exit with code; err may be nil when
// the reason was already printed.
func exit(code int, err error) error { return &exitError{code: code, err: err} }

// Globals are the flags every command takes.
type Globals struct {
	Verbose          int      `short:"v" type:"counter" env:"FERRY_VERBOSE" help:"More output; repeat for debug (-vv)."`
	KnownHostsPolicy string   `env:"FERRY_KNOWN_HOSTS_POLICY" enum:"strict,accept-new,off," default:"" placeholder:"strict|accept-new|off" help:"Host key policy: accept-new (default) records unknown keys and refuses changed ones; strict refuses unknown keys; off verifies nothing."`
	KnownHosts       []string `env:"FERRY_KNOWN_HOSTS" placeholder:"FILE" help:"known_hosts file(s) (default: UserKnownHostsFile from ssh config, else ~/.ssh/known_hosts)."`
	PrivateKey       []string `env:"FERRY_PRIVATE_KEY" placeholder:"FILE" help:"Private key file(s) to offer first, for every host and bastion. CI: put the key itself in FERRY_SSH_KEY."`
	SSHConfig        string   `name:"ssh-config" env:"FERRY_SSH_CONFIG" placeholder:"FILE" help:"OpenSSH client config to read (default ~/.ssh/config and /etc/ssh/ssh_config; 'none' to ignore)."`
	ConnectTimeout   Duration `env:"FERRY_CONNECT_TIMEOUT" default:"15s" help:"Timeout for TCP connect plus SSH handshake, per hop."`
	Config           string   `env:"FERRY_CONFIG" placeholder:"FILE" help:"ferry.yml: environments and personal environments (default ./ferry.yml when present)."`

	stdout, stderr io.Writer
	stdin          io.Reader
	ctx            context.Context
	env            environ // the command's environment (environ.go)
}

// CLI is the command tree.
type CLI struct {
	Globals

	Run       RunCmd       `cmd:"" help:"Run a playbook over the inventory, in rolling batches."`
	Inventory InventoryCmd `cmd:"" help:"Show the inventory, like ansible-inventory."`
	Ping      PingCmd      `cmd:"" help:"Connect to every host: auth, bastion, sudo."`
	Exec      ExecCmd      `cmd:"" help:"Run an ad-hoc command on hosts."`
	Check     CheckCmd     `cmd:"" help:"Validate a playbook without connecting."`
	Doc       DocCmd       `cmd:"" help:"Show module documentation, like ansible-doc."`
	Status    StatusCmd    `cmd:"" help:"What runs where: the release on every host of an environment, drift, lock, load balancers."`
	History   HistoryCmd   `cmd:"" help:"Past runs from the records; one run in detail."`
	Report    ReportCmd    `cmd:"" help:"One self-contained HTML page of a run: timeline, failures, versions, AWS calls."`
	Promote   PromoteCmd   `cmd:"" help:"Deploy the release running on one environment to another."`
	Lock      LockCmd      `cmd:"" help:"The deploy lock of an environment: status, release."`
	Worker    WorkerCmd    `cmd:"" help:"Run deploy requests and Auto Scaling launches from SQS (see docs/worker.md)."`
	Enqueue   EnqueueCmd   `cmd:"" help:"Put a deploy request on the workers' SQS queue; prints the message ID."`
	Init      InitCmd      `cmd:"" help:"Start a deploy repository: a commented ferry.yml, an inventory per environment, a deploy playbook."`
	Version   VersionCmd   `cmd:"" help:"Print ferry's version."`

	Completion CompletionCmd `cmd:"" help:"Shell completion for bash, zsh or fish: print the script, --install it, --uninstall it."`
}

// Main runs ferry with args and env (KEY=VALUE, as os.Environ gives it: the
// only environment ferry reads) and returns the process exit code.
func Main(args, env []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signalContext()
	defer stop()
	return runEnv(ctx, args, environOf(env), stdin, stdout, stderr)
}

// run is Main with the process's environment, without signal handling (tests).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, environOf(os.Environ()), stdin, stdout, stderr)
}

// runEnv runs one command with env as its environment (environ.go).
func runEnv(ctx context.Context, args []string, env environ, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	var cli CLI
	cli.stdout, cli.stderr, cli.stdin, cli.ctx, cli.env = stdout, stderr, stdin, ctx, env
	exited := -1
	parser, err := kong.New(&cli, append([]kong.Option{
		kong.Name("ferry"),
		kong.Description("Agentless SSH orchestrator for rolling deploys: EC2 inventory, bastions, playbooks, a TUI."),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Writers(stdout, stderr),
		kong.Exit(func(c int) { exited = c; panic(exitPanic{}) }),
		kong.Bind(&cli.Globals),
	}, kongEnv(env)...)...)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return 1
	}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(exitPanic); !ok {
				panic(r)
			}
			code = exited
		}
	}()
	kongplete.Complete(parser)
	raiseFileLimit()
	kctx, err := parser.Parse(resumeArgs(args))
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitcode.Invalid
	}
	err = kctx.Run(&cli.Globals)
	return report(stderr, err)
}

// exitPanic unwinds kong's --help/--version exits without os.Exit, so tests stay in-process.
type exitPanic struct{}

// report prints err (if any) and maps it to an exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return exitcode.OK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "ferry: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "ferry: %v\n", err)
	switch {
	case diag.IsInvalidInput(err):
		return exitcode.Invalid
	case errors.Is(err, context.Canceled):
		return exitcode.Interrupted
	}
	return 1
}

// signalContext is cancelled on the first SIGINT/SIGTERM/SIGHUP (a dropped
// SSH session to the bastion must abort as gracefully as Ctrl-C); a second
// signal exits at once.
func signalContext() (context.Context, func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	ctx, stop := watchSignals(ch, func() { hardExit("ferry: second signal, stopping now") })
	return ctx, func() { signal.Stop(ch); stop() }
}

// watchSignals cancels the returned context on the first value from ch and
// calls second on the next one, until stop is called. The wait for the
// second signal must not end when the context is cancelled: the first
// signal is what cancels it.
func watchSignals(ch <-chan os.Signal, second func()) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	var once sync.Once
	// A select picks at random among ready cases: after stop, a queued
	// signal must lose, so stopped is checked again after each receive.
	isStopped := func() bool {
		select {
		case <-stopped:
			return true
		default:
			return false
		}
	}
	go func() {
		select {
		case <-ch:
		case <-stopped:
			return
		}
		if isStopped() {
			return
		}
		cancel()
		select {
		case <-ch:
			if !isStopped() {
				second()
			}
		case <-stopped:
		}
	}()
	return ctx, func() { once.Do(func() { close(stopped) }); cancel() }
}

// interruptible runs f, and returns at once with ctx's error if a signal
// comes first. For commands that only read files (check, inventory): there
// is nothing to wind down, and a huge document must not keep ferry running
// past the first Ctrl-C or SIGTERM. f is left to the process's exit.
func interruptible(ctx context.Context, f func() error) error {
	err := parallel.Await(ctx, f)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("interrupted: %w", err)
	}
	return err
}

// restoreTerminal, when set, gives the terminal back (the TUI holds it raw,
// on the alternate screen) before hardExit leaves without unwinding.
var restoreTerminal atomic.Pointer[func()]

// hardExit stops at once (a second signal, Ctrl-C twice in the TUI): running
// tasks are cut short, as the operator asked.
func hardExit(msg string) {
	if f := restoreTerminal.Load(); f != nil {
		(*f)()
	}
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(exitcode.Interrupted)
}

// lines splits text into trimmed non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			out = append(out, l)
		}
	}
	return out
}

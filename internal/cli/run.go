package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/output"
	"github.com/ferrydeploy/ferry/playbooks"
	runreport "github.com/ferrydeploy/ferry/report"
	"github.com/ferrydeploy/ferry/tui"
)

// RunCmd runs a playbook.
type RunCmd struct {
	HostFlags
	LockFlags
	Playbook         string   `arg:"" type:"path" help:"Playbook file."`
	Extra            []string `short:"e" name:"extra-vars" sep:"none" placeholder:"KEY=VALUE|@FILE" help:"Extra variables, highest precedence (repeatable)."`
	Env              string   `env:"FERRY_ENV" placeholder:"NAME" help:"Environment from ferry.yml (the env variable)."`
	Branch           string   `env:"FERRY_BRANCH" placeholder:"BRANCH" help:"Git branch: picks the personal environment (default: the CI's branch variable, else git)."`
	Check            bool     `help:"Say what each task would do; change nothing."`
	Tags             []string `env:"FERRY_TAGS" placeholder:"TAG" help:"Only tasks with these tags."`
	SkipTags         []string `env:"FERRY_SKIP_TAGS" placeholder:"TAG" help:"Skip tasks with these tags."`
	Output           string   `short:"o" env:"FERRY_OUTPUT" enum:"auto,tui,plain,json" default:"auto" help:"auto (the TUI on a terminal, else plain), tui, plain, json."`
	Yes              bool     `short:"y" env:"FERRY_YES" help:"Approve pauses in advance (non-interactive runs)."`
	AllowUnreachable bool     `env:"FERRY_ALLOW_UNREACHABLE" help:"Go on without hosts that fail preflight."`
	RecordDir        string   `env:"FERRY_RECORD_DIR" default:".ferry/runs" placeholder:"DIR" help:"Where run records go."`
	Grace            Duration `env:"FERRY_GRACE" default:"2m" help:"After an interrupt: how long running tasks and rollbacks may take."`
	Resume           string   `placeholder:"RUN_ID" help:"Finish an interrupted run: restore what it left out of service, then deploy the hosts it did not finish (default: the last unfinished run of this playbook and env)."`
	Report           bool     `env:"FERRY_REPORT" help:"Also write the run's HTML page (ferry report) next to its record; the worker always does."`
	AWSPollInterval  Duration `name:"aws-poll-interval" env:"FERRY_AWS_POLL_INTERVAL" default:"1s" help:"How often elb/asg ask AWS, once the draining, health or standby they wait for can have changed (they sleep until then)."`
	requestFlags
}

// Run implements the command.
func (c *RunCmd) Run(g *Globals) error {
	ctx := g.ctx
	pb, err := playbooks.Load(c.Playbook, g.env.List())
	if err != nil {
		return err
	}
	for _, w := range pb.Warnings {
		fmt.Fprintf(g.stderr, "warning: %v\n", w)
	}
	extra, err := playbooks.ParseExtraVars(c.Extra)
	if err != nil {
		return err
	}
	private, err := askPrompts(pb, extra)
	if err != nil {
		return err
	}
	envh, err := c.prepareEnv(g, extra)
	if err != nil {
		return err
	}
	inv := envh.inv
	// Undefined variables and bad expressions fail here, before any connection.
	if err := pb.Check(knownVars(inv, extra)); err != nil {
		return err
	}
	version := ""
	if v, ok := extra["version"]; ok {
		version = template.Text(v)
	}
	var resumed *playbooks.Resumed
	if c.Resume != "" {
		if resumed, err = playbooks.LoadJournal(c.RecordDir, c.Resume, c.Playbook, c.Env); err == nil {
			// The record holds the run's -e values (not its secrets): what
			// is not given again is taken from there, version included.
			for k, v := range resumed.Extra {
				if _, given := extra[k]; !given {
					extra[k] = v
				}
			}
			if version == "" {
				version = resumed.Version
				if _, given := extra["version"]; !given && version != "" {
					extra["version"] = version
				}
			}
			err = resumed.Check(pb, inv, c.Env, version)
		}
		if err != nil {
			return exit(exitcode.Invalid, err)
		}
	}
	conn, err := c.newConnector(g, manyCommands)
	if err != nil {
		return err
	}
	defer conn.Close()

	runID := newRunID()
	rec, err := output.NewRecord(c.RecordDir, runID)
	if err != nil {
		return err
	}
	if c.Report {
		// Deferred before the record's Close, so it runs after it: the
		// page is made from the whole record.
		defer func() {
			if err := runreport.WriteFile(rec.Path(), runreport.PathFor(rec.Path())); err != nil {
				fmt.Fprintf(g.stderr, "ferry: run %s: %v\n", runID, err)
			}
		}()
	}
	defer rec.Close()

	mode := c.Output
	if mode == "auto" {
		mode = "plain"
		if isTerminal(os.Stdout) && isTerminal(os.Stdin) {
			mode = "tui"
		}
	}
	// stop is the graceful abort: signals (via g.ctx), the TUI's `a`, and
	// an output that can no longer be written.
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	defer catchSIGPIPE()()
	stdout := &closedOutput{w: g.stdout, closed: func(err error) {
		rec.Emit(events.Event{Kind: events.Warning, RunID: runID, Time: time.Now().UTC(), Msg: outputClosedMsg(err)})
		stop()
	}}

	var renderer events.Sink
	var tuiCh chan events.Event
	switch mode {
	case "json":
		renderer = output.NewJSON(stdout)
	case "plain":
		renderer = output.NewPlain(stdout, g.Verbose, g.env.Get("GITHUB_ACTIONS") == "true")
	case "tui":
		tuiCh = make(chan events.Event, 4096)
		renderer = events.SinkFunc(func(e events.Event) { tuiCh <- e })
	}
	mask := output.NewMask(events.Fanout{rec, renderer})
	mask.Add(private...)                                // vars_prompt answers typed with echo off
	mask.Add(playbooks.ControllerSecrets(g.env.Get)...) // SSH key (line by line), passphrase, become password, AWS keys

	opts := playbooks.Options{
		Environ:          g.env.List(),
		Inventory:        inv,
		Connector:        conn,
		Sink:             mask,
		Limit:            c.Limit,
		Forks:            c.Forks,
		Check:            c.Check,
		Tags:             c.Tags,
		SkipTags:         c.SkipTags,
		Extra:            extra,
		Env:              c.Env,
		RunID:            runID,
		User:             c.requester(g.env),
		Origin:           c.requestOrigin(g.env),
		Branch:           c.Branch,
		Version:          version,
		Playbook:         c.Playbook,
		Source:           strings.Join(c.Inventory, ","),
		Record:           rec.Path(),
		Yes:              c.Yes,
		AllowUnreachable: c.AllowUnreachable,
		Grace:            timeDuration(c.Grace),
		BecomePass:       g.env.Get("FERRY_BECOME_PASSWORD"),
		Mask:             mask.Add,
		JournalErr:       rec.Err,
		Resume:           resumed,
	}
	if usesAWS(pb) {
		f, err := awsapi.NewFactory(ctx, awsapi.Config{Env: g.env.Lookup, PollInterval: timeDuration(c.AWSPollInterval)})
		if err != nil {
			return err
		}
		opts.AWS, opts.CloudWatch = f, f
	}
	var approvals chan bool
	if mode == "tui" {
		approvals = make(chan bool, 1)
		opts.Approve = func(ctx context.Context, msg string) (bool, error) {
			select {
			case ok := <-approvals:
				return ok, nil
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
	}
	c.runHooks(pb, envh, conn, &opts, stop)
	runner := playbooks.NewRunner(pb, opts)

	var res playbooks.Result
	if mode != "tui" {
		res = runner.Run(stopCtx)
	} else {
		ctl := &tuiControls{runner: runner, stop: stop, approvals: approvals, signalled: ctx}
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer close(tuiCh)
			res = runner.Run(stopCtx)
		}()
		// The TUI owns the terminal until the operator leaves the recap; a
		// signal still aborts the run through stopCtx, and then the TUI
		// leaves by itself once the run has ended: nobody may be there to
		// press q (a CI timeout, a dropped SSH session).
		if restore := saveTerminal(); restore != nil {
			restoreTerminal.Store(&restore)
			defer restoreTerminal.Store(nil)
		}
		terr := tui.Run(context.WithoutCancel(ctx), tui.Options{Unattended: ctx.Done()}, tuiCh, ctl)
		if terr != nil {
			// The TUI is gone but the run goes on: show the rest as plain lines.
			fmt.Fprintf(g.stderr, "ferry: %v; continuing with plain output\n", terr)
			plain := output.NewPlain(g.stdout, g.Verbose, false)
			for e := range tuiCh {
				plain.Emit(e)
			}
		}
		<-done
	}
	if res.ExitCode == exitcode.OK {
		return nil
	}
	if mode == "json" || mode == "tui" {
		// The recap went to the renderer; leave a trace on stderr for scripts.
		fmt.Fprintf(g.stderr, "ferry: run %s: %s (exit %d), record %s\n", runID, res.Status, res.ExitCode, rec.Path())
	}
	return exit(res.ExitCode, nil)
}

// tuiControls lets the TUI steer the runner.
type tuiControls struct {
	runner    *playbooks.Runner
	stop      context.CancelFunc
	approvals chan bool
	aborts    atomic.Int32
	signalled context.Context // cancelled by a signal: that was the first abort
}

func (t *tuiControls) Approve(ok bool) {
	select {
	case t.approvals <- ok:
	default: // an answer is already pending
	}
}
func (t *tuiControls) PauseAfterBatch() { t.runner.PauseAfterBatch() }

// Abort is the first Ctrl-C (or `a`): a graceful abort, as SIGTERM; the
// second stops at once, as a second signal does.
func (t *tuiControls) Abort() {
	if t.aborts.Add(1) > 1 || t.signalled.Err() != nil {
		hardExit("ferry: Ctrl-C twice, stopping now")
	}
	t.stop()
	t.Approve(false)
}

// saveTerminal returns what gives the terminal back as it is now: the mode
// of stdin, the normal screen, a visible cursor, no bracketed paste. nil
// when stdin is not a terminal.
func saveTerminal() func() {
	fd := int(os.Stdin.Fd())
	st, err := term.GetState(fd)
	if err != nil {
		return nil
	}
	return func() {
		_ = term.Restore(fd, st)
		// reset attributes, bracketed paste off, cursor on, leave the alternate screen
		_, _ = os.Stdout.WriteString("\x1b[0m\x1b[?2004l\x1b[?25h\x1b[?1049l\r\n")
	}
}

func newRunID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

func whoami(env environ) string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return env.Get("USER")
}

// origin says where the run comes from: the CI job, else the controller's hostname.
func origin(env environ) string {
	if env.Get("GITHUB_ACTIONS") == "true" {
		return fmt.Sprintf("github-actions %s run %s", env.Get("GITHUB_REPOSITORY"), env.Get("GITHUB_RUN_ID"))
	}
	if id := env.Get("CI_JOB_ID"); id != "" {
		return "gitlab job " + id
	}
	h, _ := os.Hostname()
	return h
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// CheckCmd validates a playbook without connecting.
type CheckCmd struct {
	Playbook  string           `arg:"" type:"path" help:"Playbook file."`
	Inventory inventorySources `short:"i" env:"FERRY_INVENTORY" placeholder:"FILE|DIR" help:"Also check host patterns and variables against this inventory."`
	Extra     []string         `short:"e" name:"extra-vars" sep:"none" placeholder:"KEY=VALUE|@FILE" help:"Extra variables the run will get."`
}

// Run implements the command. It stops on the first signal.
func (c *CheckCmd) Run(g *Globals) error {
	return interruptible(g.ctx, func() error { return c.check(g) })
}

func (c *CheckCmd) check(g *Globals) error {
	extra, err := playbooks.ParseExtraVars(c.Extra)
	if err != nil {
		return err
	}
	var inv *inventory.Inventory
	if len(c.Inventory) > 0 {
		inv, err = inventory.Load(g.ctx, c.Inventory, inventory.Options{PlaybookDir: filepath.Dir(c.Playbook), Env: g.env.Lookup})
		if err != nil {
			return err
		}
	}
	// load problems and undefined variables in one report
	pb, err := playbooks.LoadChecked(c.Playbook, knownVars(inv, extra), g.env.List())
	if pb != nil {
		for _, w := range pb.Warnings {
			fmt.Fprintf(g.stderr, "warning: %v\n", w)
		}
	}
	if err != nil {
		return err
	}
	if err := pb.MissingLocalFiles(playbooks.CheckVars(inv, extra), nil, nil); err != nil {
		return err
	}
	nTasks := 0
	dynamic := false // an earlier play changes the inventory (group_by, add_host)
	for _, p := range pb.Plays {
		nTasks += len(p.HostTasks()) + len(p.Before) + len(p.Stage) + len(p.After) + len(p.Rollback)
		if inv != nil {
			pattern := p.Hosts
			if template.HasTemplate(pattern) {
				var all map[string]any
				if g := inv.Groups["all"]; g != nil {
					all = g.Vars
				}
				vars := playbooks.Merge(all, extra)
				vars["extra"] = extra
				if pattern, err = p.RenderHosts(vars); err != nil {
					return &diag.Invalid{Err: fmt.Errorf("play %q: hosts: %w", p.Name, err)}
				}
			}
			hs, err := inv.Match(pattern)
			var nomatch *inventory.NoMatchError
			if err != nil && dynamic && errors.As(err, &nomatch) {
				fmt.Fprintf(g.stdout, "play %q: hosts known once the plays before it ran (group_by, add_host)\n", p.Name)
				continue
			}
			dynamic = dynamic || p.ChangesInventory()
			if err != nil {
				var ie *diag.Invalid
				if errors.As(err, &ie) {
					return err
				}
				return &diag.Invalid{Err: fmt.Errorf("play %q: %w", p.Name, err)}
			}
			fmt.Fprintf(g.stdout, "play %q: %d hosts, %d batches\n", p.Name, len(hs), len(playbooks.Batches(names(hs), p.Serial)))
		}
	}
	fmt.Fprintf(g.stdout, "%s: ok (%d plays, %d tasks)\n", c.Playbook, len(pb.Plays), nTasks)
	return nil
}

// usesAWS reports whether a play calls AWS from the controller (a module
// whose Spec says AWS), so AWS configuration is loaded only for playbooks
// that need it.
func usesAWS(pb *playbooks.Playbook) bool {
	for _, p := range pb.Plays {
		if p.Verify.UsesAWS() {
			return true
		}
		for _, t := range p.AllTasks() {
			if t.Spec.AWS {
				return true
			}
		}
	}
	return false
}

// knownVars is every variable name the inventory and -e define; nil when
// there is no inventory (then names that might come from one are not checked).
func knownVars(inv *inventory.Inventory, extra map[string]any) map[string]bool {
	if inv == nil {
		return nil
	}
	known := map[string]bool{}
	hosts := inv.Hosts
	if h, _ := inv.Host("localhost"); inv.Implicit(h) {
		hosts = append(slices.Clip(hosts), h) // host_vars/localhost of the implicit localhost
	}
	for _, h := range hosts {
		for k := range h.Vars {
			known[k] = true
		}
	}
	for k := range extra {
		known[k] = true
	}
	return known
}

func names(hs []*inventory.Host) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name
	}
	return out
}

// askPrompts answers the playbook's vars_prompt entries that -e does not,
// on the terminal (private ones with echo off), as ansible-playbook does.
// Without a terminal nothing is asked: the runner then refuses to start
// when a prompt has no default. It returns the private answers, to mask.
func askPrompts(pb *playbooks.Playbook, extra map[string]any) ([]string, error) {
	var private []string
	for _, p := range pb.Plays {
		for _, pr := range p.Prompts {
			if _, ok := extra[pr.Name]; ok || !isTerminal(os.Stdin) {
				continue
			}
			tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
			if err != nil {
				return nil, nil // no terminal after all: -e or the default
			}
			q := pr.Prompt
			if q == "" {
				q = pr.Name
			}
			if pr.HasDefault {
				q += fmt.Sprintf(" [%s]", template.Text(pr.Default))
			}
			fmt.Fprint(tty, q+": ")
			var answer string
			if pr.Private {
				b, err := term.ReadPassword(int(tty.Fd()))
				fmt.Fprintln(tty)
				answer = string(b)
				if err != nil {
					tty.Close()
					return nil, fmt.Errorf("vars_prompt %s: %w", pr.Name, err)
				}
			} else {
				line, err := bufio.NewReader(tty).ReadString('\n')
				if err != nil && line == "" {
					tty.Close()
					return nil, fmt.Errorf("vars_prompt %s: %w", pr.Name, err)
				}
				answer = strings.TrimRight(line, "\r\n")
			}
			tty.Close()
			if answer == "" && pr.HasDefault {
				continue // the play's default
			}
			extra[pr.Name] = answer
			if pr.Private && answer != "" {
				private = append(private, answer)
			}
		}
	}
	return private, nil
}

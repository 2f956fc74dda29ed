package playbooks

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/parallel"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/tasks"
)

// Connector opens, or reuses, the one connection a run keeps to a host.
type Connector interface {
	Connect(ctx context.Context, h *inventory.Host) (tasks.Conn, error)
}

// Options configure a run.
type Options struct {
	Inventory *inventory.Inventory
	Connector Connector
	Sink      events.Sink
	Limit     string // host pattern intersected with each play's hosts
	Forks     int    // hosts of a batch worked on at once (default 10)
	Check     bool
	Tags      []string
	SkipTags  []string
	Extra     map[string]any // -e
	Env       string
	RunID     string
	User      string
	Origin    string
	Branch    string
	Version   string // what is being deployed, for the header and `run.version`
	Playbook  string // as given on the command line
	Source    string // inventory sources, for the header
	Record    string // path of the run record, shown in the recap

	// Approve asks the operator (pause_after, pause); nil means no one can
	// be asked, and a run that needs approval fails unless Yes.
	Approve func(ctx context.Context, msg string) (bool, error)
	Yes     bool

	AllowUnreachable bool
	// Grace is how long running tasks may go on after an interrupt, and how
	// long rollback gets (default 2m): long enough to restore a service,
	// bounded so a hung host cannot keep the run alive forever.
	Grace      time.Duration
	BecomePass string
	// Mask receives secret values to hide from every output (secrets:, no_log).
	Mask func(values ...string)
	// AWS is handed to controller modules (elb, asg).
	AWS tasks.AWS
	// Environ is the controller's environment (KEY=VALUE, as os.Environ
	// gives it): what env_vars and env secrets read. The runner does not
	// read the process's environment itself.
	Environ []string
	Now     func() time.Time
	// JournalErr reports whether the record (the run's journal) is still
	// being written; after an intent fails to reach it, nothing is changed.
	JournalErr func() error
	// Resume, when set, makes this run finish the run it was read from
	// (LoadJournal): first restore what that run left undone, then deploy
	// only the hosts it did not finish.
	Resume *Resumed
	// Lock takes the environment's deploy lock (envhooks.go); nil: no lock.
	Lock Locker
	// HostDone is called for each host that finished its task list (to
	// record its release on the host); nil: nothing.
	HostDone func(ctx context.Context, d HostDone) error
}

// Result is the outcome of a run.
type Result struct {
	ExitCode int
	Status   events.Status
	Recap    []events.HostRecap
}

// Runner runs one playbook. PauseAfterBatch and the context given to Run
// are how the TUI and signals steer it.
type Runner struct {
	pb   *Playbook
	opts Options

	pauseReq atomic.Bool
	hosts    map[string]*hostRun // by name, across plays
	order    []string            // hosts in the order they first appear
	mu       sync.Mutex
	builtins map[string]any
	ctlVars  map[string]any // what before/after tasks know of the play's hosts
	flow     *flowState     // handlers, run_once, delegation (flow.go)

	ctlJournal journal // controller changes still open (suspended scaling)
	lockTaken  bool
	unlock     func(context.Context)
}

// controllerVars gives before/after tasks what AWS modules need to act on
// the play's hosts as a whole: their region, account and Auto Scaling groups.
func controllerVars(hosts []*inventory.Host) map[string]any {
	out := map[string]any{}
	seen := map[string]bool{}
	var groups []any
	for _, h := range hosts {
		for _, k := range []string{awsapi.VarRegion, awsapi.VarAccountID, awsapi.VarRoleARN} {
			if v, ok := h.Vars[k]; ok && out[k] == nil {
				out[k] = v
			}
		}
		if g, ok := h.Vars[awsapi.VarAutoScalingGroup].(string); ok && g != "" && !seen[g] {
			seen[g] = true
			groups = append(groups, g)
		}
	}
	out["autoscaling_groups"] = groups
	return out
}

// hostRun is one host's state over the whole run.
type hostRun struct {
	h     *inventory.Host
	conn  tasks.Conn
	facts map[string]any // registered results and set_fact
	state map[string]any // module memory (elb drained, ...)
	recap events.HostRecap
	// touched: a task that may change the host started; finished: its task list completed.
	touched, finished, failed bool
	finishedAt                time.Time
	journal                   journal // changes still open on the host (guarded by Runner.mu)
	unknown                   string  // why the host's state is unknown (a task's connection dropped); "" when known
}

// NewRunner prepares a run of pb.
func NewRunner(pb *Playbook, opts Options) *Runner {
	if opts.Forks <= 0 {
		opts.Forks = 10
	}
	if opts.Grace <= 0 {
		opts.Grace = 2 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sink == nil {
		opts.Sink = events.SinkFunc(func(events.Event) {})
	}
	if opts.Extra == nil {
		opts.Extra = map[string]any{}
	}
	return &Runner{pb: pb, opts: opts, hosts: map[string]*hostRun{}}
}

// PauseAfterBatch asks the run to wait for approval before the next batch.
func (r *Runner) PauseAfterBatch() { r.pauseReq.Store(true) }

func (r *Runner) emit(e events.Event) {
	e.Time = r.opts.Now()
	e.RunID = r.opts.RunID
	r.opts.Sink.Emit(e)
}

// playPlan is a play resolved against the inventory.
type playPlan struct {
	play    *Play
	hosts   []*inventory.Host
	batches [][]string
	done    []*inventory.Host // --resume: hosts an earlier run finished
}

// Plan resolves every play's hosts and batches without connecting, so bad
// patterns and missing approvals fail before anything is touched.
func (r *Runner) plan() ([]playPlan, error) {
	var plans []playPlan
	var limit map[string]bool
	if r.opts.Limit != "" {
		hs, err := r.opts.Inventory.Match(r.opts.Limit)
		if err != nil {
			return nil, err
		}
		limit = map[string]bool{}
		for _, h := range hs {
			limit[h.Name] = true
		}
	}
	for _, p := range r.pb.Plays {
		hs, err := r.opts.Inventory.Match(p.Hosts)
		if err != nil {
			return nil, fmt.Errorf("play %q: %w", p.Name, err)
		}
		if limit != nil {
			var kept []*inventory.Host
			for _, h := range hs {
				if limit[h.Name] {
					kept = append(kept, h)
				}
			}
			if len(kept) == 0 {
				return nil, &inputError{fmt.Errorf("play %q: --limit %q leaves none of its hosts (%q)", p.Name, r.opts.Limit, p.Hosts)}
			}
			hs = kept
		}
		byName := map[string]*inventory.Host{}
		names := make([]string, len(hs))
		for i, h := range hs {
			byName[h.Name] = h
			names[i] = h.Name
		}
		names = OrderHosts(names, p.Order, OrderOptions{
			Seed: uint64(r.opts.Now().UnixNano()),
			Zone: func(n string) string {
				z, _ := byName[n].Vars["availability_zone"].(string)
				return z
			},
		})
		names = r.opts.Resume.replan(p, names)
		batches := r.opts.Resume.skipDone(p, Batches(names, p.Serial))
		var done []*inventory.Host
		if r.opts.Resume != nil {
			all := names
			names = nil
			for _, b := range batches {
				names = append(names, b...) // finished hosts are not connected to again
			}
			for _, n := range all {
				if !contains(names, n) {
					done = append(done, byName[n])
				}
			}
		}
		ordered := make([]*inventory.Host, len(names))
		for i, n := range names {
			ordered[i] = byName[n]
		}
		if r.opts.Approve == nil && !r.opts.Yes && needsApproval(p) {
			return nil, &inputError{fmt.Errorf("play %q waits for approval (pause_after or pause) but nobody can answer: run it in a terminal, or pass --yes to approve in advance", p.Name)}
		}
		plans = append(plans, playPlan{play: p, hosts: ordered, batches: batches, done: done})
	}
	return plans, nil
}

// inputError marks plan errors as invalid input (exit 4).
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

func needsApproval(p *Play) bool {
	if len(p.PauseAfter) > 0 {
		return true
	}
	for _, t := range p.HostTasks() {
		if t.Spec.Approval != nil && t.Spec.Approval(t.Args) {
			return true
		}
	}
	return false
}

// Run runs the playbook. Cancelling ctx is the graceful abort of the SPEC:
// no new task starts, running tasks get Grace, hosts in flight roll back,
// the recap is emitted and the exit code is 130.
func (r *Runner) Run(ctx context.Context) Result {
	plans, err := r.plan()
	start := r.opts.Now()
	r.emit(events.Event{Kind: events.RunStart, Playbook: r.opts.Playbook, Env: r.opts.Env, Version: r.opts.Version,
		Inventory: r.opts.Source, User: r.opts.User, Origin: r.opts.Origin, Check: r.opts.Check, Hosts: r.allHosts(plans),
		Digest: PlaybookDigest(r.pb.Path), ResumeOf: r.opts.Resume.ID()})
	if err != nil {
		return r.finish(exitcode.Invalid, events.StatusFailed, err.Error(), start)
	}
	r.builtins = r.makeBuiltins()

	// hard outlives ctx by Grace: running tasks use it. Rollbacks and
	// `after` get their own budget (cleanup), so a task that used the whole
	// grace period cannot also cancel the restoration of its host.
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	stopWatch := context.AfterFunc(ctx, func() {
		t := time.NewTimer(r.opts.Grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancelHard()
		case <-hard.Done():
		}
	})
	defer stopWatch()

	code, status, msg := exitcode.OK, events.StatusOK, ""
	if r.opts.Resume != nil {
		code, status, msg = r.restore(ctx, plans)
	}
	for _, pp := range plans {
		if code != exitcode.OK {
			break
		}
		c, s, m := r.runPlay(ctx, hard, pp)
		if c != exitcode.OK {
			code, status, msg = c, s, m
			break
		}
	}
	r.releaseLock(ctx)
	if ctx.Err() != nil && code != exitcode.Unreachable {
		code, status = exitcode.Interrupted, events.StatusInterrupted
		if msg == "" {
			msg = "interrupted: no new batch started"
		}
	}
	return r.finish(code, status, msg, start)
}

func (r *Runner) allHosts(plans []playPlan) []string {
	seen := map[string]bool{}
	var out []string
	for _, pp := range plans {
		for _, h := range pp.hosts {
			if !seen[h.Name] {
				seen[h.Name] = true
				out = append(out, h.Name)
			}
		}
	}
	return out
}

func (r *Runner) finish(code int, status events.Status, msg string, start time.Time) Result {
	var recap []events.HostRecap
	for _, n := range r.order {
		hr := r.hosts[n]
		rc := hr.recap
		rc.Host = n
		rc.Untouched = !hr.touched && rc.Unreachable == 0
		for _, s := range tasks.Specs() {
			if d, ok := hr.state[s.Undo]; s.Undo != "" && ok && d != nil {
				rc.Drained = true // still out of service (e.g. out of its load balancers)
			}
		}
		rc.Left = r.leftState(hr)
		recap = append(recap, rc)
	}
	r.emit(events.Event{Kind: events.RunEnd, Status: status, ExitCode: code, Msg: msg, Recap: recap,
		Record: r.opts.Record, Duration: r.opts.Now().Sub(start)})
	return Result{ExitCode: code, Status: status, Recap: recap}
}

// secretValues lists the texts to mask for a secret variable: a scalar's
// text, and every leaf of a mapping or list, since `debug` or a template may
// print one field (db.password) on its own.
func secretValues(v any, out []string) []string {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			out = secretValues(e, out)
		}
	case map[string]string:
		for _, e := range x {
			out = append(out, e)
		}
	case []any:
		for _, e := range x {
			out = secretValues(e, out)
		}
	case []string:
		out = append(out, x...)
	default:
		out = append(out, Text(x))
	}
	return out
}

// controllerSecrets are environment variables that hold ferry's own
// credentials; playbooks never see them through env_vars (see secrets.go).
var controllerSecrets = map[string]bool{
	"FERRY_SSH_KEY": true, "FERRY_SSH_KEY_PASSPHRASE": true, "FERRY_BECOME_PASSWORD": true,
}

func (r *Runner) makeBuiltins() map[string]any {
	inv := r.opts.Inventory
	groups := map[string]any{}
	for name, g := range inv.Groups {
		_ = g
		hs, err := inv.Match(name)
		if err != nil {
			continue
		}
		names := make([]any, len(hs))
		for i, h := range hs {
			names[i] = h.Name
		}
		groups[name] = names
	}
	hostvars := map[string]any{}
	for _, h := range inv.Hosts {
		hostvars[h.Name] = h.Vars
	}
	envVars := map[string]any{}
	for _, kv := range r.opts.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok && !credentialEnv(k) {
			envVars[k] = v
		}
	}
	return map[string]any{
		"env":      r.opts.Env,
		"env_vars": envVars,
		"groups":   groups,
		"hostvars": hostvars,
	}
}

// runVars returns the `run` variable.
func (r *Runner) runVars(batch int, status string) map[string]any {
	return map[string]any{
		"id": r.opts.RunID, "batch": batch, "status": status, "user": r.opts.User,
		"branch": r.opts.Branch, "version": r.opts.Version, "check": r.opts.Check,
	}
}

// hostRunFor returns the run state of h, creating it.
func (r *Runner) hostRunFor(h *inventory.Host) *hostRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	hr, ok := r.hosts[h.Name]
	if !ok {
		hr = &hostRun{h: h, facts: map[string]any{}, state: map[string]any{}}
		r.hosts[h.Name] = hr
		r.order = append(r.order, h.Name)
	}
	return hr
}

// vars is what expressions on hr see, with run.batch = batch.
func (r *Runner) vars(play *Play, hr *hostRun, batch int, status string) (map[string]any, error) {
	b := make(map[string]any, len(r.builtins)+6)
	for k, v := range r.builtins {
		b[k] = v
	}
	b["run"] = r.runVars(batch, status)
	var named map[string]string
	if play != nil {
		named = namedEnv(play, r.opts.Environ)
	}
	if named != nil {
		b["env_vars"] = envVarsWith(b["env_vars"], named)
	}
	var inv, facts map[string]any
	if hr == nil {
		inv = r.ctlVars // before/after: what the play's hosts share
	} else {
		inv, facts = hr.h.Vars, hr.facts
		b["host"] = hr.h.Vars
		b["inventory_hostname"] = hr.h.Name
		gn := make([]any, len(hr.h.Groups))
		for i, g := range hr.h.Groups {
			gn[i] = g
		}
		b["group_names"] = gn
	}
	s := &Scope{Inventory: inv, Play: play, Facts: facts, Extra: r.opts.Extra, Builtins: b}
	v, err := s.Vars()
	if err != nil {
		return nil, err
	}
	if r.opts.Mask != nil {
		for _, name := range play.Secrets {
			if sv, ok := v[name]; ok {
				r.opts.Mask(secretValues(sv, nil)...)
			}
		}
		for _, val := range named {
			r.opts.Mask(val)
		}
	}
	return v, nil
}

// runPlay runs one play: preflight, before, batches, after.
func (r *Runner) runPlay(ctx, hard context.Context, pp playPlan) (int, events.Status, string) {
	play := pp.play
	names := make([]string, len(pp.hosts))
	byName := map[string]*hostRun{}
	for i, h := range pp.hosts {
		names[i] = h.Name
		byName[h.Name] = r.hostRunFor(h)
	}
	r.emit(events.Event{Kind: events.PlayStart, Play: play.Name, Hosts: names, Batches: len(pp.batches)})

	if code, msg := r.preflight(ctx, play, pp.hosts, byName); code != exitcode.OK {
		r.emit(events.Event{Kind: events.PlayEnd, Play: play.Name, Status: events.StatusUnreachable})
		return code, events.StatusUnreachable, msg
	}
	if code, msg := r.takeLock(ctx); code != exitcode.OK {
		r.emit(events.Event{Kind: events.PlayEnd, Play: play.Name, Status: events.StatusFailed})
		return code, events.StatusFailed, msg
	}

	r.ctlVars = controllerVars(pp.hosts)
	code, status, msg := exitcode.OK, events.StatusOK, ""
	if !r.controllerTasks(ctx, hard, play, play.Before, "running") {
		code, status, msg = exitcode.Failed, events.StatusFailed, "a `before` task failed: no host was touched"
	}

	var completed []*hostRun // finished hosts, in completion order
	totalFailed := 0
	for bi, batch := range pp.batches {
		if code != exitcode.OK || ctx.Err() != nil {
			break
		}
		num := bi + 1
		r.emit(events.Event{Kind: events.BatchStart, Play: play.Name, Batch: num, Batches: len(pp.batches), Hosts: batch})
		failed, worked := r.runBatch(ctx, hard, play, batch, byName, num)
		totalFailed += failed
		for _, n := range batch {
			if hr := byName[n]; hr.finished && !hr.failed {
				completed = append(completed, hr)
			}
		}
		halt, why := false, ""
		pct := 0.0
		if worked > 0 {
			pct = float64(failed) * 100 / float64(worked)
		}
		switch {
		case ctx.Err() != nil:
			// Hosts stopped by the interrupt are not a verdict on the release.
			halt, why = true, r.interruptedSummary(batch, byName)
		case failed > 0 && pct > play.MaxFailPercentage:
			halt, why = true, fmt.Sprintf("%d of %d hosts failed (%.0f%%), max_fail_percentage is %g", failed, worked, pct, play.MaxFailPercentage)
		case play.MaxFailures != nil && totalFailed > *play.MaxFailures:
			halt, why = true, fmt.Sprintf("%d hosts failed in this run, max_failures is %d", totalFailed, *play.MaxFailures)
		}
		interrupted := ctx.Err() != nil
		r.emit(events.Event{Kind: events.BatchEnd, Play: play.Name, Batch: num, Batches: len(pp.batches), Failed: failed, Halted: halt, Msg: why})
		if interrupted {
			code, status, msg = exitcode.Interrupted, events.StatusInterrupted, why
			break
		}
		if halt {
			code, status, msg = exitcode.Failed, events.StatusFailed, "rollout halted: "+why
			if play.RollbackCompleted {
				r.rollbackCompleted(ctx, play, completed, num)
			}
			break
		}
		if num == len(pp.batches) {
			continue
		}
		if containsInt(play.PauseAfter, num) || r.pauseReq.Swap(false) {
			if !r.approve(ctx, fmt.Sprintf("batch %d of %d done (%s). Continue with batch %d (%s)?", num, len(pp.batches), strings.Join(batch, ", "), num+1, strings.Join(pp.batches[num], ", "))) {
				if ctx.Err() == nil {
					code, status, msg = exitcode.Failed, events.StatusFailed, fmt.Sprintf("rollout stopped by the operator after batch %d", num)
				}
				break
			}
		}
	}
	if ctx.Err() != nil && code == exitcode.OK {
		code, status = exitcode.Interrupted, events.StatusInterrupted
	}
	if code == exitcode.OK && totalFailed > 0 {
		code, status, msg = exitcode.Failed, events.StatusFailed, fmt.Sprintf("%d hosts failed (within max_fail_percentage %g): the rollout went on", totalFailed, play.MaxFailPercentage)
	}
	if code == exitcode.OK {
		var skipped []string
		for _, h := range pp.hosts {
			if byName[h.Name].conn == nil {
				skipped = append(skipped, h.Name)
			}
		}
		if len(skipped) > 0 {
			// --allow-unreachable: the others are deployed; exit 3 still tells CI these were not.
			code, status, msg = exitcode.Unreachable, events.StatusUnreachable, fmt.Sprintf("deployed to every reachable host; not reached: %s", strings.Join(skipped, ", "))
		}
	}
	runStatus := "ok"
	switch {
	case ctx.Err() != nil:
		runStatus = "interrupted"
	case code != exitcode.OK:
		runStatus = "failed"
	}
	after, cancelAfter := r.cleanup(ctx)
	defer cancelAfter()
	if !r.controllerTasks(after, after, play, play.After, runStatus) && code == exitcode.OK {
		code, status, msg = exitcode.Failed, events.StatusFailed, "an `after` task failed"
	}
	r.emit(events.Event{Kind: events.PlayEnd, Play: play.Name, Status: status})
	return code, status, msg
}

func containsInt(list []int, n int) bool {
	for _, v := range list {
		if v == n {
			return true
		}
	}
	return false
}

func (r *Runner) approve(ctx context.Context, msg string) bool {
	r.emit(events.Event{Kind: events.PauseWait, Msg: msg})
	ok := r.opts.Yes
	if !ok && r.opts.Approve != nil {
		var err error
		ok, err = r.opts.Approve(ctx, msg)
		if err != nil {
			ok = false
		}
	}
	st := events.StatusOK
	if !ok {
		st = events.StatusFailed
	}
	r.emit(events.Event{Kind: events.PauseEnd, Status: st})
	return ok
}

// needsBecome reports whether any task of the play may run through sudo.
func needsBecome(p *Play) bool {
	for _, t := range append(p.HostTasks(), p.Rollback...) {
		if b, _ := p.BecomeFor(t); b {
			return true
		}
	}
	return false
}

// preflight connects to every host in parallel and checks sudo when the
// play needs it, so an unreachable host stops the run before anything changes.
func (r *Runner) preflight(ctx context.Context, play *Play, hosts []*inventory.Host, byName map[string]*hostRun) (int, string) {
	sudo := needsBecome(play) && r.opts.BecomePass == ""
	var mu sync.Mutex
	var bad []string
	forks := max(r.opts.Forks, 32)
	r.parallel(ctx, hosts, forks, func(h *inventory.Host) {
		hr := byName[h.Name]
		if hr.conn != nil {
			return
		}
		ch := h
		if play.RemoteUser != "" && h.User() == "" {
			ch = h.WithUser(play.RemoteUser) // Ansible's remote_user: below ansible_user
		}
		conn, err := r.opts.Connector.Connect(ctx, ch)
		msg := ""
		if err == nil && sudo {
			var res tasks.Result
			res, err = conn.Run(ctx, "sudo -n true", tasks.RunOptions{})
			if err == nil && res.ExitCode != 0 {
				err = fmt.Errorf("sudo -n fails for the login user (%s): give it passwordless sudo, or set FERRY_BECOME_PASSWORD", strings.TrimSpace(string(res.Stderr)))
			}
			msg = "sudo ok"
		}
		if err != nil {
			mu.Lock()
			bad = append(bad, h.Name)
			hr.recap.Unreachable++
			mu.Unlock()
			r.emit(events.Event{Kind: events.Preflight, Host: h.Name, Status: events.StatusUnreachable, Msg: strings.TrimPrefix(err.Error(), h.Name+": ")})
			return
		}
		hr.conn = conn
		r.emit(events.Event{Kind: events.Preflight, Host: h.Name, Status: events.StatusOK, Msg: msg})
	})
	if ctx.Err() != nil {
		return exitcode.Interrupted, "interrupted during preflight"
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		if r.opts.AllowUnreachable {
			r.emit(events.Event{Kind: events.Warning, Msg: fmt.Sprintf("continuing without unreachable hosts (--allow-unreachable): %s", strings.Join(bad, ", "))})
			return exitcode.OK, ""
		}
		return exitcode.Unreachable, fmt.Sprintf("preflight: %d unreachable (%s); nothing was changed. Fix them, narrow with --limit, or pass --allow-unreachable", len(bad), strings.Join(bad, ", "))
	}
	return exitcode.OK, ""
}

// parallel runs fn for each host, at most n at once. Hosts not yet started
// when ctx ends are skipped.
func (r *Runner) parallel(ctx context.Context, hosts []*inventory.Host, n int, fn func(*inventory.Host)) {
	parallel.Each(ctx, len(hosts), n, func(i int) { fn(hosts[i]) })
}

// runBatch runs the batch's hosts in parallel and returns how many failed.
// Hosts that failed preflight (kept out by --allow-unreachable) are not
// part of the batch: they are neither worked on nor counted; it returns the
// failed hosts and the hosts worked on.
func (r *Runner) runBatch(ctx, hard context.Context, play *Play, batch []string, byName map[string]*hostRun, num int) (int, int) {
	hosts := make([]*inventory.Host, 0, len(batch))
	for _, n := range batch {
		if byName[n].conn != nil {
			hosts = append(hosts, byName[n].h)
		}
	}
	var failed atomic.Int32
	// A batch that has started runs to the end on every host in it: hosts
	// waiting for a fork slot still start unless the run is interrupted.
	r.parallel(ctx, hosts, r.opts.Forks, func(h *inventory.Host) {
		if !r.runHost(ctx, hard, play, byName[h.Name], num) {
			failed.Add(1)
		}
	})
	return int(failed.Load()), len(hosts)
}

// runHost runs the host's task list; on failure or interrupt it runs the
// play's rollback. It returns true when the host ended healthy.
func (r *Runner) runHost(ctx, hard context.Context, play *Play, hr *hostRun, batch int) bool {
	start := r.opts.Now()
	list := play.HostTasks()
	names := make([]string, len(list))
	for i, t := range list {
		names[i] = t.DisplayName()
	}
	r.emit(events.Event{Kind: events.HostStart, Host: hr.h.Name, Batch: batch, Tasks: names})
	failMsg := ""
	interrupted := false
	for i, t := range list {
		// After an interrupt a host in flight goes on with its task list
		// until the grace period ends (hard); one that has not started
		// yet is left alone.
		if hard.Err() != nil || (!hr.touched && ctx.Err() != nil) {
			interrupted = true
			break
		}
		if err := r.reconnect(hard, hr, false); err != nil {
			failMsg = fmt.Sprintf("%s: %v", t.DisplayName(), err)
			break
		}
		hr.touched = true
		ok, msg := r.runEntry(hard, play, hr, t, i, batch)
		if !ok {
			failMsg = fmt.Sprintf("%s: %s", t.DisplayName(), msg)
			interrupted = hard.Err() != nil
			break
		}
		if r.hostEnded(hr) {
			break
		}
	}
	if failMsg == "" && !interrupted && len(play.Handlers) > 0 {
		if ok, msg := r.flushHandlers(hard, play, hr, batch); !ok {
			failMsg = msg
		}
	}
	status := events.StatusOK
	switch {
	case failMsg == "" && !interrupted:
		r.hostDone(hard, play, hr, batch)
		hr.finished, hr.finishedAt = true, r.opts.Now()
		if hr.recap.Changed > 0 {
			status = events.StatusChanged
		}
		r.emit(events.Event{Kind: events.HostEnd, Host: hr.h.Name, Batch: batch, Status: status, Duration: r.opts.Now().Sub(start)})
		return true
	case interrupted && !hr.touched:
		return true // never started: untouched, not failed
	}
	hr.failed = true
	if interrupted {
		failMsg = "interrupted: the grace period ended before its task list did"
	}
	rbCtx, cancel := r.cleanup(ctx)
	defer cancel()
	rolled := r.rollback(rbCtx, play, hr, batch)
	status = events.StatusFailed
	if rolled {
		status = events.StatusRolledBack
		failMsg += "; rolled back"
	} else if len(play.Rollback) > 0 {
		failMsg += "; ROLLBACK FAILED"
	}
	if left := r.leftState(hr); left != events.LeftInService {
		failMsg += "; left " + left
	}
	if interrupted {
		status = events.StatusInterrupted
		if rolled {
			status = events.StatusRolledBack
		}
	}
	r.emit(events.Event{Kind: events.HostEnd, Host: hr.h.Name, Batch: batch, Status: status, Msg: failMsg, Duration: r.opts.Now().Sub(start)})
	return false
}

// rollback runs the play's rollback tasks on hr; every task is attempted
// even after one fails, since a partial restore beats stopping halfway.
func (r *Runner) rollback(ctx context.Context, play *Play, hr *hostRun, batch int) bool {
	if len(play.Rollback) == 0 {
		return false
	}
	ok := true
	for i, t := range play.Rollback {
		if ctx.Err() != nil {
			return false
		}
		// A rollback gets reconnection attempts for as long as its budget
		// lasts: a bastion back within the grace period still restores the host.
		if err := r.reconnect(ctx, hr, true); err != nil {
			r.emit(events.Event{Kind: events.Warning, Host: hr.h.Name, Msg: "rollback: " + err.Error()})
			return false
		}
		if good, _ := r.runTask(ctx, play, hr, t, i, batch, true); !good {
			ok = false
		}
	}
	hr.recap.RolledBack = ok
	if ok {
		hr.unknown = "" // the rollback ran whole: the host is what it restored
	}
	return ok
}

// cleanup returns the context for restoring hosts (rollback, after): it
// survives the run's cancellation and is bounded by Grace from now.
func (r *Runner) cleanup(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), r.opts.Grace)
}

// rollbackCompleted rolls back hosts this run already finished, newest first, one at a time.
func (r *Runner) rollbackCompleted(ctx context.Context, play *Play, done []*hostRun, batch int) {
	sort.SliceStable(done, func(i, j int) bool { return done[i].finishedAt.After(done[j].finishedAt) })
	for _, hr := range done {
		r.emit(events.Event{Kind: events.Warning, Host: hr.h.Name, Msg: "rollback_completed: rolling back this finished host"})
		rbCtx, cancel := r.cleanup(ctx)
		ok := r.rollback(rbCtx, play, hr, batch)
		cancel()
		st := events.StatusRolledBack
		if !ok {
			st = events.StatusFailed
		}
		r.emit(events.Event{Kind: events.HostEnd, Host: hr.h.Name, Batch: batch, Status: st, Msg: "rolled back (rollback_completed)"})
	}
}

// controllerTasks runs before/after tasks once, on the controller.
func (r *Runner) controllerTasks(ctx, hard context.Context, play *Play, list []*Task, status string) bool {
	ok := true
	for i, t := range list {
		if ctx.Err() != nil {
			return false
		}
		good, _ := r.runTaskOn(hard, play, nil, t, i, 0, false, status)
		if !good {
			ok = false
			if status == "running" {
				return false // before: stop at the first failure
			}
		}
	}
	return ok
}

func (r *Runner) runTask(ctx context.Context, play *Play, hr *hostRun, t *Task, idx, batch int, rollback bool) (bool, string) {
	if t.RunOnce && hr != nil && !rollback {
		return r.runOnce(ctx, play, hr, t, idx, batch)
	}
	return r.runTaskOn(ctx, play, hr, t, idx, batch, rollback, "running")
}

// runTaskOn runs t on hr (nil: the controller). It returns whether the host
// may go on, and a one-line reason when not.
func (r *Runner) runTaskOn(ctx context.Context, play *Play, hr *hostRun, t *Task, idx, batch int, rollback bool, status string) (bool, string) {
	hostName := ""
	if hr != nil {
		hostName = hr.h.Name
	}
	start := r.opts.Now()
	ev := events.Event{Host: hostName, Task: t.DisplayName(), TaskIndex: idx, Module: t.Module, Rollback: rollback, Batch: batch}
	end := func(st events.Status, msg string) {
		e := ev
		e.Kind, e.Status, e.Msg, e.Duration = events.TaskEnd, st, msg, r.opts.Now().Sub(start)
		if t.NoLog && st != events.StatusSkipped {
			e.Msg = noLogMsg
		}
		r.emit(e)
		if hr != nil {
			switch st {
			case events.StatusOK:
				hr.recap.OK++
			case events.StatusChanged:
				hr.recap.OK++
				hr.recap.Changed++
			case events.StatusFailed:
				hr.recap.Failed++
			case events.StatusSkipped:
				hr.recap.Skipped++
			}
		}
	}
	if !rollback && !Selected(append(append([]string{}, play.Tags...), t.Tags...), r.opts.Tags, r.opts.SkipTags) {
		return true, ""
	}
	vars, err := r.vars(play, hr, batch, status)
	if err == nil {
		vars, err = taskVars(t, vars)
	}
	if err != nil {
		r.emit(withKind(ev, events.TaskStart))
		end(events.StatusFailed, err.Error())
		return false, err.Error()
	}
	if name, err := t.RenderName(vars); err == nil && name != "" {
		ev.Task = name
	}
	r.emit(withKind(ev, events.TaskStart))
	if ok, err := t.When.True(vars); err != nil {
		end(events.StatusFailed, err.Error())
		return false, err.Error()
	} else if !ok {
		end(events.StatusSkipped, "when: condition false")
		return true, ""
	}
	items, err := t.LoopItems(vars)
	if err != nil {
		end(events.StatusFailed, err.Error())
		return false, err.Error()
	}
	var out outcome
	if !t.HasLoop {
		out = r.attempts(ctx, play, hr, t, vars, ev)
	} else {
		results := make([]any, 0, len(items))
		out.status = events.StatusOK
		for _, item := range items {
			loopVar := "item"
			if t.LoopVar != "" {
				loopVar = t.LoopVar
			}
			iv := Merge(vars, map[string]any{loopVar: item})
			o := r.attempts(ctx, play, hr, t, iv, ev)
			results = append(results, o.result)
			for k, v := range o.facts {
				if out.facts == nil {
					out.facts = map[string]any{}
				}
				out.facts[k] = v // set_fact in a loop: the last item wins, as in Ansible
			}
			if o.status == events.StatusChanged && out.status == events.StatusOK {
				out.status = events.StatusChanged
			}
			if o.status == events.StatusFailed {
				out.status, out.msg = events.StatusFailed, fmt.Sprintf("item %s: %s", Text(item), o.msg)
				break
			}
			out.msg = o.msg
		}
		out.result = map[string]any{"results": results, "changed": out.status == events.StatusChanged, "failed": out.status == events.StatusFailed}
		if len(items) == 0 {
			out.status = events.StatusSkipped
			out.msg = "loop: no items"
		}
	}
	if hr != nil && t.Register != "" {
		hr.facts[t.Register] = out.result
	}
	r.notify(hr, t, out.status)
	if hr != nil {
		for k, v := range out.facts {
			hr.facts[k] = v
		}
	}
	if out.status == events.StatusFailed && t.IgnoreErrors {
		end(events.StatusFailed, out.msg+" (ignored)")
		if hr != nil {
			hr.recap.Failed-- // ignored failures do not fail the host
			hr.recap.OK++
		}
		return true, ""
	}
	end(out.status, out.msg)
	if out.status == events.StatusFailed {
		if t.NoLog {
			// The reason goes on into the host's failure line (HostEnd).
			return false, noLogMsg
		}
		return false, out.msg
	}
	return true, ""
}

// noLogMsg replaces what a no_log task would have said in any event.
const noLogMsg = "(output hidden by no_log)"

func withKind(e events.Event, k events.Kind) events.Event {
	e.Kind = k
	return e
}

type outcome struct {
	status events.Status
	msg    string
	result map[string]any
	facts  map[string]any
}

// attempts runs the module with retries/delay/until, changed_when and failed_when.
func (r *Runner) attempts(ctx context.Context, play *Play, hr *hostRun, t *Task, vars map[string]any, ev events.Event) outcome {
	tries := 1
	if t.Retries > 0 {
		tries = 1 + t.Retries
	} else if len(t.Until) > 0 {
		tries = 4 // Ansible's default: 3 retries
	}
	delay := t.Delay
	if delay == 0 && tries > 1 {
		delay = 5 * time.Second
	}
	var o outcome
	for attempt := 1; attempt <= tries; attempt++ {
		o = r.once(ctx, play, hr, t, vars, ev)
		done := o.status != events.StatusFailed
		if len(t.Until) > 0 {
			uv := Merge(vars, map[string]any{"result": o.result})
			if t.Register != "" {
				uv[t.Register] = o.result
			}
			ok, err := t.Until.True(uv)
			if err != nil {
				return outcome{status: events.StatusFailed, msg: err.Error(), result: o.result}
			}
			done = ok
			if !ok && o.status != events.StatusFailed {
				o.status, o.msg = events.StatusFailed, fmt.Sprintf("until: condition still false after %d attempts", attempt)
			}
		}
		if done || attempt == tries || ctx.Err() != nil {
			break
		}
		if hr != nil {
			why := o.msg
			if t.NoLog {
				why = noLogMsg
			}
			r.emit(events.Event{Kind: events.TaskOutput, Host: hr.h.Name, Task: ev.Task, TaskIndex: ev.TaskIndex,
				Line: fmt.Sprintf("attempt %d/%d failed (%s); retrying in %s", attempt, tries, why, delay)})
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
	return o
}

// once runs the module a single time and applies changed_when/failed_when.
func (r *Runner) once(ctx context.Context, play *Play, hr *hostRun, t *Task, vars map[string]any, ev events.Event) outcome {
	mod, ok := tasks.Lookup(t.Module)
	if !ok {
		return outcome{status: events.StatusFailed, msg: fmt.Sprintf("unknown module %q", t.Module)}
	}
	args, err := t.RenderArgs(vars)
	if err != nil {
		return outcome{status: events.StatusFailed, msg: err.Error()}
	}
	env := map[string]string{}
	for _, layer := range []map[string]any{play.Environment, t.Environment} {
		if len(layer) == 0 {
			continue
		}
		rendered, err := RenderValue(layer, vars)
		if err != nil {
			return outcome{status: events.StatusFailed, msg: "environment: " + err.Error()}
		}
		if m, ok := rendered.(map[string]any); ok {
			for k, v := range m {
				env[k] = Text(v)
			}
		}
	}
	become, becomeUser := play.BecomeFor(t)
	th := &tasks.Host{
		Vars:       vars,
		Dir:        t.srcDir(filepath.Dir(r.pb.Path)),
		Check:      r.opts.Check && !readOnly(t),
		Become:     tasks.RunOptions{Become: become || becomeUser != "", BecomeUser: becomeUser, BecomePass: r.opts.BecomePass, Env: env},
		Controller: &tasks.Controller{Approve: r.approver(), AWS: r.opts.AWS},
		Timeout:    t.Timeout,
		Rollback:   ev.Rollback,
		Eval: func(src string) (any, error) {
			e, err := CompileExpr(src, t.Pos)
			if err != nil {
				return nil, err
			}
			return e.Eval(vars)
		},
		Render: func(text string) (string, error) {
			return RenderTemplateFile(text, t.Pos, vars)
		},
	}
	if hr != nil {
		th.Name, th.Conn, th.State = hr.h.Name, hr.conn, hr.state
		if !t.NoLog {
			th.Output = func(line string) {
				r.emit(events.Event{Kind: events.TaskOutput, Host: hr.h.Name, Task: ev.Task, TaskIndex: ev.TaskIndex, Rollback: ev.Rollback, Line: line})
			}
		}
	} else {
		th.Name, th.State = "controller", map[string]any{}
	}
	if th.Output == nil {
		th.Output = func(string) {}
	}
	if t.DelegateTo != "" {
		if err := r.delegate(ctx, t, vars, th); err != nil {
			return outcome{status: events.StatusFailed, msg: err.Error()}
		}
	}
	if !mod.Spec().Controller && th.Conn == nil {
		return outcome{status: events.StatusFailed, msg: fmt.Sprintf("module %s runs on hosts; it cannot be used in before/after", t.Module)}
	}
	if !th.Check {
		th.Journal = r.elbJournal(hr, args, vars)
		if c, ok := intentOf(t.Module, args, vars, th.Become.Become, becomeUser); ok {
			if err := r.intent(hr, c); err != nil {
				return outcome{status: events.StatusFailed, msg: err.Error()}
			}
		}
	}
	tctx := ctx
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeout(ctx, t.Timeout)
		defer cancel()
	}
	res, err := tasks.Call(tctx, mod, th, args)
	if !th.Check {
		r.settle(hr, t.Module, args, err != nil || res.Failed)
	}
	if hr != nil && connectionLost(err, hr.conn) {
		// Whatever the task did on the host, nobody saw it end.
		hr.unknown = "connection lost during " + ev.Task
		if !strings.Contains(err.Error(), "outcome is unknown") {
			err = fmt.Errorf("%w: outcome unknown", err)
		}
	}
	o := outcome{result: res.Result, facts: res.Facts, msg: res.Msg}
	if o.result == nil {
		o.result = map[string]any{}
	}
	switch {
	case err != nil:
		o.status = events.StatusFailed
		o.msg = err.Error()
		if errors.Is(err, context.DeadlineExceeded) && t.Timeout > 0 && tctx.Err() != nil {
			o.msg = fmt.Sprintf("timed out after %s", t.Timeout)
		}
	case res.Failed:
		o.status = events.StatusFailed
	case res.Skipped:
		o.status = events.StatusSkipped
	case res.Changed:
		o.status = events.StatusChanged
	default:
		o.status = events.StatusOK
	}
	o.result["changed"] = o.status == events.StatusChanged
	o.result["failed"] = o.status == events.StatusFailed
	o.result["skipped"] = o.status == events.StatusSkipped
	if o.msg != "" {
		o.result["msg"] = o.msg
	}
	if o.status == events.StatusSkipped {
		return o
	}
	cv := Merge(vars, map[string]any{"result": o.result})
	if t.Register != "" {
		cv[t.Register] = o.result
	}
	if len(t.ChangedWhen) > 0 && err == nil {
		ch, cerr := t.ChangedWhen.True(cv)
		if cerr != nil {
			return outcome{status: events.StatusFailed, msg: cerr.Error(), result: o.result}
		}
		if o.status != events.StatusFailed {
			o.status = events.StatusOK
			if ch {
				o.status = events.StatusChanged
			}
		}
	}
	if len(t.FailedWhen) > 0 && err == nil {
		f, ferr := t.FailedWhen.True(cv)
		if ferr != nil {
			return outcome{status: events.StatusFailed, msg: ferr.Error(), result: o.result}
		}
		if f {
			o.status = events.StatusFailed
			if o.msg == "" {
				o.msg = "failed_when: condition true"
			}
		} else if o.status == events.StatusFailed {
			o.status = events.StatusOK
		}
	}
	return o
}

// readOnly reports whether t declares itself a probe (`changed_when: false`):
// such a task changes nothing, so it runs even under --check, and the tasks
// that depend on what it read can say truthfully what they would do.
func readOnly(t *Task) bool {
	return len(t.ChangedWhen) == 1 && strings.TrimSpace(t.ChangedWhen[0].Src) == "false"
}

func (r *Runner) approver() func(ctx context.Context, msg string) (bool, error) {
	return func(ctx context.Context, msg string) (bool, error) {
		return r.approve(ctx, msg), nil
	}
}

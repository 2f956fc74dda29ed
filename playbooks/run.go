package playbooks

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/template"
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
	// CloudWatch answers verify gates' alarms and metrics checks.
	CloudWatch GateAWS
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
	magic    atomic.Pointer[playMagic]
	flow     *flowState // handlers, run_once, delegation (flow.go)
	// invChanges: what group_by/add_host (Spec.Inventory) did this play,
	// applied to the inventory before the next play is planned again.
	invChanges []tasks.InventoryChange

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
	// gathered: the host's facts (gather_facts), once per run; withFacts:
	// its inventory variables with the facts as ansible_NAME and ansible_facts.
	gathered, withFacts map[string]any
	recap               events.HostRecap
	// touched: a task that may change the host started; finished: its task list completed.
	touched, finished, failed bool
	finishedAt                time.Time
	journal                   journal // changes still open on the host (guarded by Runner.mu)
	unknown                   string  // why the host's state is unknown (a task's connection dropped); "" when known
	// failedTask and failedResult are the last failure, for a rescue's
	// ansible_failed_task and ansible_failed_result.
	failedTask, failedResult map[string]any
	staging                  bool // running the play's stage list
	staged                   bool // its stage list ended ok (or a resumed run's had)
	// The host's time out of service (guarded by Runner.mu): since when a
	// journaled change is open, and the total of the closed stretches.
	outSince time.Time
	outFor   time.Duration
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

// Run runs the playbook. Cancelling ctx is the graceful abort of the SPEC:
// no new task starts, running tasks get Grace, hosts in flight roll back,
// the recap is emitted and the exit code is 130.
func (r *Runner) Run(ctx context.Context) Result {
	plans, err := r.plan()
	start := r.opts.Now()
	r.emit(events.Event{Kind: events.RunStart, Playbook: r.opts.Playbook, Env: r.opts.Env, Version: r.opts.Version,
		Inventory: r.opts.Source, User: r.opts.User, Origin: r.opts.Origin, Check: r.opts.Check, Hosts: r.allHosts(plans),
		Digest: PlaybookDigest(r.pb.Path), ResumeOf: r.opts.Resume.ID(), Extra: PublicExtra(r.pb, r.opts.Extra)})
	if err != nil {
		return r.finish(exitcode.Invalid, events.StatusFailed, err.Error(), start)
	}
	if msg := r.unansweredPrompts(); msg != "" {
		return r.finish(exitcode.Invalid, events.StatusFailed, msg, start)
	}
	r.builtins = r.makeBuiltins()
	if err := r.pb.MissingLocalFiles(r.localVars(plans), r.opts.Tags, r.opts.SkipTags); err != nil {
		return r.finish(exitcode.Invalid, events.StatusFailed, err.Error(), start)
	}

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
	for i := 0; i < len(plans); i++ {
		if code != exitcode.OK {
			break
		}
		if plans[i].empty {
			// No host matched, even after group_by/add_host: skipped as in
			// Ansible, but said, so a run that did nothing does not look done.
			what := "no host matched"
			if r.opts.Limit != "" {
				what = fmt.Sprintf("no host matched within the limit %q", r.opts.Limit)
			}
			r.emit(events.Event{Kind: events.Warning, Msg: fmt.Sprintf("play %q (hosts: %s): %s: skipped", plans[i].play.Name, plans[i].play.Hosts, what)})
			continue
		}
		c, s, m := r.runPlay(ctx, hard, plans[i])
		if c != exitcode.OK {
			code, status, msg = c, s, m
			break
		}
		changed, err := r.applyInventory()
		r.sharePlayFacts()
		if err != nil || changed {
			// Later plays' hosts: patterns see the groups and hosts added.
			again, perr := r.plan()
			if err == nil {
				err = perr
			}
			if err != nil {
				code, status, msg = exitcode.Invalid, events.StatusFailed, err.Error()
				break
			}
			plans = append(plans[:i+1:i+1], again[i+1:]...)
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

// localVars gives each play's hosts' variables as the play's first batch
// will see them, for the check of controller-side files before preflight.
func (r *Runner) localVars(plans []playPlan) func(*Play) []map[string]any {
	return func(play *Play) []map[string]any {
		var out []map[string]any
		for _, pp := range plans {
			if pp.play != play {
				continue
			}
			for _, h := range pp.hosts {
				// A bare hostRun: the recap lists only hosts a play started on.
				if v, err := r.vars(play, &hostRun{h: h, facts: map[string]any{}}, 1, "running"); err == nil {
					out = append(out, v)
				}
			}
		}
		return out
	}
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
		r.mu.Lock()
		rc.OutOfService = hr.outFor
		if !hr.outSince.IsZero() {
			rc.OutOfService += r.opts.Now().Sub(hr.outSince) // still out: until now
		}
		r.mu.Unlock()
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
		out = append(out, template.Text(x))
	}
	return out
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
	if h, _ := inv.Host("localhost"); inv.Implicit(h) {
		hostvars[h.Name] = h.Vars // Ansible's implicit localhost answers in hostvars too
	}
	envVars := map[string]any{}
	for _, kv := range r.opts.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok && !template.CredentialEnv(k) {
			envVars[k] = v
		}
	}
	b := map[string]any{
		"env":      r.opts.Env,
		"env_vars": envVars,
		"groups":   groups,
		"hostvars": hostvars,
	}
	r.runMagic(b)
	return b
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
	r.magic.Load().set(b)
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
		if hr.withFacts != nil {
			inv = hr.withFacts
		}
		b["host"] = hr.h.Vars
		b["inventory_hostname"] = hr.h.Name
		b["inventory_hostname_short"], _, _ = strings.Cut(hr.h.Name, ".")
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

// cleanup returns the context for restoring hosts (rollback, after): it
// survives the run's cancellation and is bounded by Grace from now.
func (r *Runner) cleanup(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), r.opts.Grace)
}

// applyInventory applies what group_by and add_host did to the run's
// inventory, and reports whether there was anything.
func (r *Runner) applyInventory() (bool, error) {
	r.mu.Lock()
	changes := r.invChanges
	r.invChanges = nil
	r.mu.Unlock()
	inv := r.opts.Inventory
	for _, c := range changes {
		inv.AddHost(&inventory.Host{Name: c.Host, Vars: c.Vars}, c.Groups...)
		for _, g := range c.Groups {
			for _, p := range c.Parents {
				if err := inv.AddChild(p, g); err != nil {
					return true, fmt.Errorf("group_by: parent %q of %q: %w: pick parents that are not children of the group", p, g, err)
				}
			}
		}
	}
	return len(changes) > 0, nil
}

// shareFacts makes gathered facts host variables below the play's vars (as
// Ansible's host facts are), and visible to other hosts through hostvars.
// It runs between preflight and the first task, when no task reads them.
func (r *Runner) shareFacts(hosts []*inventory.Host, byName map[string]*hostRun) {
	hv, _ := r.builtins["hostvars"].(map[string]any)
	next := make(map[string]any, len(hv))
	for k, v := range hv {
		next[k] = v
	}
	for _, h := range hosts {
		hr := byName[h.Name]
		if hr.gathered == nil {
			continue
		}
		hr.withFacts = Merge(h.Vars, tasks.FactVars(nil, hr.gathered))
		next[h.Name] = hr.withFacts
	}
	if r.builtins != nil {
		r.builtins["hostvars"] = next
	}
}

// sharePlayFacts makes what each host's tasks set (set_fact, register)
// visible to later plays through hostvars, as in Ansible, where a first
// play on localhost leaves its findings in hostvars['localhost']; hosts
// add_host made join hostvars too. It runs between plays, when no task
// reads hostvars.
func (r *Runner) sharePlayFacts() {
	if r.builtins == nil {
		return
	}
	hv, _ := r.builtins["hostvars"].(map[string]any)
	next := make(map[string]any, len(hv))
	for k, v := range hv {
		next[k] = v
	}
	if inv := r.opts.Inventory; inv != nil {
		for _, h := range inv.Hosts {
			if _, ok := next[h.Name]; !ok {
				next[h.Name] = h.Vars
			}
		}
	}
	r.mu.Lock()
	for name, hr := range r.hosts {
		if len(hr.facts) == 0 {
			continue
		}
		base := hr.h.Vars
		if hr.withFacts != nil {
			base = hr.withFacts
		}
		next[name] = Merge(base, hr.facts)
	}
	r.mu.Unlock()
	r.builtins["hostvars"] = next
}

// unansweredPrompts names the vars_prompt variables with no default that
// -e does not give: a run does not stop to ask.
func (r *Runner) unansweredPrompts() string {
	var missing []string
	for _, p := range r.pb.Plays {
		for _, pr := range p.Prompts {
			if _, ok := r.opts.Extra[pr.Name]; !ok && !pr.HasDefault {
				missing = append(missing, pr.Name)
			}
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("vars_prompt: no value for %s: pass -e %s=...", strings.Join(missing, ", "), missing[0])
}

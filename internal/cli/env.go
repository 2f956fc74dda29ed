package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/environments"
	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/parallel"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/playbooks"
	"github.com/ferrydeploy/ferry/ssh"
	"github.com/ferrydeploy/ferry/tasks"
)

// LockFlags tune the deploy lock of a run.
type LockFlags struct {
	LockWait    Duration `env:"FERRY_LOCK_WAIT" default:"0" placeholder:"DURATION" help:"Queue this long for the environment's deploy lock when another run holds it (default: exit 5 at once)."`
	LockTimeout Duration `env:"FERRY_LOCK_TIMEOUT" default:"2m" placeholder:"DURATION" help:"A lock whose holder sent no heartbeat for this long is stale and taken over (with a warning)."`
}

// loadConfig reads --config, else ./ferry.yml when present; nil when there is none.
func (g *Globals) loadConfig() (*environments.Config, error) {
	path := g.Config
	if path == "" {
		if _, err := os.Stat(environments.DefaultFile); err != nil {
			return nil, nil
		}
		path = environments.DefaultFile
	}
	return environments.Load(path)
}

// resolveTarget turns --env/--branch into a target through ferry.yml.
// haveInventory: -i was given, so no branch is guessed from CI or git.
// guard: the command changes hosts (protected environments need --yes
// without a terminal).
func (g *Globals) resolveTarget(env, branch string, haveInventory, guard, yes bool) (*environments.Target, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	return environments.Resolve(g.ctx, cfg, environments.Request{
		Env: env, Branch: branch, Detect: !haveInventory, Guard: guard, Yes: yes,
		Interactive: isTerminal(os.Stdin) && isTerminal(os.Stdout),
		Getenv:      g.env.Get,
	})
}

// envHosts is a command's environment resolved to an inventory: the
// environment's own hosts (its inventory and limit), and those of them the
// command works on (narrowed by -l).
type envHosts struct {
	target   *environments.Target // nil: no environment
	inv      *inventory.Inventory
	all      []*inventory.Host // every host of the environment: the lock lives on these
	selected []*inventory.Host // after -l
	limit    string            // a pattern naming exactly the selected hosts ("" for all)
}

// name is the environment's name ("default" without one: the lock still needs a name).
func (e *envHosts) name() string {
	if e.target != nil && e.target.Name != "" {
		return e.target.Name
	}
	return "default"
}

// loadEnv loads the target's inventory (or -i, which wins) with env and the
// branch's groups available to inventory options, and applies the
// environment's limit and -l.
func (f *HostFlags) loadEnv(ctx context.Context, env environ, t *environments.Target) (*envHosts, error) {
	sources := f.Inventory
	opts := inventory.Options{PlaybookDir: f.playbookDir, Env: env.Lookup}
	if t != nil {
		if len(sources) == 0 {
			sources = t.Inventory
		}
		opts.Vars = t.InventoryVars()
	}
	if len(sources) == 0 {
		return nil, diag.Invalidf("no inventory: pass -i FILE (an Ansible YAML/INI inventory or an aws_ec2 file), --env NAME with an inventory in ferry.yml, or set FERRY_INVENTORY")
	}
	inv, err := inventory.Load(ctx, sources, opts)
	if err != nil {
		return nil, err
	}
	e := &envHosts{target: t, inv: inv}
	envLimit := "all"
	if t != nil && t.Limit != "" {
		envLimit = t.Limit
	}
	e.all, err = inv.Match(envLimit)
	if err != nil || len(e.all) == 0 {
		what := "the inventory"
		if t != nil {
			what = fmt.Sprintf("environment %s (inventory %s, limit %q)", t.Name, strings.Join(sources, ", "), envLimit)
		}
		if err == nil {
			err = errors.New("no host")
		}
		return nil, diag.Invalidf("%s selects no host: %v; check it with `ferry inventory --env NAME --graph`", what, err)
	}
	e.selected = e.all
	if f.Limit != "" {
		lim, err := inv.Match(f.Limit)
		if err != nil {
			return nil, err
		}
		keep := map[string]bool{}
		for _, h := range lim {
			keep[h.Name] = true
		}
		var out []*inventory.Host
		for _, h := range lim {
			if inv.Implicit(h) { // -l localhost: the controller, outside every environment
				out = append(out, h)
			}
		}
		for _, h := range e.all {
			if keep[h.Name] && !inv.Implicit(h) {
				out = append(out, h)
			}
		}
		if len(out) == 0 {
			return nil, diag.Invalidf("--limit %q leaves no host of %s: check the pattern with `ferry inventory --graph`", f.Limit, e.name())
		}
		e.selected = out
	}
	if len(e.selected) != len(inv.Hosts) || slices.ContainsFunc(e.selected, inv.Implicit) {
		e.limit = strings.Join(names(e.selected), ":")
		if f.Limit == "" {
			// The environment's limit chooses among its hosts; the implicit
			// localhost (the controller) is none of them, so a play on
			// localhost still runs. -l, as Ansible's --limit, can leave it out.
			if h, _ := inv.Host("localhost"); inv.Implicit(h) {
				e.limit += ":" + h.Name
			}
		}
	}
	return e, nil
}

// become is how ferry reaches root on hosts for its own files.
func (g *Globals) become() environments.RunOptions {
	return becomeWith(g.env.Get("FERRY_BECOME_PASSWORD"))
}

func becomeWith(pass string) environments.RunOptions {
	return environments.RunOptions{Become: true, BecomePass: pass}
}

// rootConn adapts a host's connection to what environments runs its lock
// and release record commands on.
type rootConn struct{ c tasks.Conn }

func (rc rootConn) Run(ctx context.Context, cmd string, opts environments.RunOptions) (environments.Result, error) {
	res, err := rc.c.Run(ctx, cmd, ssh.RunOptions{Become: opts.Become, BecomePass: opts.BecomePass, Stdin: opts.Stdin})
	return environments.Result{ExitCode: res.ExitCode, Stdout: res.Stdout, Stderr: res.Stderr}, err
}

// streamer is a connection that can keep a command running (an SSH one):
// the lock's holder.
type streamer interface {
	Start(ctx context.Context, cmd string, opts ssh.RunOptions) (*ssh.Stream, error)
}

// Start starts the lock's holder on the connection, when it can keep one.
func (rc rootConn) Start(ctx context.Context, cmd string, opts environments.RunOptions) (environments.Stream, error) {
	st, ok := rc.c.(streamer)
	if !ok {
		return nil, environments.ErrNoStream
	}
	s, err := st.Start(ctx, cmd, ssh.RunOptions{Become: opts.Become, BecomePass: opts.BecomePass})
	if err != nil {
		return nil, err
	}
	return sshStream{s}, nil
}

// sshStream is an SSH stream as environments sees one.
type sshStream struct{ *ssh.Stream }

func (s sshStream) Wait(ctx context.Context) (environments.Result, error) {
	res, err := s.Stream.Wait(ctx)
	return environments.Result{ExitCode: res.ExitCode, Stdout: res.Stdout, Stderr: res.Stderr}, err
}

// lockHeldError makes a held lock exit 5 through the runner.
type lockHeldError struct{ *environments.HeldError }

func (lockHeldError) LockHeld() bool { return true }

// lockScope is what the deploy lock covers: the environment's hosts that
// the playbook's plays can target (their hosts: patterns within the
// environment's limit, before -l, so runs with different -l still meet).
// Hosts no play targets (a bastion, a database) are never locked. Plays
// whose hosts exist only once an earlier play ran (group_by, add_host)
// add nothing; when no play names a host yet, the run's hosts are used.
func (e *envHosts) lockScope(pb *playbooks.Playbook) []*inventory.Host {
	inEnv := map[string]bool{}
	for _, h := range e.all {
		inEnv[h.Name] = true
	}
	seen := map[string]bool{}
	var out []*inventory.Host
	for _, p := range pb.Plays {
		hs, err := e.inv.Match(p.Hosts)
		if err != nil {
			continue
		}
		for _, h := range hs {
			// The implicit localhost (not in the inventory) is no host of
			// the environment: a play on it looks things up or builds on
			// the controller, and locking it would ask every such run for
			// root on the controller. A listed ansible_connection=local
			// host is locked like any other.
			if inEnv[h.Name] && !e.inv.Implicit(h) && !seen[h.Name] {
				seen[h.Name] = true
				out = append(out, h)
			}
		}
	}
	if len(out) == 0 {
		for _, h := range e.selected {
			if !e.inv.Implicit(h) {
				out = append(out, h)
			}
		}
	}
	return out
}

// runHooks wires the environment into a run: the deploy lock (on the
// environment's hosts the playbook can target) and the release record each
// finished host keeps, written when the lock is released, in the same
// command.
func (c *RunCmd) runHooks(pb *playbooks.Playbook, e *envHosts, conn *connector, opts *playbooks.Options, stop context.CancelFunc) {
	if c.Check {
		return // nothing changes: no lock, no release
	}
	emit := func(ev events.Event) {
		ev.RunID = opts.RunID
		if ev.Time.IsZero() {
			ev.Time = time.Now()
		}
		opts.Sink.Emit(ev)
	}
	var mu sync.Mutex
	records := map[string][]environments.Release{} // by host, written at the release of the lock
	targets := map[string]*inventory.Host{}
	// writeRecords records the releases of hosts the lock does not cover
	// (added by add_host): a command of their own.
	writeRecords := func(ctx context.Context, recs map[string][]environments.Release, locked map[string]bool) {
		var rest []string
		for name := range recs {
			if !locked[name] {
				rest = append(rest, name)
			}
		}
		parallel.Each(ctx, len(rest), 0, func(i int) {
			name := rest[i]
			for _, rel := range recs[name] {
				if err := environments.WriteRelease(ctx, hostConn{conn, targets[name]}, rel, becomeWith(opts.BecomePass)); err != nil {
					emit(events.Event{Kind: events.Warning, Host: name, Msg: fmt.Sprintf("deployed, but its release state was not recorded: %v", err)})
				}
			}
		})
	}
	opts.Lock = func(ctx context.Context) (func(context.Context), error) {
		scope := e.lockScope(pb)
		if len(scope) == 0 { // only the implicit localhost: nothing of the environment to hold
			return func(context.Context) {}, nil
		}
		reached := make([]bool, len(scope))
		parallel.Each(ctx, len(scope), max(c.Forks, 32), func(i int) {
			_, err := conn.Connect(ctx, scope[i])
			reached[i] = err == nil
		})
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var hosts []environments.LockHost
		var skipped []string
		for i, h := range scope {
			if !reached[i] {
				skipped = append(skipped, h.Name)
				continue
			}
			hosts = append(hosts, environments.LockHost{Name: h.Name, Conn: hostConn{conn, h}})
		}
		if len(hosts) == 0 {
			return nil, fmt.Errorf("no host of %s is reachable to hold its lock", e.name())
		}
		if len(skipped) > 0 {
			emit(events.Event{Kind: events.Warning, Msg: fmt.Sprintf("deploy lock: unreachable, not locked: %s", strings.Join(skipped, ", "))})
		}
		started := time.Now()
		l, err := environments.Acquire(ctx, hosts, environments.LockOptions{
			Info: environments.LockInfo{Env: e.name(), Holder: opts.User, Origin: opts.Origin, RunID: opts.RunID,
				Version: opts.Version, Playbook: opts.Playbook},
			Timeout: timeDuration(c.LockTimeout),
			Wait:    timeDuration(c.LockWait),
			Become:  becomeWith(opts.BecomePass),
			Warn:    func(msg string) { emit(events.Event{Kind: events.Warning, Msg: msg}) },
			Lost:    func(error) { stop() },
			Resumes: opts.Resume.ID(),
		})
		if err != nil {
			var held *environments.HeldError
			var denied *environments.PrivilegeError
			switch {
			case errors.As(err, &held):
				return nil, lockHeldError{held}
			case errors.As(err, &denied):
				return nil, &diag.Invalid{Err: err} // exit 4: nothing was changed, the host needs sudo
			}
			return nil, err
		}
		emit(events.Event{Kind: events.Lock, Env: e.name(), Status: events.StatusOK, Duration: time.Since(started),
			Msg: fmt.Sprintf("%s locked on %d hosts (run %s)", e.name(), len(hosts), opts.RunID)})
		return func(ctx context.Context) {
			locked := map[string]bool{}
			for _, h := range hosts {
				locked[h.Name] = true
			}
			mu.Lock()
			recs := records
			records = map[string][]environments.Release{}
			mu.Unlock()
			started := time.Now()
			if err := l.Release(ctx, recs); err != nil {
				emit(events.Event{Kind: events.Warning, Msg: fmt.Sprintf("deploy lock not released everywhere, or release state not recorded: %v; `ferry lock release --env %s` removes a lock left behind", err, e.name())})
			} else {
				emit(events.Event{Kind: events.Lock, Env: e.name(), Status: events.StatusSkipped, Duration: time.Since(started), Msg: e.name() + " released"})
			}
			writeRecords(ctx, recs, locked)
		}, nil
	}
	opts.HostDone = func(ctx context.Context, d playbooks.HostDone) error {
		if e.inv.Implicit(d.Host) {
			return nil // the controller as Ansible's implicit localhost: no release of the environment
		}
		mu.Lock()
		defer mu.Unlock()
		version := template.Text(d.Vars["version"])
		if version == "" {
			version = opts.Version
		}
		app, _ := d.Vars["app"].(string)
		// Recorded when the lock is released, on the round trip that
		// releases it: no command of its own on the host.
		targets[d.Host.Name] = d.Host
		records[d.Host.Name] = append(records[d.Host.Name], environments.Release{
			App: environments.AppName(app, c.Playbook), Env: e.name(), Version: version, RunID: opts.RunID,
			User: opts.User, Origin: opts.Origin, Playbook: c.Playbook, Time: time.Now().UTC(), Extra: d.Extra,
		})
		return nil
	}
}

// prepareEnv resolves the run's environment: guard rails, the
// environment's inventory, limit and variables (under -e).
func (c *RunCmd) prepareEnv(g *Globals, extra map[string]any) (*envHosts, error) {
	t, err := g.resolveTarget(c.Env, c.Branch, len(c.Inventory) > 0, true, c.Yes)
	if err != nil {
		return nil, err
	}
	c.playbookDir = filepath.Dir(c.Playbook) // its group_vars/ and host_vars/ apply too
	e, err := c.loadEnv(g.ctx, g.env, t)
	if err != nil {
		return nil, err
	}
	if t != nil {
		c.Env = t.Name
		if t.Branch != "" {
			c.Branch = t.Branch
		}
		for k, v := range t.Vars {
			if _, set := extra[k]; !set {
				extra[k] = v
			}
		}
	}
	c.Limit = e.limit
	return e, nil
}

// load is the inventory of the environment resolved as run resolves it
// (--env, --branch, else the CI's or git's branch through ferry.yml's
// personal pattern when there is no -i), else of -i; with an environment,
// keep names its hosts (its limit applied).
func (c *InventoryCmd) load(g *Globals, hf *HostFlags) (*inventory.Inventory, hostSet, error) {
	t, err := g.resolveTarget(c.Env, c.Branch, len(hf.Inventory) > 0, false, false)
	if err != nil {
		return nil, nil, err
	}
	if t == nil {
		inv, err := hf.loadInventory(g.ctx, g.env)
		return inv, nil, err
	}
	e, err := hf.loadEnv(g.ctx, g.env, t)
	if err != nil {
		return nil, nil, err
	}
	keep := hostSet{}
	for _, h := range e.all {
		keep[h.Name] = true
	}
	return e.inv, keep, nil
}

// hostSet narrows `ferry inventory` output to an environment's hosts; nil keeps all.
type hostSet map[string]bool

func (k hostSet) has(h string) bool { return k == nil || k[h] }

// graph drops the lines of hosts outside the set from inventory.Graph output.
func (k hostSet) graph(s string) string {
	if k == nil {
		return s
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		name := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line), "|- "))
		if name != "" && !strings.HasPrefix(name, "@") && !k[name] {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// list drops hosts outside the set from inventory.ListJSON output.
func (k hostSet) list(b []byte) ([]byte, error) {
	if k == nil {
		return b, nil
	}
	var m map[string]map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("filter inventory: %w", err)
	}
	for name, g := range m {
		if name == "_meta" {
			if hv, ok := g["hostvars"].(map[string]any); ok {
				for h := range hv {
					if !k[h] {
						delete(hv, h)
					}
				}
			}
			continue
		}
		if hs, ok := g["hosts"].([]any); ok {
			var kept []any
			for _, h := range hs {
				if s, _ := h.(string); k[s] {
					kept = append(kept, h)
				}
			}
			if len(kept) == 0 {
				delete(g, "hosts")
			} else {
				g["hosts"] = kept
			}
		}
	}
	return json.MarshalIndent(m, "", "    ")
}

// hostConn runs each command on the host's current connection (the
// manager's, made again after a drop), so a lock taken before a link
// dropped is still heartbeated and released over the new one.
type hostConn struct {
	c *connector
	h *inventory.Host
}

func (hc hostConn) Run(ctx context.Context, cmd string, opts environments.RunOptions) (environments.Result, error) {
	cl, err := hc.c.Connect(ctx, hc.h) // ansible_connection=local: the controller holds its own lock
	if err != nil {
		return environments.Result{}, err
	}
	return rootConn{cl}.Run(ctx, cmd, opts)
}

func (hc hostConn) Start(ctx context.Context, cmd string, opts environments.RunOptions) (environments.Stream, error) {
	cl, err := hc.c.Connect(ctx, hc.h)
	if err != nil {
		return nil, err
	}
	return rootConn{cl}.Start(ctx, cmd, opts)
}

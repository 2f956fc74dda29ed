package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/environments"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/playbooks"
)

// EnvFlags name the environment of a read-only command.
type EnvFlags struct {
	Env    string `env:"FERRY_ENV" placeholder:"NAME" help:"Environment from ferry.yml."`
	Branch string `env:"FERRY_BRANCH" placeholder:"BRANCH" help:"Git branch: its personal environment (default: the CI's branch variable, else git)."`
}

// StatusCmd shows what runs where.
type StatusCmd struct {
	HostFlags
	EnvFlags
	Output    string `short:"o" env:"FERRY_STATUS_OUTPUT" enum:"table,json" default:"table" help:"table or json."`
	RecordDir string `env:"FERRY_RECORD_DIR" default:".ferry/runs" placeholder:"DIR" help:"Run records, read for what runs that died left out of service."`
}

// hostStatus is one host's row of `ferry status`.
type hostStatus struct {
	Host     string                          `json:"host"`
	Error    string                          `json:"error,omitempty"`
	Releases map[string]environments.Release `json:"releases"`
	Drift    []string                        `json:"drift,omitempty"` // apps on which the host differs from the majority
	LB       []awsapi.LBState                `json:"load_balancers,omitempty"`
	OutOfLB  bool                            `json:"out_of_service,omitempty"`
	InstID   string                          `json:"instance_id,omitempty"`
}

// envStatus is the whole answer of `ferry status`.
type envStatus struct {
	Env      string                  `json:"env"`
	Hosts    []*hostStatus           `json:"hosts"`
	Versions map[string]string       `json:"versions"` // app → majority version
	Locks    []environments.LockInfo `json:"locks,omitempty"`
	LBError  string                  `json:"load_balancer_error,omitempty"`
	// LeftOut: what runs that died (SIGKILL, lost runner) left undone, by
	// their journals; `ferry run --resume` restores it.
	LeftOut []playbooks.LeftOut `json:"left_out_by_dead_runs,omitempty"`
}

// readEnvStatus reads every selected host's state in parallel, one round trip each.
func readEnvStatus(g *Globals, hf *HostFlags, e *envHosts) (*envStatus, error) {
	conn, err := hf.newConnector(g, fewCommands)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	st := &envStatus{Env: e.name(), Versions: map[string]string{}}
	rows := make([]*hostStatus, len(e.selected))
	var states []environments.HostState
	var mu sync.Mutex
	idx := map[string]int{}
	for i, h := range e.selected {
		idx[h.Name] = i
	}
	forEach(g.ctx, e.selected, hf.Forks, func(ctx context.Context, h *inventory.Host) {
		row := &hostStatus{Host: h.Name}
		rows[idx[h.Name]] = row
		if id, _ := h.Vars[awsapi.VarInstanceID].(string); id != "" {
			row.InstID = id
		}
		cl, err := conn.Connect(ctx, h) // local hosts too
		if err != nil {
			row.Error = "unreachable: " + trimHost(err, h.Name)
			return
		}
		hs, err := environments.ReadState(ctx, h.Name, rootConn{cl}, g.become())
		if err != nil {
			row.Error = trimHost(err, h.Name)
			return
		}
		row.Releases = hs.Releases
		mu.Lock()
		states = append(states, hs)
		for _, l := range hs.Locks {
			if l.Env == e.name() {
				st.Locks = append(st.Locks, l)
			}
		}
		mu.Unlock()
	})
	if g.ctx.Err() != nil {
		return nil, exit(exitcode.Interrupted, errors.New("interrupted"))
	}
	apps := map[string]bool{}
	for _, s := range states {
		for a := range s.Releases {
			apps[a] = true
		}
	}
	for a := range apps {
		maj, drifted := environments.Drift(states, a)
		st.Versions[a] = maj
		for _, h := range drifted {
			if i, ok := idx[h]; ok && rows[i].Error == "" {
				rows[i].Drift = append(rows[i].Drift, a)
			}
		}
	}
	for _, r := range rows {
		sort.Strings(r.Drift)
	}
	sort.Slice(st.Locks, func(i, j int) bool { return st.Locks[i].Host < st.Locks[j].Host })
	st.Hosts = rows
	if err := lbStates(g.ctx, g.env, e.selected, rows); err != nil {
		st.LBError = err.Error()
	}
	return st, nil
}

// lbStates fills the load balancer state of EC2 hosts (those with an
// instance_id), a few calls per region.
func lbStates(ctx context.Context, env environ, hosts []*inventory.Host, rows []*hostStatus) error {
	type key struct{ region, account string }
	byRegion := map[key][]string{}
	for _, h := range hosts {
		id, _ := h.Vars[awsapi.VarInstanceID].(string)
		if id == "" {
			continue
		}
		region, _ := h.Vars[awsapi.VarRegion].(string)
		account, _ := h.Vars[awsapi.VarAccountID].(string)
		byRegion[key{region, account}] = append(byRegion[key{region, account}], id)
	}
	if len(byRegion) == 0 {
		return nil
	}
	f, err := awsapi.NewFactory(ctx, awsapi.Config{Env: env.Lookup})
	if err != nil {
		return err
	}
	all := map[string][]awsapi.LBState{}
	var errs []error
	for k, ids := range byRegion {
		m, err := f.LoadBalancerStates(ctx, k.region, k.account, ids)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for id, s := range m {
			all[id] = s
		}
	}
	for _, r := range rows {
		if r.InstID == "" {
			continue
		}
		r.LB = all[r.InstID]
		out := len(r.LB) == 0
		for _, s := range r.LB {
			if !s.InService() {
				out = true
			}
		}
		r.OutOfLB = out
	}
	return errors.Join(errs...)
}

// Run implements the command.
func (c *StatusCmd) Run(g *Globals) error {
	t, err := g.resolveTarget(c.Env, c.Branch, len(c.Inventory) > 0, false, false)
	if err != nil {
		return err
	}
	e, err := c.loadEnv(g.ctx, g.env, t)
	if err != nil {
		return err
	}
	st, err := readEnvStatus(g, &c.HostFlags, e)
	if err != nil {
		return err
	}
	st.LeftOut, _ = playbooks.LeftByDeadRuns(c.RecordDir, st.Env) // no records: nothing to say
	if c.Output == "json" {
		b, _ := json.MarshalIndent(st, "", "  ")
		fmt.Fprintf(g.stdout, "%s\n", b)
	} else {
		printStatus(g.stdout, st)
	}
	for _, r := range st.Hosts {
		if r.Error != "" {
			return exit(exitcode.Unreachable, nil)
		}
	}
	return nil
}

func printStatus(w io.Writer, st *envStatus) {
	apps := slices.Sorted(maps.Keys(st.Versions))
	fmt.Fprintf(w, "environment %s: %d hosts", st.Env, len(st.Hosts))
	for _, a := range apps {
		fmt.Fprintf(w, " · %s %s", safe(a), safe(st.Versions[a]))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	hasLB := false
	for _, r := range st.Hosts {
		if r.InstID != "" {
			hasLB = true
		}
	}
	header := "HOST\tAPP\tVERSION\tRUN\tDEPLOYED\tBY\tSTATE"
	if hasLB {
		header += "\tLOAD BALANCERS"
	}
	fmt.Fprintln(tw, header)
	for _, r := range st.Hosts {
		lb := ""
		if hasLB {
			var parts []string
			for _, s := range r.LB {
				parts = append(parts, s.Name+" "+s.State)
			}
			if len(parts) == 0 && r.InstID != "" {
				parts = append(parts, "in none")
			}
			lb = "\t" + strings.Join(parts, ", ")
		}
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t%s%s\n", r.Host, r.Error, lb)
			continue
		}
		if len(r.Releases) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\tNO RELEASE RECORDED (drift)%s\n", r.Host, lb)
			continue
		}
		for _, a := range slices.Sorted(maps.Keys(r.Releases)) {
			rel := r.Releases[a]
			state := "ok"
			if rel.Version != st.Versions[a] {
				state = "DRIFT" + majority(safe(st.Versions[a]), "")
			}
			if r.OutOfLB {
				state += ", OUT OF SERVICE"
			}
			// A release record is what a host says, and root there could write anything.
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s%s\n", r.Host, safe(a), safe(rel.Version), safe(rel.RunID), rel.Time.Local().Format("2006-01-02 15:04:05"), safe(rel.User), state, lb)
		}
		for _, a := range apps {
			if _, ok := r.Releases[a]; !ok {
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\tDRIFT%s%s\n", r.Host, safe(a), majority(safe(st.Versions[a]), "not deployed"), lb)
			}
		}
	}
	tw.Flush()
	for _, l := range st.LeftOut {
		who := l.Host
		if who == "" {
			who = "controller"
		}
		how := "it did not finish"
		if l.Ended != "" {
			how = "it ended " + l.Ended
		}
		fmt.Fprintf(w, "LEFT BY RUN %s (%s): %s %s; restore with: %s\n", safe(l.RunID), how, who, safe(strings.ToUpper(l.Left)), safe(resumeCommand(l)))
	}
	if st.LBError != "" {
		fmt.Fprintf(w, "load balancers: %s\n", st.LBError)
	}
	printLocks(w, st.Env, st.Locks, len(st.Hosts))
}

// majority says, in parentheses, what the other hosts run (and why the
// host drifts); nothing about a majority when there is none to name.
func majority(version, why string) string {
	var parts []string
	if why != "" {
		parts = append(parts, why)
	}
	if version != "" {
		parts = append(parts, "majority "+version)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// resumeCommand is the command that finishes (or restores) what a run
// left: the record holds its version and -e values, so only where it
// deployed must be said again.
func resumeCommand(l playbooks.LeftOut) string {
	where := ""
	switch {
	case l.Env != "":
		where = " --env " + shell.Quote(l.Env)
	case l.Source != "":
		// The record joins the -i sources with commas; an inline host list
		// has commas of its own, so split only into sources that exist.
		parts := strings.Split(l.Source, ",")
		for _, p := range parts {
			if _, err := os.Stat(p); err != nil {
				parts = []string{l.Source}
				break
			}
		}
		for _, p := range parts {
			where += " -i " + shell.Quote(p)
		}
	}
	return fmt.Sprintf("ferry run %s%s --resume %s", shell.Quote(l.Playbook), where, l.RunID)
}

// printLocks summarises the lock files of env found on the hosts.
func printLocks(w io.Writer, env string, locks []environments.LockInfo, hosts int) {
	if len(locks) == 0 {
		fmt.Fprintf(w, "lock: %s is free\n", env)
		return
	}
	byRun := map[string][]environments.LockInfo{}
	for _, l := range locks {
		byRun[l.RunID] = append(byRun[l.RunID], l)
	}
	for _, id := range slices.Sorted(maps.Keys(byRun)) {
		ls := byRun[id]
		youngest := ls[0]
		var on []string
		for _, l := range ls {
			on = append(on, l.Host)
			if l.Age < youngest.Age {
				youngest = l
			}
		}
		fmt.Fprintf(w, "lock: %s held by %s on %d of %d hosts (%s)\n", env, safe(youngest.String()), len(ls), hosts, strings.Join(on, ", "))
	}
}

// LockCmd groups the lock subcommands.
type LockCmd struct {
	Status  LockStatusCmd  `cmd:"" help:"Who holds the environment's deploy lock."`
	Release LockReleaseCmd `cmd:"" help:"Remove the environment's deploy lock from its hosts, whoever holds it (a dead run's)."`
}

// LockStatusCmd shows the lock of an environment.
type LockStatusCmd struct {
	HostFlags
	EnvFlags
	Output string `short:"o" enum:"table,json" default:"table" help:"table or json."`
}

// Run implements the command.
func (c *LockStatusCmd) Run(g *Globals) error {
	t, err := g.resolveTarget(c.Env, c.Branch, len(c.Inventory) > 0, false, false)
	if err != nil {
		return err
	}
	c.Limit = "" // the lock is on every host of the environment
	e, err := c.loadEnv(g.ctx, g.env, t)
	if err != nil {
		return err
	}
	st, err := readEnvStatus(g, &c.HostFlags, e)
	if err != nil {
		return err
	}
	if c.Output == "json" {
		b, _ := json.MarshalIndent(struct {
			Env   string                  `json:"env"`
			Locks []environments.LockInfo `json:"locks"`
		}{st.Env, st.Locks}, "", "  ")
		fmt.Fprintf(g.stdout, "%s\n", b)
	} else {
		printLocks(g.stdout, st.Env, st.Locks, len(st.Hosts))
	}
	if len(st.Locks) > 0 {
		return exit(exitcode.Locked, nil)
	}
	return nil
}

// LockReleaseCmd force-releases the lock of an environment.
type LockReleaseCmd struct {
	HostFlags
	EnvFlags
	Yes bool `short:"y" env:"FERRY_YES" help:"Confirm, for a protected environment without a terminal."`
}

// Run implements the command.
func (c *LockReleaseCmd) Run(g *Globals) error {
	t, err := g.resolveTarget(c.Env, c.Branch, len(c.Inventory) > 0, true, c.Yes)
	if err != nil {
		return err
	}
	c.Limit = ""
	e, err := c.loadEnv(g.ctx, g.env, t)
	if err != nil {
		return err
	}
	conn, err := c.newConnector(g, fewCommands)
	if err != nil {
		return err
	}
	defer conn.Close()
	var hosts []environments.LockHost
	var he hostErrors
	var mu sync.Mutex
	forEach(g.ctx, e.all, c.Forks, func(ctx context.Context, h *inventory.Host) {
		cl, err := conn.Connect(ctx, h)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			he.fail(h.Name, true)
			fmt.Fprintf(g.stderr, "%s: UNREACHABLE: %s\n", h.Name, trimHost(err, h.Name))
			return
		}
		hosts = append(hosts, environments.LockHost{Name: h.Name, Conn: rootConn{cl}})
	})
	ctx, cancel := context.WithTimeout(g.ctx, time.Minute)
	defer cancel()
	was, err := environments.ForceRelease(ctx, hosts, e.name(), g.become())
	for _, l := range was {
		fmt.Fprintf(g.stdout, "%s: released the lock of %s held by %s\n", l.Host, e.name(), safe(l.String()))
	}
	if len(was) == 0 && err == nil {
		fmt.Fprintf(g.stdout, "%s was not locked\n", e.name())
	}
	if err != nil {
		return exit(exitcode.Unreachable, err)
	}
	return he.err("release failed")
}

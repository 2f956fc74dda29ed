package cli

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/alecthomas/kong"
	"golang.org/x/term"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/parallel"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/internal/value"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/ssh"
	"github.com/ferrydeploy/ferry/tasks"
)

// HostFlags select hosts: the inventory sources, a limit and a bastion override.
type HostFlags struct {
	Inventory inventorySources `short:"i" env:"FERRY_INVENTORY" placeholder:"FILE|DIR|HOST,..." help:"Inventory file or directory, or an inline host list such as web1,web2, (repeatable; several merge)."`
	Limit     string           `short:"l" env:"FERRY_LIMIT" placeholder:"PATTERN" help:"Host pattern: group, host, glob, a:b (union), a:&b (intersection), a:!b (exclusion)."`
	Bastion   string           `env:"FERRY_BASTION" placeholder:"USER@HOST[:PORT][,HOP...]" help:"Jump through these hosts for every host, overriding the inventory and ssh config."`
	Forks     int              `short:"f" env:"FERRY_FORKS" default:"10" help:"Hosts worked on at once."`

	playbookDir string // set by run: the playbook's group_vars/ and host_vars/ apply too
}

// loadInventory loads -i sources; with none, it says how to give one.
func (f *HostFlags) loadInventory(ctx context.Context, env environ) (*inventory.Inventory, error) {
	if len(f.Inventory) == 0 {
		return nil, diag.Invalidf("no inventory: pass -i FILE (an Ansible YAML/INI inventory or an aws_ec2 file) or set FERRY_INVENTORY")
	}
	inv, err := inventory.Load(ctx, f.Inventory, inventory.Options{Env: env.Lookup})
	if err != nil {
		return nil, err
	}
	return inv, nil
}

// selectHosts applies pattern (default "all") and --limit.
func (f *HostFlags) selectHosts(inv *inventory.Inventory, pattern string) ([]*inventory.Host, error) {
	if pattern == "" {
		pattern = "all"
	}
	hosts, err := inv.Match(pattern)
	if err != nil {
		return nil, err
	}
	if f.Limit != "" {
		limited, err := inv.Match(f.Limit)
		if err != nil {
			return nil, err
		}
		keep := map[string]bool{}
		for _, h := range limited {
			keep[h.Name] = true
		}
		var out []*inventory.Host
		for _, h := range limited {
			if inv.Implicit(h) { // -l localhost: the controller, as run takes it
				out = append(out, h)
			}
		}
		for _, h := range hosts {
			if keep[h.Name] && !inv.Implicit(h) {
				out = append(out, h)
			}
		}
		if len(out) == 0 {
			return nil, diag.Invalidf("--limit %q leaves no host of %q: check the pattern with `ferry inventory --graph`", f.Limit, pattern)
		}
		hosts = out
	}
	return hosts, nil
}

// connector opens the run's SSH connections: the manager of the global
// flags, with --bastion applied to every host.
type connector struct {
	m       *ssh.Manager
	bastion []ssh.Hop
	environ []string // for ansible_connection=local hosts: the controller's, without ferry's secrets
}

// How many commands a command sends each host: a playbook run sends many,
// so its connections start their command shell (ssh.Config.ShellFirst)
// with the first; the others, often one, start it with the second.
const (
	fewCommands  = false
	manyCommands = true
)

// newConnector parses --bastion and builds the manager; Close it when done.
func (f *HostFlags) newConnector(g *Globals, many bool) (*connector, error) {
	bastion, err := f.bastionHops()
	if err != nil {
		return nil, err
	}
	m, err := g.sshManager(many)
	if err != nil {
		return nil, err
	}
	return &connector{m: m, bastion: bastion, environ: template.LocalEnviron(g.env.List())}, nil
}

// client connects to h.
func (c *connector) client(ctx context.Context, h *inventory.Host) (*ssh.Client, error) {
	return c.m.Connect(ctx, target(h, c.bastion))
}

// Connect implements playbooks.Connector.
func (c *connector) Connect(ctx context.Context, h *inventory.Host) (tasks.Conn, error) {
	var conn tasks.Conn = &tasks.LocalConn{Environ: c.environ} // ansible_connection: local
	if !h.Local() {
		cl, err := c.client(ctx, h)
		if err != nil {
			return nil, err
		}
		conn = cl
	}
	if wrap, ok := ctx.Value(connWrapKey{}).(func(string, tasks.Conn) tasks.Conn); ok {
		return wrap(h.Name, conn), nil
	}
	return conn, nil
}

// connWrapKey, when a test puts a func(host string, c tasks.Conn) tasks.Conn
// in a command's context, has it wrap every connection that command uses
// (tasks, preflight, lock, release state), to count the commands each host
// receives (TestRoundTripBudget). In the context, not a package variable:
// a test running in parallel counts its own runs only.
type connWrapKey struct{}

// Close closes every connection.
func (c *connector) Close() error { return c.m.Close() }

// hosts loads the inventory and selects pattern (narrowed by --limit).
func (f *HostFlags) hosts(ctx context.Context, env environ, pattern string) ([]*inventory.Host, error) {
	inv, err := f.loadInventory(ctx, env)
	if err != nil {
		return nil, err
	}
	return f.selectHosts(inv, pattern)
}

// sshManager builds the run's connection manager from the global flags and
// environment; many: see manyCommands.
func (g *Globals) sshManager(many bool) (*ssh.Manager, error) {
	cfg := ssh.Config{
		KnownHostsFiles: g.KnownHosts,
		IdentityFiles:   g.PrivateKey,
		ConnectTimeout:  timeDuration(g.ConnectTimeout),
		Warn: func(msg string) {
			fmt.Fprintf(g.stderr, "ferry: warning: %s\n", msg)
		},
	}
	if g.KnownHostsPolicy != "" {
		p, err := ssh.ParsePolicy(g.KnownHostsPolicy)
		if err != nil {
			return nil, diag.Invalidf("%v", err)
		}
		cfg.Policy, cfg.PolicySet = p, true
	}
	if g.Verbose >= 2 {
		cfg.Log = func(format string, args ...any) {
			fmt.Fprintf(g.stderr, "ferry: debug: "+format+"\n", args...)
		}
	}
	switch g.SSHConfig {
	case "":
	case "none":
		cfg.SSHConfigFiles = []string{}
	default:
		cfg.SSHConfigFiles = []string{g.SSHConfig}
	}
	if k := g.env.Get("FERRY_SSH_KEY"); k != "" {
		cfg.KeyPEM = []byte(k)
	}
	if p := g.env.Get("FERRY_SSH_KEY_PASSPHRASE"); p != "" {
		cfg.Passphrase = []byte(p)
	}
	// FERRY_SSH_SHELL=0: a session per command, for hosts where the
	// connection's command shell misbehaves (docs/security.md).
	if v := g.env.Get("FERRY_SSH_SHELL"); v != "" {
		on, ok := value.ParseBool(v)
		if !ok {
			return nil, diag.Invalidf("FERRY_SSH_SHELL=%q: want %s", v, value.Words)
		}
		cfg.NoShell = !on
	}
	cfg.ShellFirst = many
	// The host-file functions head most commands that change files: the
	// command shells hold them, so those commands send only their body.
	cfg.Prelude = tasks.CommandPrelude
	// The local user and agent are the command's environment's, not the
	// process's (tests give each command its own).
	cfg.Home, cfg.User = g.env.Get("HOME"), g.env.Get("USER")
	if cfg.AgentSocket = g.env.Get("SSH_AUTH_SOCK"); cfg.AgentSocket == "" {
		cfg.AgentSocket = "none"
	}
	cfg.Prompt = ttyPrompt()
	return ssh.NewManager(cfg)
}

// ttyPrompt returns a passphrase prompt on the controlling terminal, or nil without one.
func ttyPrompt() func(string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	tty.Close()
	var mu sync.Mutex
	return func(what string) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		defer tty.Close()
		fmt.Fprint(tty, what)
		b, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		return b, err
	}
}

// target converts an inventory host to an SSH target; bastion (from --bastion) wins.
func target(h *inventory.Host, bastion []ssh.Hop) ssh.Target {
	t := ssh.Target{Name: h.Name, Port: h.Port(), User: h.User(), IdentityFile: h.IdentityFile(), ConfigFile: h.SSHConfigFile()}
	if a := h.Address(); a != h.Name {
		t.Addr = a // else ssh config's HostName for the name may apply
	}
	switch {
	case bastion != nil:
		t.Jumps = bastion
	default:
		for _, j := range h.Jumps() {
			t.Jumps = append(t.Jumps, ssh.Hop{User: j.User, Host: j.Host, Port: j.Port, IdentityFile: j.IdentityFile})
		}
	}
	return t
}

func (f *HostFlags) bastionHops() ([]ssh.Hop, error) {
	if f.Bastion == "" {
		return nil, nil
	}
	hops, err := ssh.ParseJumps(f.Bastion)
	if err != nil {
		return nil, diag.Invalidf("--bastion: %v", err)
	}
	if hops == nil {
		hops = []ssh.Hop{} // "none": connect directly
	}
	return hops, nil
}

// forEach runs fn for every host, at most forks at once, and waits.
func forEach(ctx context.Context, hosts []*inventory.Host, forks int, fn func(ctx context.Context, h *inventory.Host)) {
	if forks <= 0 {
		forks = 10
	}
	// Every host gets its call, even after ctx ends: fn reports the
	// interruption for the hosts it did not reach.
	parallel.Each(context.WithoutCancel(ctx), len(hosts), forks, func(i int) { fn(ctx, hosts[i]) })
}

// hostErrors collects per-host failures for one closing line.
type hostErrors struct {
	mu          sync.Mutex
	failed      []string
	unreachable []string
}

func (he *hostErrors) fail(name string, unreachable bool) {
	he.mu.Lock()
	defer he.mu.Unlock()
	if unreachable {
		he.unreachable = append(he.unreachable, name)
	} else {
		he.failed = append(he.failed, name)
	}
}

// err returns the exit error: unreachable (3) wins over failed (2).
func (he *hostErrors) err(verb string) error {
	sort.Strings(he.failed)
	sort.Strings(he.unreachable)
	var parts []string
	if len(he.unreachable) > 0 {
		parts = append(parts, fmt.Sprintf("unreachable: %s", strings.Join(he.unreachable, ", ")))
	}
	if len(he.failed) > 0 {
		parts = append(parts, fmt.Sprintf("%s on: %s", verb, strings.Join(he.failed, ", ")))
	}
	switch {
	case len(he.unreachable) > 0:
		return exit(exitcode.Unreachable, fmt.Errorf("%s", strings.Join(parts, "; ")))
	case len(he.failed) > 0:
		return exit(exitcode.Failed, fmt.Errorf("%s", strings.Join(parts, "; ")))
	}
	return nil
}

// inventorySources are the -i arguments, each taken whole: Ansible's inline
// host list ("web1,web2," or "web1,") has commas in it, so neither -i nor
// FERRY_INVENTORY is split on them. An empty FERRY_INVENTORY names none.
type inventorySources []string

// Decode implements kong.MapperValue.
func (s *inventorySources) Decode(ctx *kong.DecodeContext) error {
	var v string
	if err := ctx.Scan.PopValueInto("inventory", &v); err != nil {
		return err
	}
	if v != "" {
		*s = append(*s, v)
	}
	return nil
}

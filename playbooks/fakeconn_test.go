package playbooks

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/pkg/sftp"

	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/tasks"
)

// An in-process fleet for runner tests, in the manner of rig's rigtest:
// every host's tasks.Conn records the commands it is given, in order, and
// answers them as the test says (exit 0 unless told to fail). With the
// fx_run/fx_stop/fx_start modules below, the runner's journal, resume,
// failure rules, handlers and rollback run whole, with no SSH and no root.

type fakeFleet struct {
	mu   sync.Mutex
	cmds []string        // "host: cmd", in the order run
	fail map[string]bool // "host: cmd" or "cmd" exits 1
}

func newFleet(fail ...string) *fakeFleet {
	f := &fakeFleet{fail: map[string]bool{}}
	for _, c := range fail {
		f.fail[c] = true
	}
	return f
}

// Connect makes the fleet an Options.Connector.
func (f *fakeFleet) Connect(_ context.Context, h *inventory.Host) (tasks.Conn, error) {
	return &fakeConn{host: h.Name, fleet: f}, nil
}

// on is the commands host ran, in order.
func (f *fakeFleet) on(host string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.cmds {
		if cmd, ok := strings.CutPrefix(c, host+": "); ok {
			out = append(out, cmd)
		}
	}
	return out
}

// ran reports whether any host ran a command containing s.
func (f *fakeFleet) ran(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.cmds, func(c string) bool { return strings.Contains(c, s) })
}

type fakeConn struct {
	host  string
	fleet *fakeFleet
}

func (c *fakeConn) Run(ctx context.Context, cmd string, _ tasks.RunOptions) (tasks.Result, error) {
	if err := ctx.Err(); err != nil {
		return tasks.Result{}, err
	}
	f := c.fleet
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, c.host+": "+cmd)
	if f.fail[c.host+": "+cmd] || f.fail[cmd] {
		return tasks.Result{ExitCode: 1, Stderr: []byte(cmd + ": failed\n")}, nil
	}
	return tasks.Result{Stdout: []byte(cmd + ": done\n")}, nil
}

func (c *fakeConn) SFTP(context.Context, string) (*sftp.Client, error) {
	return nil, fmt.Errorf("fake host %s: no sftp", c.host)
}

func (c *fakeConn) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, fmt.Errorf("fake host %s: no tunnels", c.host)
}

// connModule runs one command on the host: fx_run runs its cmd; fx_stop
// and fx_start run "stop NAME" and "start NAME" and, like systemd, journal
// a stopped unit (Spec.Leaves) and close it when started (Spec.Restores).
type connModule struct {
	spec tasks.Spec
	cmd  func(args map[string]any) string
}

func (m connModule) Spec() tasks.Spec { return m.spec }

func (m connModule) Run(ctx context.Context, h *tasks.Host, args map[string]any) (tasks.Outcome, error) {
	cmd := m.cmd(args)
	if h.Check {
		return tasks.Outcome{Changed: true, Msg: "would run " + cmd}, nil
	}
	res, err := h.Conn.Run(ctx, cmd, h.Become)
	if err != nil {
		return tasks.Outcome{}, err
	}
	if res.ExitCode != 0 {
		return tasks.Outcome{Failed: true, Msg: strings.TrimSpace(string(res.Stderr)), Result: map[string]any{"rc": res.ExitCode}}, nil
	}
	return tasks.Outcome{Changed: true, Msg: cmd, Result: map[string]any{"rc": 0, "stdout": strings.TrimSpace(string(res.Stdout))}}, nil
}

func init() {
	name := func(args map[string]any) string { s, _ := args["name"].(string); return s }
	unit := map[string]tasks.Param{"name": {Type: tasks.String, Required: true}}
	tasks.Register(connModule{
		spec: tasks.Spec{Name: "fx_run", FreeForm: "cmd", Params: map[string]tasks.Param{"cmd": {Type: tasks.String, Required: true}}},
		cmd:  func(args map[string]any) string { s, _ := args["cmd"].(string); return s },
	})
	tasks.Register(connModule{
		spec: tasks.Spec{Name: "fx_stop", Params: unit, Leaves: func(args, _ map[string]any) (tasks.Change, bool) {
			n := name(args)
			return tasks.Change{Key: "unit:" + n, What: "unit " + n + " stopped", Module: "fx_start", Args: map[string]any{"name": n}}, n != ""
		}},
		cmd: func(args map[string]any) string { return "stop " + name(args) },
	})
	tasks.Register(connModule{
		spec: tasks.Spec{Name: "fx_start", Params: unit, Restores: func(args map[string]any) []string {
			return []string{"unit:" + name(args)}
		}},
		cmd: func(args map[string]any) string { return "start " + name(args) },
	})
}

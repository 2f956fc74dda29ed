package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/ssh"
)

// PingCmd connects to every host and checks auth and sudo, like a run's preflight.
type PingCmd struct {
	HostFlags
	NoSudo bool `help:"Do not check that sudo -n works."`
}

// Run implements the command.
func (c *PingCmd) Run(g *Globals) error {
	ctx := g.ctx
	hosts, err := c.hosts(ctx, g.env, "all")
	if err != nil {
		return err
	}
	conn, err := c.newConnector(g, fewCommands)
	if err != nil {
		return err
	}
	defer conn.Close()

	var mu sync.Mutex
	var he hostErrors
	width := nameWidth(hosts)
	forEach(ctx, hosts, max(c.Forks, 1), func(ctx context.Context, h *inventory.Host) {
		start := time.Now()
		msg, unreachable, err := c.ping(ctx, conn, h)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			he.fail(h.Name, unreachable)
			fmt.Fprintf(g.stdout, "%-*s  FAILED  %v\n", width, h.Name, trimHost(err, h.Name))
			return
		}
		fmt.Fprintf(g.stdout, "%-*s  ok      %s  %dms\n", width, h.Name, msg, time.Since(start).Milliseconds())
	})
	if ctx.Err() != nil {
		// Hosts cut short by Ctrl-C are not unreachable: say so with 130.
		return exit(exitcode.Interrupted, errors.New("interrupted"))
	}
	return he.err("sudo failed")
}

func (c *PingCmd) ping(ctx context.Context, conn *connector, h *inventory.Host) (string, bool, error) {
	cl, err := conn.client(ctx, h)
	if err != nil {
		return "", true, err
	}
	// One round trip answers who we are and whether sudo works without a password.
	cmd := "id -un"
	if !c.NoSudo {
		cmd = "id -un; sudo -n true 2>&1 && echo sudo=yes || echo sudo=no"
	}
	res, err := cl.Run(ctx, cmd, ssh.RunOptions{})
	if err != nil {
		return "", true, err
	}
	out := lines(string(res.Stdout))
	if len(out) == 0 {
		return "", false, fmt.Errorf("no answer from `id -un` (exit %d): %s", res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	msg := "user=" + out[0]
	if !c.NoSudo {
		if out[len(out)-1] != "sudo=yes" {
			why := strings.Join(out[1:len(out)-1], " ")
			return "", false, fmt.Errorf("sudo -n fails for %s: %s (give %s passwordless sudo, or pass --no-sudo if the playbooks never use become)", out[0], why, out[0])
		}
		msg += " sudo=yes"
	}
	return msg, false, nil
}

func nameWidth(hosts []*inventory.Host) int {
	w := 4
	for _, h := range hosts {
		w = max(w, len(h.Name))
	}
	return w
}

// trimHost drops a leading "host: " from err, since the line already starts with the host.
func trimHost(err error, host string) string {
	return strings.TrimPrefix(err.Error(), host+": ")
}

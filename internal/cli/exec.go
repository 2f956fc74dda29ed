package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/ssh"
)

// ExecCmd runs an ad-hoc command on hosts, output prefixed by host.
type ExecCmd struct {
	HostFlags
	Become     bool     `short:"b" env:"FERRY_BECOME" help:"Run the command as root (sudo -n), or as --become-user."`
	BecomeUser string   `env:"FERRY_BECOME_USER" placeholder:"USER" help:"User to become (implies --become)."`
	Timeout    Duration `env:"FERRY_COMMAND_TIMEOUT" default:"0" help:"Stop the command on a host after this long (0: no limit)."`
	Command    []string `arg:"" passthrough:"partial" placeholder:"-- COMMAND" help:"Command line, run by the remote login shell."`
}

// Run implements the command.
func (c *ExecCmd) Run(g *Globals) error {
	ctx := g.ctx
	args := c.Command
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return diag.Invalidf("no command: ferry exec -i INVENTORY -- COMMAND")
	}
	// Like ssh: words are joined with spaces and the remote shell parses them.
	cmd := strings.Join(args, " ")
	hosts, err := c.hosts(ctx, g.env, "all")
	if err != nil {
		return err
	}
	conn, err := c.newConnector(g, fewCommands)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A become password, when sudo needs one, goes on sudo's stdin (never argv).
	opts := ssh.RunOptions{Become: c.Become || c.BecomeUser != "", BecomeUser: c.BecomeUser, BecomePass: g.env.Get("FERRY_BECOME_PASSWORD")}

	var outMu sync.Mutex
	var he hostErrors
	width := nameWidth(hosts)
	forEach(ctx, hosts, c.Forks, func(ctx context.Context, h *inventory.Host) {
		prefix := fmt.Sprintf("%-*s | ", width, h.Name)
		if err := ctx.Err(); err != nil {
			he.fail(h.Name, false)
			return
		}
		cl, err := conn.Connect(ctx, h) // ssh, or the controller for ansible_connection=local
		if err != nil {
			he.fail(h.Name, true)
			outMu.Lock()
			fmt.Fprintf(g.stderr, "%sUNREACHABLE: %s\n", prefix, trimHost(err, h.Name))
			outMu.Unlock()
			return
		}
		if c.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeDuration(c.Timeout))
			defer cancel()
		}
		o := opts
		stdout := newPrefixWriter(&outMu, g.stdout, prefix)
		stderr := newPrefixWriter(&outMu, g.stderr, prefix)
		o.Stdout, o.Stderr = stdout, stderr
		res, err := cl.Run(ctx, cmd, o)
		stdout.Flush()
		stderr.Flush()
		switch {
		case err != nil:
			var se *ssh.Error
			he.fail(h.Name, errors.As(err, &se))
			outMu.Lock()
			fmt.Fprintf(g.stderr, "%sFAILED: %s\n", prefix, trimHost(err, h.Name))
			outMu.Unlock()
		case res.ExitCode != 0:
			he.fail(h.Name, false)
			outMu.Lock()
			fmt.Fprintf(g.stderr, "%sFAILED: exit status %d\n", prefix, res.ExitCode)
			outMu.Unlock()
		}
	})
	if ctx.Err() != nil {
		return exit(exitcode.Interrupted, errors.New("interrupted"))
	}
	return he.err("command failed")
}

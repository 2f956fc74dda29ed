package tasks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"

	"github.com/ferrydeploy/ferry/ssh"
)

// LocalConn is the controller as a host: `delegate_to: localhost`,
// `local_action` and `ansible_connection=local`. Commands run with bash on
// this machine; environment values go in the process environment, never on
// a command line; become goes through sudo with the password on stdin.
type LocalConn struct {
	// Environ is the environment its commands start from (KEY=VALUE),
	// RunOptions.Env over it; nil: the process's own. The runner and the
	// CLI give the controller's environment without ferry's own secrets
	// (template.LocalEnviron), so a local command cannot print them.
	Environ []string

	mu      sync.Mutex
	clients map[string]*sftp.Client
	closers []func()
}

var _ Conn = (*LocalConn)(nil)

// Run runs cmd with bash -c on the controller.
func (c *LocalConn) Run(ctx context.Context, cmd string, opts RunOptions) (Result, error) {
	argv := []string{"bash", "-c", cmd}
	var stdin io.Reader = opts.Stdin
	if opts.Become {
		user := opts.BecomeUser
		if user == "" {
			user = "root"
		}
		sudo := []string{"sudo", "-n"}
		if opts.BecomePass != "" {
			sudo = []string{"sudo", "-S", "-p", ""}
			pass := bytes.NewBufferString(opts.BecomePass + "\n")
			if stdin != nil {
				stdin = io.MultiReader(pass, stdin)
			} else {
				stdin = pass
			}
		}
		if len(opts.Env) > 0 {
			names := make([]string, 0, len(opts.Env))
			for k := range opts.Env {
				names = append(names, k)
			}
			sudo = append(sudo, "--preserve-env="+strings.Join(names, ","))
		}
		argv = append(append(sudo, "-u", user, "--"), argv...)
	}
	x := exec.CommandContext(ctx, argv[0], argv[1:]...)
	base := c.Environ
	if base == nil {
		base = os.Environ()
	}
	x.Env = slices.Clone(base) // Run may be called at once from several tasks
	for k, v := range opts.Env {
		x.Env = append(x.Env, k+"="+v)
	}
	x.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	x.Cancel = func() error { return syscall.Kill(-x.Process.Pid, syscall.SIGKILL) }
	x.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	x.Stdout, x.Stderr = &stdout, &stderr
	if opts.Stdout != nil {
		x.Stdout = io.MultiWriter(&stdout, opts.Stdout)
	}
	if opts.Stderr != nil {
		x.Stderr = io.MultiWriter(&stderr, opts.Stderr)
	}
	x.Stdin = stdin
	err := x.Run()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return res, err
	}
	res.ExitCode = x.ProcessState.ExitCode()
	return res, nil
}

// SFTP serves files of the controller: in process for the controller's own
// user, through sudo and OpenSSH's sftp-server for another.
func (c *LocalConn) SFTP(ctx context.Context, asUser string) (*sftp.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.clients == nil {
		c.clients = map[string]*sftp.Client{}
	}
	if cl := c.clients[asUser]; cl != nil {
		return cl, nil
	}
	var cl *sftp.Client
	var err error
	if asUser == "" {
		cr, sw := io.Pipe()
		sr, cw := io.Pipe()
		srv, serr := sftp.NewServer(struct {
			io.Reader
			io.WriteCloser
		}{sr, sw})
		if serr != nil {
			return nil, serr
		}
		go func() { _ = srv.Serve() }()
		c.closers = append(c.closers, func() { _ = srv.Close() })
		cl, err = sftp.NewClientPipe(cr, cw, ssh.SFTPOptions()...)
	} else {
		server := "/usr/lib/openssh/sftp-server"
		if _, serr := os.Stat(server); serr != nil {
			return nil, errors.New("file transfer as another user on the controller needs /usr/lib/openssh/sftp-server")
		}
		x := exec.Command("sudo", "-n", "-u", asUser, "--", server)
		in, perr := x.StdinPipe()
		if perr != nil {
			return nil, perr
		}
		out, perr := x.StdoutPipe()
		if perr != nil {
			return nil, perr
		}
		if err := x.Start(); err != nil {
			return nil, err
		}
		c.closers = append(c.closers, func() { _ = in.Close(); _ = x.Wait() })
		cl, err = sftp.NewClientPipe(out, in, ssh.SFTPOptions()...)
	}
	if err != nil {
		return nil, err
	}
	c.clients[asUser] = cl
	return cl, nil
}

// DialContext dials from the controller.
func (c *LocalConn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// Close ends the SFTP sessions.
func (c *LocalConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.clients {
		_ = cl.Close()
	}
	for _, f := range c.closers {
		f()
	}
	c.clients, c.closers = nil, nil
	return nil
}

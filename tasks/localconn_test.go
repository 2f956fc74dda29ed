package tasks

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/ssh"
)

// localConn is a Conn on this machine: commands run with bash, SFTP talks
// to OpenSSH's sftp-server (or pkg/sftp's server) over pipes, and dials go to
// loopback. Modules see exactly what they would see through SSH.
type localConn struct {
	t       testing.TB
	env     []string // extra environment for commands (PATH with fakes)
	binDir  string   // where fakeBin puts programs
	mu      sync.Mutex
	clients map[string]*sftp.Client
	cmds    []string // every command run, for round-trip counts
	// wrapSFTP, when set, wraps the client's side of the SFTP pipe (to
	// break a transfer in the middle).
	wrapSFTP func(io.WriteCloser) io.WriteCloser
}

func newLocalConn(t testing.TB) *localConn {
	c := &localConn{t: t, clients: map[string]*sftp.Client{}}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, cl := range c.clients {
			cl.Close()
		}
	})
	return c
}

func (c *localConn) Run(ctx context.Context, cmd string, opts RunOptions) (Result, error) {
	c.mu.Lock()
	c.cmds = append(c.cmds, cmd)
	c.mu.Unlock()
	var pre strings.Builder
	for _, k := range slices.Sorted(maps.Keys(opts.Env)) {
		pre.WriteString("export " + k + "=" + shell.Quote(opts.Env[k]) + "; ")
	}
	x := exec.CommandContext(ctx, "bash", "-c", pre.String()+cmd)
	x.Env = append(os.Environ(), c.env...)
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
	x.Stdin = opts.Stdin
	err := x.Run()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	var ee *exec.ExitError
	if err != nil && !errorsAs(err, &ee) {
		return res, err
	}
	res.ExitCode = x.ProcessState.ExitCode()
	return res, nil
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

func (c *localConn) SFTP(ctx context.Context, asUser string) (*sftp.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl := c.clients[asUser]; cl != nil {
		return cl, nil
	}
	var cl *sftp.Client
	var err error
	const server = "/usr/lib/openssh/sftp-server"
	if _, serr := os.Stat(server); serr == nil {
		x := exec.Command(server, "-u", "077") // as ferry's ssh layer starts it
		var in io.WriteCloser
		var out io.Reader
		if in, err = x.StdinPipe(); err != nil {
			return nil, err
		}
		if out, err = x.StdoutPipe(); err != nil {
			return nil, err
		}
		if err = x.Start(); err != nil {
			return nil, err
		}
		c.t.Cleanup(func() { _ = x.Process.Kill(); _ = x.Wait() })
		if c.wrapSFTP != nil {
			in = c.wrapSFTP(in)
		}
		cl, err = sftp.NewClientPipe(out, in, ssh.SFTPOptions()...)
	} else {
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
		var w io.WriteCloser = cw
		if c.wrapSFTP != nil {
			w = c.wrapSFTP(w)
		}
		cl, err = sftp.NewClientPipe(cr, w, ssh.SFTPOptions()...)
	}
	if err != nil {
		return nil, err
	}
	c.clients[asUser] = cl
	return cl, nil
}

func (c *localConn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (c *localConn) commands() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.cmds...)
}

// testHost is a Host on a localConn, collecting output lines.
func testHost(t testing.TB) (*Host, *localConn, *[]string) {
	c := newLocalConn(t)
	var mu sync.Mutex
	lines := &[]string{}
	h := &Host{
		Name:  "local",
		Conn:  c,
		Vars:  map[string]any{},
		State: map[string]any{},
		Dir:   t.TempDir(),
		Output: func(l string) {
			mu.Lock()
			*lines = append(*lines, l)
			mu.Unlock()
		},
		Render: func(s string) (string, error) { return strings.ReplaceAll(s, "{{ version }}", "1.2.3"), nil },
		Eval:   func(string) (any, error) { return true, nil },
	}
	return h, c, lines
}

func runModule(t *testing.T, h *Host, name string, args map[string]any) Outcome {
	t.Helper()
	m, ok := Lookup(name)
	if !ok {
		t.Fatalf("module %s not registered", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := Call(ctx, m, h, args)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustWrite(t testing.TB, p, s string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
}

// fakeBin puts an executable script named name first on the commands' PATH.
func (c *localConn) fakeBin(t testing.TB, name, script string) string {
	t.Helper()
	if c.binDir == "" {
		c.binDir = t.TempDir()
		c.env = append(c.env, "PATH="+c.binDir+":"+os.Getenv("PATH"))
	}
	mustWrite(t, c.binDir+"/"+name, script, 0o755)
	return c.binDir
}

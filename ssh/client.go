package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/ferrydeploy/ferry/internal/parallel"
	"github.com/ferrydeploy/ferry/internal/shell"
)

// RunOptions tune one command.
type RunOptions struct {
	Become     bool              // run through sudo (sudo -n unless BecomePass is set)
	BecomeUser string            // default root
	BecomePass string            // written to sudo's stdin, never on a command line
	Env        map[string]string // exported before the command runs (sent on stdin, never on the command line)
	Stdin      io.Reader
	Stdout     io.Writer // live output; also captured in Result
	Stderr     io.Writer
}

// Result of a command. A non-zero ExitCode is not an error.
type Result struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
}

// Client is the connection to one target host. Every command, SFTP session
// and tunnel of the run is a channel on it.
type Client struct {
	name string
	c    *ssh.Client
	m    *Manager

	mu    sync.Mutex
	sftp  map[string]*sftpSession // by user ("" = login user)
	gone  <-chan struct{}         // closed when the connection (or a hop before it) ends
	hops  []*pending              // the connections of the chain, bastions first
	shell *shellSlot              // the connection's command shell (shared by its Clients)
	root  *shellSlot              // its become shell: root's command shell (shell.go)
}

type sftpSession struct {
	client *sftp.Client
	sess   *ssh.Session // non-nil when sftp-server runs through sudo
}

func newClient(name string, c *ssh.Client, m *Manager, shell, root *shellSlot) *Client {
	return &Client{name: name, c: c, m: m, sftp: map[string]*sftpSession{}, shell: shell, root: root}
}

// Closed reports whether the connection has ended (the host, a bastion or
// the link dropped it): a new Manager.Connect then makes a new one.
func (c *Client) Closed() bool {
	if c.gone == nil {
		return false
	}
	select {
	case <-c.gone:
		return true
	default:
		return false
	}
}

// Name is the inventory name of the host.
func (c *Client) Name() string { return c.name }

// Raw exposes the underlying x/crypto/ssh client (benchmarks, tests).
func (c *Client) Raw() *ssh.Client { return c.c }

// newSession opens a session channel, giving up when ctx ends: on a dead
// link the open request is never answered, and x/crypto/ssh would wait
// until the keepalives close the connection (45s by default). A session
// that opens after ctx ended is closed.
func (c *Client) newSession(ctx context.Context) (*ssh.Session, error) {
	type opened struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := c.c.NewSession()
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		return o.s, o.err
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.s != nil {
				o.s.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// stopWait bounds how long a cancelled command may take to acknowledge its
// end before Run returns anyway.
const stopWait = 5 * time.Second

// Run runs cmd through the login shell, as OpenSSH does. ctx ending sends
// SIGTERM to the remote command and closes its channel. The command goes
// through the connection's command shell (shell.go) when it can, else
// through a session of its own; what the caller sees is the same.
func (c *Client) Run(ctx context.Context, cmd string, opts RunOptions) (Result, error) {
	var res Result
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := CheckEnv(opts.Env); err != nil {
		return res, fmt.Errorf("%s: %w", c.name, err)
	}
	if opts.Stdin != nil {
		in, err := knownStdin(opts.Stdin)
		if err != nil {
			return res, fmt.Errorf("%s: read the command's stdin: %w", c.name, err)
		}
		opts.Stdin = in
	}
	if res, ran, err := c.runInShells(ctx, cmd, opts); ran {
		return res, err
	}
	sess, err := c.newSession(ctx)
	if err != nil {
		return res, c.sessionErr("open session", err)
	}
	defer sess.Close()

	line, stdin := Wrap(cmd, opts)
	var outBuf, errBuf cappedBuffer
	sess.Stdout = teeWriter(&outBuf, opts.Stdout)
	sess.Stderr = teeWriter(&errBuf, opts.Stderr)
	if stdin != nil {
		sess.Stdin = stdin
	}
	if err := parallel.Await(ctx, func() error { return sess.Start(line) }); err != nil {
		return res, c.sessionErr("start command", err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGTERM)
		sess.Close()
		select {
		case <-done:
			return Result{ExitCode: -1, Stdout: outBuf.Bytes(), Stderr: errBuf.Bytes()}, fmt.Errorf("%s: %w", c.name, ctx.Err())
		case <-time.After(stopWait):
			// No answer to the close: the link is likely dead. The keepalives
			// will close the connection; the task must not wait for that.
			// (The output buffers are still being written: not returned.)
			return Result{ExitCode: -1}, fmt.Errorf("%s: %w (the host did not acknowledge the stop within %s; check it)", c.name, ctx.Err(), stopWait)
		}
	}
	res.Stdout, res.Stderr = outBuf.Bytes(), errBuf.Bytes()
	if code, ok := exitCode(err); ok {
		res.ExitCode = code
	} else {
		var em *ssh.ExitMissingError
		if errors.As(err, &em) {
			return res, &Error{Host: c.name, Kind: KindUnreachable, Err: err,
				Msg:  "connection lost while the command ran (its outcome is unknown)" + c.lostReason(),
				Hint: "check that the host and its network are up, then what the command did there"}
		}
		return res, c.sessionErr("run command", err)
	}
	return res, nil
}

// runInShells runs cmd in the become shell (a command that becomes root
// with sudo -n) or the command shell when it can; ran false: it needs a
// session of its own. A command for the become shell that starts with the
// prelude sends only the rest.
func (c *Client) runInShells(ctx context.Context, cmd string, opts RunOptions) (res Result, ran bool, err error) {
	if c.becomeShell(opts) {
		body, lib := cmd, false
		if p := c.prelude(); p != "" && strings.HasPrefix(cmd, p) {
			body, lib = cmd[len(p):], true
		}
		o := opts
		o.Become, o.BecomeUser = false, ""
		if res, ran, err = c.runInShell(ctx, c.root, true, body, o, lib); ran {
			return res, ran, err
		}
	}
	return c.runInShell(ctx, c.shell, false, cmd, opts, false)
}

// runInShell runs cmd in slot's shell; ran false: it did not run there
// (not eligible, the shell busy or off, or it ended before the command
// began: then it is turned off for the connection).
func (c *Client) runInShell(ctx context.Context, slot *shellSlot, root bool, cmd string, opts RunOptions, lib bool) (Result, bool, error) {
	if !shellEligible(cmd, opts) {
		return Result{}, false, nil
	}
	sh := c.takeShell(ctx, slot, root)
	if sh == nil {
		return Result{}, false, nil
	}
	res, keep, err := c.runShell(ctx, sh, cmd, opts, lib)
	if !keep {
		sh = nil
	}
	c.putShell(slot, sh)
	if errors.Is(err, errShellNotStarted) {
		c.shellOff(slot, "the command shell ended before its first command")
		if in, ok := opts.Stdin.(*smallStdin); ok {
			in.again() // the shell read it: the next try gets it whole
		}
		return Result{}, false, nil
	}
	return res, true, err
}

// becomeShell says whether a command goes to the become shell: it becomes
// root with sudo -n, in a playbook run (Config.ShellFirst: many commands).
func (c *Client) becomeShell(opts RunOptions) bool {
	return opts.Become && opts.BecomePass == "" && (opts.BecomeUser == "" || opts.BecomeUser == "root") &&
		c.m != nil && c.m.cfg.ShellFirst && c.root != nil
}

// exitCode is the exit status a session's Wait reported (a signal without
// a status: 128); ok false: it reported none (an error).
func exitCode(err error) (int, bool) {
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return 0, true
	case errors.As(err, &ee):
		if ee.Signal() != "" && ee.ExitStatus() == 0 {
			return 128, true
		}
		return ee.ExitStatus(), true
	}
	return 0, false
}

// lostReason says why ferry closed the connection (or a hop's), if it did:
// ": bastion did not answer 3 keepalives 1s apart".
func (c *Client) lostReason() string {
	for i := len(c.hops) - 1; i >= 0; i-- {
		if why := c.hops[i].lost.Load(); why != nil {
			return ": " + *why
		}
	}
	return ""
}

func (c *Client) sessionErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return &Error{Host: c.name, Kind: KindUnreachable, Err: err, Msg: what + ": connection closed",
			Hint:       "the host or the bastion dropped the connection; check that it is up",
			NotStarted: strings.HasPrefix(what, "open ")}
	}
	if strings.Contains(err.Error(), "administratively prohibited") || strings.Contains(err.Error(), "open failed") {
		return fmt.Errorf("%s: %s: %w (the server refused a new session: MaxSessions in its sshd_config may be too low)", c.name, what, err)
	}
	return fmt.Errorf("%s: %s: %w", c.name, what, err)
}

// Wrap turns cmd and its options into the command line sent to the server
// and the stdin to feed it. Exported for modules that build their own sessions.
func Wrap(cmd string, opts RunOptions) (string, io.Reader) {
	var envPrefix, envLine string
	if len(opts.Env) > 0 {
		envPrefix, envLine = envOnStdin(opts.Env)
	}
	stdin := opts.Stdin
	if envLine != "" {
		if stdin != nil {
			stdin = io.MultiReader(strings.NewReader(envLine), stdin)
		} else {
			stdin = strings.NewReader(envLine)
		}
	}
	if opts.Become {
		user := opts.BecomeUser
		if user == "" {
			user = "root"
		}
		sudo := "sudo -n"
		if opts.BecomePass != "" {
			// -S reads the password from stdin; -p '' keeps the prompt out of stderr.
			sudo = "sudo -S -p ''"
			if opts.Stdin == nil {
				// sudo reads the password only when it asks for one (not with
				// NOPASSWD or a cached ticket); the command must never get the
				// unread line on its stdin.
				cmd = "exec </dev/null; " + cmd
			}
			pass := strings.NewReader(opts.BecomePass + "\n")
			if stdin != nil {
				stdin = io.MultiReader(pass, stdin)
			} else {
				stdin = pass
			}
		}
		return fmt.Sprintf("%s -H -u %s -- /bin/sh -c %s", sudo, shell.Quote(user), shell.Quote(envPrefix+cmd)), stdin
	}
	return envPrefix + cmd, stdin
}

// MaxOutput caps what Run keeps of each stream of one command: a command
// that prints without end on 1,000 hosts must not exhaust the controller's
// memory. What goes past it is counted and still streamed live (RunOptions
// Stdout/Stderr), not kept.
const MaxOutput = 4 << 20

// cappedBuffer keeps the first MaxOutput bytes written to it.
type cappedBuffer struct {
	buf     bytes.Buffer
	dropped int64
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := max(MaxOutput-c.buf.Len(), 0); room < n {
		c.dropped += int64(n - room)
		p = p[:room]
	}
	c.buf.Write(p)
	return n, nil // all of it was taken care of, kept or counted
}

// Bytes is what was kept, with a last line saying how much was not.
func (c *cappedBuffer) Bytes() []byte {
	if c.dropped == 0 {
		return c.buf.Bytes()
	}
	return append(c.buf.Bytes(), fmt.Sprintf("\n[ferry: %d more bytes of output not kept (limit %d MiB)]\n", c.dropped, MaxOutput>>20)...)
}

func teeWriter(buf *cappedBuffer, w io.Writer) io.Writer {
	if w == nil {
		return buf
	}
	return io.MultiWriter(buf, w)
}

// SFTPOptions are the SFTP client settings ferry uses: many requests in
// flight per file and the largest packets OpenSSH's sftp-server accepts
// (256 KiB messages, less 1 KiB for headers, per its limits@openssh.com), so
// a copy through a bastion is bounded by bandwidth, not by round trips.
func SFTPOptions() []sftp.ClientOption {
	return []sftp.ClientOption{
		sftp.UseConcurrentWrites(true),
		sftp.UseConcurrentReads(true),
		sftp.MaxConcurrentRequestsPerFile(64),
		sftp.MaxPacketUnchecked(255 << 10),
	}
}

// sftpServers are where distributions install OpenSSH's sftp-server.
var sftpServers = []string{"/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/lib/ssh/sftp-server", "/usr/libexec/sftp-server"}

// SFTP returns the SFTP client for asUser on this connection, opened once.
// asUser "" uses the login user's sftp subsystem; another user runs
// sftp-server through `sudo -n -u asUser`.
func (c *Client) SFTP(ctx context.Context, asUser string) (*sftp.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.sftp[asUser]; ok {
		return s.client, nil
	}
	// The SFTP handshake is a round trip that a dead link would never
	// answer: wait for it only as long as ctx allows.
	type opened struct {
		s   *sftpSession
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := c.openSFTP(asUser)
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			return nil, o.err
		}
		c.sftp[asUser] = o.s
		return o.s.client, nil
	case <-ctx.Done():
		go func() { // close what arrives late
			if o := <-ch; o.err == nil {
				o.s.close()
			}
		}()
		return nil, fmt.Errorf("%s: start sftp: %w", c.name, ctx.Err())
	}
}

// sftpUmask is the umask of the SFTP servers ferry starts: every file and
// directory they create is private (0600/0700) from its first moment, and
// modules give it its final mode on the open handle (no window in which
// another user can open a file that is being written).
const sftpUmask = "077"

// openSFTP starts an SFTP session as asUser (see SFTP). ferry starts the
// host's sftp-server itself, with umask 077, through sudo for another user;
// only a host without a known sftp-server binary gets the sshd subsystem.
func (c *Client) openSFTP(asUser string) (*sftpSession, error) {
	s, err := c.execSFTP(asUser)
	if err == nil || asUser != "" || !errors.Is(err, errNoSFTPServer) {
		return s, err
	}
	cl, err := sftp.NewClient(c.c, SFTPOptions()...)
	if err != nil {
		return nil, fmt.Errorf("%s: start sftp: %w", c.name, err)
	}
	return &sftpSession{client: cl}, nil
}

var errNoSFTPServer = errors.New("no sftp-server found on the host")

func (c *Client) execSFTP(asUser string) (*sftpSession, error) {
	sess, err := c.c.NewSession()
	if err != nil {
		return nil, c.sessionErr("open sftp session", err)
	}
	w, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	r, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	var stderr bytes.Buffer
	sess.Stderr = &stderr
	var script strings.Builder
	for _, p := range sftpServers {
		if asUser == "" {
			fmt.Fprintf(&script, "[ -x %s ] && exec %s -u %s; ", p, p, sftpUmask)
		} else {
			fmt.Fprintf(&script, "[ -x %s ] && exec sudo -n -u %s %s -u %s; ", p, shell.Quote(asUser), p, sftpUmask)
		}
	}
	script.WriteString("echo 'ferry: no sftp-server found on the host' >&2; exit 127")
	if err := sess.Start(script.String()); err != nil {
		sess.Close()
		return nil, c.sessionErr("start sftp-server", err)
	}
	cl, err := sftp.NewClientPipe(r, w, SFTPOptions()...)
	if err != nil {
		// The script has ended: its status says whether a server was found
		// (and its stderr is complete once Wait returns).
		waited := make(chan error, 1)
		go func() { waited <- sess.Wait() }()
		var ee *ssh.ExitError
		select {
		case werr := <-waited:
			if errors.As(werr, &ee) && ee.ExitStatus() == 127 && strings.Contains(stderr.String(), "no sftp-server found") {
				sess.Close()
				return nil, fmt.Errorf("%s: %w", c.name, errNoSFTPServer)
			}
		case <-time.After(2 * time.Second):
		}
		sess.Close()
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "no sftp-server found") {
			return nil, fmt.Errorf("%s: %w", c.name, errNoSFTPServer)
		}
		if msg == "" {
			msg = err.Error()
		}
		if asUser == "" {
			return nil, fmt.Errorf("%s: start sftp-server: %s", c.name, msg)
		}
		return nil, fmt.Errorf("%s: sftp as %s through sudo: %s (the login user needs passwordless sudo to write as %s)", c.name, asUser, msg, asUser)
	}
	return &sftpSession{client: cl, sess: sess}, nil
}

func (s *sftpSession) close() error {
	err := s.client.Close()
	if s.sess != nil {
		s.sess.Close()
	}
	return err
}

// DialContext opens a TCP connection from the host (direct-tcpip), e.g. to
// the app on 127.0.0.1:8080, without anything installed on the host.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := c.c.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: connect to %s from the host: %w", c.name, addr, err)
	}
	return conn, nil
}

// Close closes the SFTP sessions; the SSH connection itself (and its
// command shell) belongs to the Manager and is closed by Manager.Close.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for u, s := range c.sftp {
		if err := s.close(); err != nil {
			errs = append(errs, err)
		}
		delete(c.sftp, u)
	}
	return errors.Join(errs...)
}

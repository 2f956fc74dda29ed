package ssh

import (
	"context"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/ferrydeploy/ferry/internal/parallel"
)

// Stream is a command that keeps running on the host while its caller talks
// to it: lines to its stdin, its stdout read as it comes. The deploy lock
// holds one per host for the whole run (a root shell that took the lock
// and gives it back on a line from ferry), so that releasing the lock costs
// the host no second sudo. It is a session of its own, never the command
// shell: the shell runs one command at a time.
type Stream struct {
	name  string
	sess  *ssh.Session
	in    io.WriteCloser
	out   io.Reader
	errr  io.Reader // stderr, read once the command ended
	waitc chan error
}

// Start starts cmd as Run would in a session of its own (the login shell,
// sudo for Become, the become password first on its stdin) and returns at
// once. The caller ends it: CloseWrite then Wait, or Close.
func (c *Client) Start(ctx context.Context, cmd string, opts RunOptions) (*Stream, error) {
	if err := CheckEnv(opts.Env); err != nil {
		return nil, fmt.Errorf("%s: %w", c.name, err)
	}
	// The command reads what the caller writes, after what Wrap puts
	// first (the become password, the environment line): a non-nil stdin,
	// so that Wrap does not close it.
	opts.Stdin = strings.NewReader("")
	line, first := Wrap(cmd, opts)
	prefix, err := io.ReadAll(first)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.name, err)
	}
	sess, err := c.newSession(ctx)
	if err != nil {
		return nil, c.sessionErr("open session", err)
	}
	st := &Stream{name: c.name, sess: sess, waitc: make(chan error, 1)}
	// Pipes, not Session.Stdin: a copy from a reader would keep Wait from
	// returning until the caller closed it, and would leave writes blocked
	// for good once the channel is gone; a write to the channel fails then.
	// Stderr too, read when the command has ended: a copy would hold a
	// 32 KiB buffer per host for the whole run (the lock keeps one stream
	// on every host).
	if st.in, err = sess.StdinPipe(); err == nil {
		if st.out, err = sess.StdoutPipe(); err == nil {
			st.errr, err = sess.StderrPipe()
		}
	}
	if err != nil {
		sess.Close()
		return nil, c.sessionErr("start command", err)
	}
	if err := parallel.Await(ctx, func() error { return sess.Start(line) }); err != nil {
		sess.Close()
		return nil, c.sessionErr("start command", err)
	}
	go func() { st.waitc <- sess.Wait() }()
	if len(prefix) > 0 {
		if _, err := st.in.Write(prefix); err != nil {
			st.Close()
			return nil, c.sessionErr("start command", err)
		}
	}
	return st, nil
}

// Write writes to the command's stdin.
func (s *Stream) Write(p []byte) (int, error) { return s.in.Write(p) }

// Read reads the command's stdout.
func (s *Stream) Read(p []byte) (int, error) { return s.out.Read(p) }

// CloseWrite ends the command's stdin.
func (s *Stream) CloseWrite() error { return s.in.Close() }

// Wait waits for the command to end (at most until ctx ends, then it is
// closed) and returns its exit status and what it wrote to stderr.
func (s *Stream) Wait(ctx context.Context) (Result, error) {
	var err error
	select {
	case err = <-s.waitc:
		s.waitc <- err // a second Wait sees the same
	case <-ctx.Done():
		s.Close()
		return Result{ExitCode: -1}, fmt.Errorf("%s: %w", s.name, ctx.Err())
	}
	// The channel has closed: what the command wrote to stderr is buffered.
	stderr, _ := io.ReadAll(io.LimitReader(s.errr, MaxOutput))
	res := Result{Stderr: stderr}
	code, ok := exitCode(err)
	if !ok {
		return res, fmt.Errorf("%s: %w", s.name, err)
	}
	res.ExitCode = code
	return res, nil
}

// Close ends the command at once: its channel is closed (sshd then closes
// its stdin and output; what it does then is up to it).
func (s *Stream) Close() error { return s.sess.Close() }

package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferrydeploy/ferry/internal/parallel"
	"github.com/ferrydeploy/ferry/internal/shell"
)

// The command shell: a command in a session of its own costs three
// exchanges (open the channel, exec, close), each relayed by the bastion, and
// sshd's session setup on the host. So each connection keeps one session
// whose command is a small POSIX sh loop, and Run feeds it one request per
// command on its stdin: one message each way. The loop runs each command exactly as sshd would, as its own
// process: the login shell with -c and the command line that Wrap builds,
// stdin from /dev/null (or the environment line of envOnStdin, through a
// pipe, then EOF), stdout and stderr the session's own. Nothing is installed
// and nothing outlives the connection.
//
// Framing. A request is one line the loop evals: assignments of single-quoted
// values (shell.Quote; newlines and carriage returns come back from
// variables, as in envOnStdin), so the command text is data to the loop,
// never code. Each request carries a fresh 128-bit random token T. Before the
// command, the loop writes "T<\n" on stdout and on stderr; after it, "T>N\n"
// on stdout (N is the exit status) and "T>\n" on stderr. The reader keeps what
// lies between the two markers of each stream, holding back only the bytes
// that could begin a marker, so no framing byte ever reaches the caller's
// writers. The command cannot know T: it is neither in its argv nor in its
// environment.
//
// Background processes. A command that leaves a process writing to the
// inherited stdout or stderr (today's per-command session would have waited
// for it to close them) may write after its end marker. Bytes that arrive
// before the next command's start marker are dropped and the shell is retired
// after that command; bytes written while a later command runs are
// indistinguishable from its output. Such a process should redirect its
// output (it has to anyway: with a per-command session, Run would wait for
// it), or the host can opt out with FERRY_SSH_SHELL=0.
//
// Signals. A command killed by signal n exits 128+n (the loop's wait
// status), where a per-command session reports the signal itself (128).
// Commands run as asynchronous jobs of the loop (so that a cancel can reach
// them), which POSIX shells start with SIGINT and SIGQUIT ignored; the loop
// restores them (bash does; dash cannot, so under a dash login shell
// commands start with SIGINT and SIGQUIT ignored).

// Each command is a new login shell (`$SHELL -c`), not `( eval "$cmd" )` in
// a subshell of the loop, though that costs the host about 1.2 ms of CPU
// less per command (bash, measured: 0.4 ms vs 1.6 ms for a fork and exec):
// in a subshell, $$ would be the loop's PID (`kill $$` would end the loop,
// `echo $$ >pidfile; exec daemon` would record the wrong process) and the
// loop's variables would show. The new shell is exactly what sshd runs.
//
// Except for a command line of literal words only (directLine): `exec`
// and a program's quoted argv (the command module's lines), or ferry's
// own `sudo ... /bin/sh -c '...'` wrapper. The login shell would only exec
// the program, expanding nothing (no $, no glob, nothing unquoted but plain
// characters), so the loop's subshell execs it itself, parsed by the same
// shell: the program gets the same argv, environment (bash and zsh give
// back on exec the SHLVL they added), stdin and stdout, and the host
// saves a login shell.

// shellLoop is the session's command. $__f_sh is the login shell, as sshd
// runs commands (SHELL is set by sshd to the user's shell). bash and zsh
// count themselves in SHLVL: the loop takes itself out, so commands see the
// SHLVL a session of their own would. TERM (Run's
// cancel) is forwarded to the running command before the loop exits.
// The carriage return is a literal (a Go raw string drops it), not
// $(printf '\r'): a fork less when each host's loop starts.
//
// A request with __f_L set gets the connection's prelude (Config.Prelude:
// ferry's host-file functions, about 12 KiB) put back in front of its
// command: the become shell holds it from its start, so such a command
// sends only what follows the prelude and fits in a request
// (maxShellRequest).
const shellLoopHead = `__f_nl='
'
__f_cr='` + "\r" + `'
`

const shellLoopBody = `__f_p=
if [ -n "${BASH_VERSION-}${ZSH_VERSION-}" ] && [ "${SHLVL-0}" -gt 0 ] 2>/dev/null; then SHLVL=$((SHLVL-1)); fi
trap 'if [ -n "$__f_p" ]; then kill -TERM "$__f_p" 2>/dev/null; fi; exit 143' TERM
__f_run() {
trap - INT QUIT
if [ -n "$__f_L" ]; then __f_c=$__f_lib$__f_c; fi
if [ -n "$__f_d" ]; then
eval "$__f_c"
exit
fi
exec "$__f_sh" -c "$__f_c"
}
while IFS= read -r __f_r; do
__f_i= __f_d= __f_L=
eval "$__f_r"
printf '%s<\n' "$__f_t"
printf '%s<\n' "$__f_t" >&2
if [ -z "$__f_i" ]; then
(__f_run) </dev/null &
else
printf '%s' "$__f_i" | (__f_run) &
fi
__f_p=$!
wait "$__f_p" 2>/dev/null
__f_s=$?
__f_p=
printf '%s>\n' "$__f_t" >&2
printf '%s>%d\n' "$__f_t" "$__f_s"
done
`

// shellLoop is the loop's script. Root's (the become shell, root true)
// runs each command with /bin/sh -c, as `sudo ... /bin/sh -c CMD` (Wrap)
// does; the login user's with the login shell.
func shellLoop(prelude string, root bool) string {
	sh := "__f_sh=${SHELL:-/bin/sh}\n"
	if root {
		sh = "__f_sh=/bin/sh\n"
	}
	lib := ""
	if prelude != "" && root {
		// Only root's: the login user's loop starts on every connection of
		// every run, and the file modules' commands become root.
		lib = "__f_lib=" + shell.Quote(prelude) + "\n"
	}
	return shellLoopHead + sh + lib + shellLoopBody
}

// The become shell. A playbook run (Config.ShellFirst) sends every command
// that becomes root without a password (sudo -n) to a second loop on the
// connection, started once as `sudo -n -H -u root -- /bin/sh -c LOOP`:
// each command then runs as /bin/sh -c CMD under that one sudo, exactly
// what sudo would have run for it (the same user, environment, working
// directory, stdin, exit status), without a sudo of its own (about 4 ms
// and 5 ms of CPU per command on the lab's hosts: PAM, sudoers, its
// libraries). What changes: the host's sudo log has one entry per run
// (the loop) instead of one per command, and a sudoers rule that would
// allow some commands only must allow /bin/sh anyway (Wrap's line). When
// sudo cannot start the loop (a password is needed), each command gets
// its own sudo again, with sudo's own message. FERRY_SSH_SHELL=0 turns
// both loops off (docs/security.md).

// maxShellRequest bounds the request line: the loop's read takes a pipe byte
// by byte (about 1-3 µs a byte under bash), so past a few KiB a session of
// its own is cheaper. Measured on the lab through the bastion: 100 bytes
// 1.6 ms in the loop against 3.5-4 ms in a session, 2 KiB 2.1 against 4,
// 8 KiB about even, 16 KiB 7-75 ms against 3-4. Commands carrying the
// hostfs functions (about 12 KiB) therefore keep their own sessions.
const maxShellRequest = 8 << 10

// cmdShell is one running loop.
type cmdShell struct {
	sess   *ssh.Session
	stdin  io.WriteCloser
	out    frameStream
	err    frameStream
	waited chan struct{} // closed when sess.Wait returned
	werr   error
	used   bool // a request has been answered (startup output is not a stray write)
}

// frameStream is one of the loop's output streams and what was read of it
// past the last marker.
type frameStream struct {
	r   io.Reader
	buf []byte
}

var errNoMarker = errors.New("stream ended before the marker")

func (s *frameStream) fill() error {
	// Small: both streams of every host wait in a read while a command
	// runs, each holding this buffer (32 KiB cost ~20 MB at 300 hosts).
	var tmp [4 << 10]byte
	n, err := s.r.Read(tmp[:])
	s.buf = append(s.buf, tmp[:n]...)
	if n > 0 {
		return nil
	}
	if err == nil || err == io.EOF {
		return errNoMarker
	}
	return err
}

// partialSuffix is the length of the longest tail of b that is a proper
// prefix of m: bytes that may yet turn out to be a marker.
func partialSuffix(b, m []byte) int {
	for n := min(len(b), len(m)-1); n > 0; n-- {
		if bytes.HasPrefix(m, b[len(b)-n:]) {
			return n
		}
	}
	return 0
}

// copyUntil writes what comes before marker m to w (nil: discards it),
// consumes m and returns how many bytes came before it. On an error, the
// held-back bytes are written too: they were output after all.
func (s *frameStream) copyUntil(m []byte, w io.Writer) (int64, error) {
	var n int64
	for {
		if i := bytes.Index(s.buf, m); i >= 0 {
			if w != nil {
				w.Write(s.buf[:i])
			}
			n += int64(i)
			s.buf = append(s.buf[:0], s.buf[i+len(m):]...)
			return n, nil
		}
		keep := partialSuffix(s.buf, m)
		out := len(s.buf) - keep
		if w != nil {
			w.Write(s.buf[:out])
		}
		n += int64(out)
		s.buf = append(s.buf[:0], s.buf[out:]...)
		if err := s.fill(); err != nil {
			if w != nil {
				w.Write(s.buf)
			}
			n += int64(len(s.buf))
			s.buf = s.buf[:0]
			return n, err
		}
	}
}

// line consumes the rest of a marker line (at most a few bytes).
func (s *frameStream) line() (string, error) {
	for {
		if i := bytes.IndexByte(s.buf, '\n'); i >= 0 {
			l := string(s.buf[:i])
			s.buf = append(s.buf[:0], s.buf[i+1:]...)
			return l, nil
		}
		if len(s.buf) > 32 {
			return "", errors.New("malformed end marker")
		}
		if err := s.fill(); err != nil {
			return "", err
		}
	}
}

// frame is one stream's part of one request.
type frame struct {
	started bool  // the start marker came: the command may have run
	stray   int64 // bytes before the start marker
	status  string
	err     error
}

func (s *frameStream) read(tok string, w io.Writer) (f frame) {
	if f.stray, f.err = s.copyUntil([]byte(tok+"<\n"), nil); f.err != nil {
		return f
	}
	f.started = true
	if _, f.err = s.copyUntil([]byte(tok+">"), w); f.err != nil {
		return f
	}
	f.status, f.err = s.line()
	return f
}

// shellEligible says whether a command can go through the shell: its
// stdin is none or small and known in full (smallStdin: the loop pipes it
// to the command, then EOF, as a session would), it needs no become
// password on stdin, and it is text the shell can carry (no NUL byte, no
// huge line).
func shellEligible(cmd string, opts RunOptions) bool {
	n := 0
	if opts.Stdin != nil {
		r, ok := opts.Stdin.(*smallStdin)
		if !ok || bytes.IndexByte(r.b, 0) >= 0 {
			return false
		}
		n = len(r.b)
	}
	return opts.BecomePass == "" && !strings.ContainsRune(cmd, 0) && len(cmd)+n < maxShellRequest
}

// smallStdin is a command's stdin known in full before it runs (Run takes
// it from a strings.Reader or bytes.Reader of up to maxShellRequest
// bytes), so it can be given again to a session of its own when the shell
// could not run the command.
type smallStdin struct {
	b []byte
	r *bytes.Reader
}

func (s *smallStdin) Read(p []byte) (int, error) { return s.r.Read(p) }

// knownStdin turns a small strings.Reader or bytes.Reader into a
// smallStdin; any other reader is returned as it is.
func knownStdin(r io.Reader) (io.Reader, error) {
	switch r.(type) {
	case *strings.Reader, *bytes.Reader:
	default:
		return r, nil
	}
	if r.(interface{ Len() int }).Len() >= maxShellRequest {
		return r, nil
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return &smallStdin{b: b, r: bytes.NewReader(b)}, nil
}

// again rewinds s for another attempt.
func (s *smallStdin) again() { s.r = bytes.NewReader(s.b) }

// shellSlot is a connection's command shell: every Client of the
// connection shares it (Manager.Connect makes a Client per call), so a host
// has one shell whoever asks.
type shellSlot struct {
	mu   sync.Mutex
	sh   *cmdShell // the shell, when idle
	busy bool      // a command runs in it (or it is being started)
	off  bool      // it could not run on this host: one session per command
	// used: an eligible command already ran on the connection. The first
	// one gets a session of its own, so a connection that runs one command
	// (ferry exec, status, a lock) never pays for starting the loop; unless
	// the caller said it will send many (Config.ShellFirst: a playbook
	// run), where the first (its preflight or lock) starts the loop and a
	// host saves a session and a login shell.
	used bool
}

// takeShell returns the connection's shell, started if need be, or nil when
// the command must have its own session (the shell is busy with another
// command, is turned off, or could not be started). The caller owns the
// shell until putShell.
func (c *Client) takeShell(ctx context.Context, slot *shellSlot, root bool) *cmdShell {
	slot.mu.Lock()
	first := !slot.used && (c.m == nil || !c.m.cfg.ShellFirst)
	if c.m != nil && c.m.cfg.NoShell || slot.off || slot.busy || first {
		slot.used = true
		slot.mu.Unlock()
		return nil
	}
	slot.busy = true
	sh := slot.sh
	slot.sh = nil
	slot.mu.Unlock()
	if sh != nil && !sh.dead() {
		return sh
	}
	if sh != nil {
		sh.close()
	}
	if root {
		// The become shell starts with a run's first command (the
		// preflight): the login user's starts alongside, not inside the
		// first host's window with its first command.
		c.warm(ctx)
	}
	sh, err := c.startShell(ctx, root)
	if err != nil {
		c.putShell(slot, nil)
		if ctx.Err() == nil {
			// Not tried again for every command (a session each time).
			c.shellOff(slot, fmt.Sprintf("no command shell (%v)", err))
		}
		return nil
	}
	return sh
}

// warm starts the connection's command shell in the background when it
// has none and no command is using it.
func (c *Client) warm(ctx context.Context) {
	slot := c.shell
	slot.mu.Lock()
	if slot.busy || slot.off || slot.sh != nil || c.m == nil || c.m.cfg.NoShell {
		slot.mu.Unlock()
		return
	}
	slot.busy, slot.used = true, true
	slot.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, stopWait)
		defer cancel()
		sh, err := c.startShell(ctx, false)
		c.putShell(slot, sh)
		if err != nil {
			c.shellOff(slot, fmt.Sprintf("no command shell (%v)", err))
		}
	}()
}

// shellOff gives the connection's shell (or its become shell) up: every
// later command on it gets a session (or a sudo) of its own.
func (c *Client) shellOff(slot *shellSlot, why string) {
	slot.mu.Lock()
	slot.off = true
	slot.mu.Unlock()
	if c.m != nil && c.m.cfg.Log != nil {
		what := "one session per command"
		if slot == c.root {
			what = "one sudo per command"
		}
		c.m.cfg.Log("%s: %s: %s from now on", c.name, why, what)
	}
}

// putShell gives the shell back for the next command (nil: it is gone).
func (c *Client) putShell(slot *shellSlot, sh *cmdShell) {
	slot.mu.Lock()
	defer slot.mu.Unlock()
	slot.busy = false
	slot.sh = sh
}

// prelude is the connection's Config.Prelude ("" without a Manager).
func (c *Client) prelude() string {
	if c.m == nil {
		return ""
	}
	return c.m.cfg.Prelude
}

func (c *Client) startShell(ctx context.Context, root bool) (*cmdShell, error) {
	sess, err := c.newSession(ctx)
	if err != nil {
		return nil, err
	}
	sh := &cmdShell{sess: sess, waited: make(chan struct{})}
	in, err1 := sess.StdinPipe()
	out, err2 := sess.StdoutPipe()
	errR, err3 := sess.StderrPipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		sess.Close()
		return nil, err
	}
	sh.stdin, sh.out.r, sh.err.r = in, out, errR
	loop := shellLoop(c.prelude(), root)
	if root {
		loop = "sudo -n -H -u root -- /bin/sh -c " + shell.Quote(loop)
	}
	if err := parallel.Await(ctx, func() error { return sess.Start(loop) }); err != nil {
		sess.Close()
		return nil, err
	}
	go func() {
		sh.werr = sess.Wait()
		close(sh.waited)
	}()
	return sh, nil
}

func (sh *cmdShell) dead() bool {
	select {
	case <-sh.waited:
		return true
	default:
		return false
	}
}

func (sh *cmdShell) close() {
	sh.stdin.Close()
	sh.sess.Close()
}

// request is the line the loop evals for one command: every value is one
// single-quoted word, on one line. lib: the loop puts its prelude back in
// front of line (line is what followed it).
func request(tok, line, stdin string, lib bool) string {
	d := ""
	if lib {
		d = "; __f_L=1"
	} else if x, ok := directLine(line); ok {
		line, d = x, "; __f_d=1"
	}
	return "__f_t=" + shell.Quote(tok) + "; __f_c=" + oneLine(shell.Quote(line)) + "; __f_i=" + oneLine(shell.Quote(stdin)) + d + "\n"
}

// directLine says whether line is literal words only (shell.Literal),
// beginning with exec or sudo, and returns it as the exec the loop's
// subshell runs: then no login shell is needed to run it (see the loop).
func directLine(line string) (string, bool) {
	switch first, _, _ := strings.Cut(line, " "); {
	case !shell.Literal(line):
		return "", false
	case first == "exec":
		return line, true
	case first == "sudo":
		return "exec " + line, true
	}
	return "", false
}

// oneLine puts a quoted word on one line: its newlines and carriage returns
// come back from the loop's variables.
func oneLine(q string) string {
	q = strings.ReplaceAll(q, "\r", `'"$__f_cr"'`)
	return strings.ReplaceAll(q, "\n", `'"$__f_nl"'`)
}

// tokenSeen, when a test sets it, learns every token (to print it back).
var tokenSeen atomic.Pointer[func(c *Client, tok string)]

// newToken makes a request's marker token: 128 random bits (rand.Text).
// ESC first: ordinary output rarely ends with a prefix of a marker, so the
// reader seldom has to hold bytes back from the live writers.
func newToken() string { return "\x1bferry-" + rand.Text() }

// errShellNotStarted: the loop ended before it began the command (it could
// not run on the host's login shell, or the connection was gone): the
// command can have its own session.
var errShellNotStarted = errors.New("command shell ended before the command started")

// runShell runs one command through sh. It returns errShellNotStarted when
// the command never began; keep says whether sh can serve the next command.
func (c *Client) runShell(ctx context.Context, sh *cmdShell, cmd string, opts RunOptions, lib bool) (res Result, keep bool, err error) {
	line, stdinR := Wrap(cmd, opts)
	var stdin string
	if stdinR != nil {
		b, err := io.ReadAll(stdinR)
		if err != nil {
			return res, false, err
		}
		stdin = string(b)
	}
	tok := newToken()
	if f := tokenSeen.Load(); f != nil {
		(*f)(c, tok)
	}
	if _, err := io.WriteString(sh.stdin, request(tok, line, stdin, lib)); err != nil {
		sh.close()
		return res, false, errShellNotStarted
	}
	var outBuf, errBuf cappedBuffer
	outCh, errCh := make(chan frame, 1), make(chan frame, 1)
	go func() { outCh <- sh.out.read(tok, teeWriter(&outBuf, opts.Stdout)) }()
	go func() { errCh <- sh.err.read(tok, teeWriter(&errBuf, opts.Stderr)) }()
	var of, ef frame
	for got := 0; got < 2; got++ {
		select {
		case of = <-outCh:
			outCh = nil
		case ef = <-errCh:
			errCh = nil
		case <-ctx.Done():
			// The loop forwards TERM to the command, then exits.
			_ = sh.sess.Signal(ssh.SIGTERM)
			sh.close()
			deadline := time.After(stopWait)
			for ; got < 2; got++ {
				select {
				case <-outCh:
					outCh = nil
				case <-errCh:
					errCh = nil
				case <-deadline:
					return Result{ExitCode: -1}, false, fmt.Errorf("%s: %w (the host did not acknowledge the stop within %s; check it)", c.name, ctx.Err(), stopWait)
				}
			}
			return Result{ExitCode: -1, Stdout: outBuf.Bytes(), Stderr: errBuf.Bytes()}, false, fmt.Errorf("%s: %w", c.name, ctx.Err())
		}
	}
	res.Stdout, res.Stderr = outBuf.Bytes(), errBuf.Bytes()
	if of.err != nil || ef.err != nil {
		// The loop or the connection ended. Which one shows in how the
		// session ends (bounded: its streams have ended, it is closing).
		select {
		case <-sh.waited:
		case <-time.After(stopWait):
		}
		sh.close()
		var em *ssh.ExitMissingError
		if c.Closed() || !sh.dead() || errors.As(sh.werr, &em) {
			return res, false, &Error{Host: c.name, Kind: KindUnreachable, Err: errors.Join(of.err, ef.err),
				Msg:  "connection lost while the command ran (its outcome is unknown)" + c.lostReason(),
				Hint: "check that the host and its network are up, then what the command did there"}
		}
		if !of.started && !ef.started {
			// The loop ended by itself before it began the command: it
			// cannot run on this host's login shell.
			return res, false, errShellNotStarted
		}
		return res, false, fmt.Errorf("%s: ferry's command shell on the host ended while the command ran (its outcome is unknown): %v; if this repeats, set FERRY_SSH_SHELL=0", c.name, sh.werr)
	}
	code, err := strconv.Atoi(of.status)
	if err != nil || ef.status != "" {
		sh.close()
		return res, false, fmt.Errorf("%s: ferry's command shell sent a malformed end marker %q (set FERRY_SSH_SHELL=0 if this repeats)", c.name, of.status)
	}
	res.ExitCode = code
	// Bytes before a start marker (after the first request, whose may be a
	// login script's) come from a process an earlier command left behind:
	// it may write again, into a later command's output. Start afresh.
	keep = !(sh.used && (of.stray > 0 || ef.stray > 0))
	sh.used = true
	if !keep {
		sh.close()
	}
	return res, keep, nil
}

package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
)

// The command shell (shell.go) against a real sshd: every command of these
// tests but the fallback ones goes through one long-lived session, and each
// must behave as it would in a session of its own.

type shellLab struct {
	l    *lab.Lab
	host string
	ctx  context.Context
}

func startShellLab(t *testing.T) *shellLab {
	t.Helper()
	if testing.Short() {
		t.Skip("lab test")
	}
	l := lab.StartT(t, lab.Options{Hosts: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return &shellLab{l: l, host: l.Hosts[0].Name, ctx: ctx}
}

// connect makes a new connection (its own Manager) to the lab host.
func (s *shellLab) connect(t *testing.T, cfg Config, sshConfig string) *Client {
	t.Helper()
	cfg.KnownHostsFiles = []string{s.l.KnownHosts}
	cfg.Policy = Strict
	cfg.Warn = func(string) {}
	cfg.SSHConfigFiles = []string{}
	if sshConfig != "" {
		cfg.SSHConfigFiles = []string{sshConfig}
	}
	cfg.AgentSocket = "none"
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	c, err := m.Connect(s.ctx, Target{Name: s.host, ConfigFile: s.l.SSHConfig})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// onHost runs a shell command on the host, outside ferry's connection.
func (s *shellLab) onHost(t *testing.T, cmd string) string {
	t.Helper()
	out, err := s.l.Exec(s.ctx, s.host, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitFor polls the host until cond prints "yes" (bounded).
func (s *shellLab) waitFor(t *testing.T, what, cond string) {
	t.Helper()
	for i := 0; ; i++ {
		if strings.TrimSpace(s.onHost(t, "if "+cond+"; then echo yes; fi")) == "yes" {
			return
		}
		if i > 400 {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func run(t *testing.T, c *Client, cmd string, opts RunOptions) Result {
	t.Helper()
	res, err := c.Run(context.Background(), cmd, opts)
	if err != nil {
		t.Fatalf("%q: %v", cmd, err)
	}
	return res
}

// parentOf is the PID of the process that started commands: the command
// shell's loop when they go through it (the same for every command), else
// sshd's session process (a new one each time).
func parentOf(t *testing.T, c *Client) string {
	t.Helper()
	res := run(t, c, `echo "$PPID $(tr '\0' ' ' </proc/$PPID/cmdline)"`, RunOptions{})
	return strings.TrimSpace(string(res.Stdout))
}

// viaShell checks that c's commands go through one command shell.
func viaShell(t *testing.T, c *Client) string {
	t.Helper()
	run(t, c, "true", RunOptions{}) // the connection's first command has a session of its own
	p := parentOf(t, c)
	if !strings.Contains(p, "__f_sh") {
		t.Fatalf("the command's parent is %q, not ferry's command shell", p)
	}
	if again := parentOf(t, c); again != p {
		t.Fatalf("two commands had parents %q and %q: not one shell", p, again)
	}
	return p
}

// normal checks that a plain command behaves normally after another.
func normal(t *testing.T, c *Client, after string) {
	t.Helper()
	res := run(t, c, `echo "ok $((1+1))"; echo e >&2`, RunOptions{})
	if string(res.Stdout) != "ok 2\n" || string(res.Stderr) != "e\n" || res.ExitCode != 0 {
		t.Fatalf("after %q: a plain command gave %+v", after, res)
	}
}

// envToken is envOnStdin's per-command token (in SUDO_COMMAND).
var envToken = regexp.MustCompile(`ferry-env-[0-9A-Z]+`)

// cleanEnv is env's output, sorted, without what differs between any two
// sessions (their addresses, envOnStdin's token).
func cleanEnv(b []byte) string {
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "SSH_CLIENT=") && !strings.HasPrefix(l, "SSH_CONNECTION=") && !strings.HasPrefix(l, "SSH_TTY=") {
			keep = append(keep, l)
		}
	}
	slices.Sort(keep)
	return envToken.ReplaceAllString(strings.Join(keep, "\n"), "ferry-env-T")
}

// isOff says whether a connection gave a shell up.
func isOff(slot *shellSlot) bool {
	slot.mu.Lock()
	defer slot.mu.Unlock()
	return slot.off
}

func TestShellLab(t *testing.T) {
	t.Parallel()
	s := startShellLab(t)
	c := s.connect(t, Config{}, "")
	loop := viaShell(t, c)

	// A stream (the deploy lock's holder) is a session of its own that the
	// caller talks to while commands go through the loop; as root with
	// sudo, with its exit status and stderr once its stdin ends.
	t.Run("Stream", func(t *testing.T) {
		st, err := c.Start(s.ctx, `while IFS= read -r l; do [ "$l" != end ] || break; echo "got $l $(id -u)"; done; echo bye >&2; exit 7`, RunOptions{Become: true})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		for _, w := range []string{"a", "b"} {
			if _, err := st.Write([]byte(w + "\n")); err != nil {
				t.Fatal(err)
			}
			n, err := st.Read(buf)
			if err != nil || string(buf[:n]) != "got "+w+" 0\n" {
				t.Fatalf("read %q %v, want got %s 0 (root)", buf[:n], err, w)
			}
			// The loop answers meanwhile.
			if res := run(t, c, "echo loop", RunOptions{}); string(res.Stdout) != "loop\n" {
				t.Fatalf("loop: %q", res.Stdout)
			}
		}
		st.CloseWrite()
		res, err := st.Wait(s.ctx)
		if err != nil || res.ExitCode != 7 || string(res.Stderr) != "bye\n" {
			t.Errorf("wait: %+v %v, want exit 7, stderr bye", res, err)
		}
	})

	t.Run("ManyCommands", func(t *testing.T) {
		for i := range 40 {
			var live, liveErr bytes.Buffer
			res := run(t, c, fmt.Sprintf(`printf 'out%d'; printf 'err%d\n' >&2; printf 'more\n'; exit %d`, i, i, i%7),
				RunOptions{Stdout: &live, Stderr: &liveErr})
			wantOut, wantErr := fmt.Sprintf("out%dmore\n", i), fmt.Sprintf("err%d\n", i)
			if string(res.Stdout) != wantOut || string(res.Stderr) != wantErr || res.ExitCode != i%7 {
				t.Fatalf("command %d: got %q %q %d", i, res.Stdout, res.Stderr, res.ExitCode)
			}
			if live.String() != wantOut || liveErr.String() != wantErr {
				t.Fatalf("command %d: streamed %q %q", i, live.String(), liveErr.String())
			}
		}
		if p := parentOf(t, c); p != loop {
			t.Fatalf("the shell changed: %q then %q", loop, p)
		}
	})

	t.Run("FirstCommandHasASessionOfItsOwn", func(t *testing.T) {
		// A connection that runs one command never starts the loop.
		fresh := s.connect(t, Config{}, "")
		if p := parentOf(t, fresh); strings.Contains(p, "__f_sh") {
			t.Fatalf("the connection's first command ran in %q, want a session of its own", p)
		}
		if p := parentOf(t, fresh); !strings.Contains(p, "__f_sh") {
			t.Fatalf("the connection's second command ran in %q, want the command shell", p)
		}
	})

	t.Run("ShellFirstStartsTheShellWithTheFirstCommand", func(t *testing.T) {
		// A playbook run: its first command (preflight, lock) starts the loop.
		fresh := s.connect(t, Config{ShellFirst: true}, "")
		first := parentOf(t, fresh)
		if !strings.Contains(first, "__f_sh") {
			t.Fatalf("the connection's first command ran in %q, want the command shell", first)
		}
		if p := parentOf(t, fresh); p != first {
			t.Fatalf("the second command ran in %q, want the first's shell %q", p, first)
		}
	})

	t.Run("OneShellPerConnection", func(t *testing.T) {
		// Manager.Connect makes a Client per call over the one connection:
		// they share its shell (a shell each would soon exceed sshd's
		// MaxSessions, 10 sessions per connection by default).
		for range 12 {
			c2, err := c.m.Connect(s.ctx, Target{Name: s.host, ConfigFile: s.l.SSHConfig})
			if err != nil {
				t.Fatal(err)
			}
			if p := parentOf(t, c2); p != loop {
				t.Fatalf("another Client of the connection ran in %q, not the connection's shell %q", p, loop)
			}
		}
	})

	t.Run("SmallStdin", func(t *testing.T) {
		// A small stdin known in full goes through the loop, piped to the
		// command then EOF, with an environment too and through sudo.
		for _, opts := range []RunOptions{{}, {Env: map[string]string{"FERRY_A": "v"}}, {Become: true}} {
			in := "line 1\nline 'two' $x\n\nlast, no newline"
			opts.Stdin = strings.NewReader(in)
			res := run(t, c, `cat; echo "|$FERRY_A|$PPID"`, opts)
			out, tail, _ := strings.Cut(string(res.Stdout), "|")
			if out != in || !strings.HasPrefix(tail, opts.Env["FERRY_A"]+"|") || res.ExitCode != 0 {
				t.Fatalf("%+v: got %q, exit %d", opts, res.Stdout, res.ExitCode)
			}
			if ppid := strings.TrimSpace(tail[strings.LastIndex(tail, "|")+1:]); !opts.Become && !strings.HasPrefix(loop, ppid+" ") {
				t.Fatalf("%+v: the command's parent is %s, not the loop %q", opts, ppid, loop)
			}
		}
		// A stdin of a request's size keeps a session of its own, whole.
		big := strings.Repeat("0123456789abcdef", maxShellRequest/16+1)
		if res := run(t, c, "wc -c", RunOptions{Stdin: strings.NewReader(big)}); strings.TrimSpace(string(res.Stdout)) != strconv.Itoa(len(big)) {
			t.Fatalf("big stdin: wc -c says %q, want %d", res.Stdout, len(big))
		}
	})

	t.Run("DirectLinesSeeWhatASessionSees", func(t *testing.T) {
		// Literal lines (exec of a quoted argv, ferry's sudo wrapper) run
		// without a login shell of their own: the program must get what it
		// gets from a session of its own (environment, argv, stdin, cwd, its
		// parent the loop, exit status).
		alone := s.connect(t, Config{NoShell: true}, "")
		for _, tc := range []struct {
			line   string
			opts   RunOptions
			direct bool
		}{
			{"exec env", RunOptions{}, true},
			{"exec 'printf' '%s|' 'a b' '$HOME' '*' '\\' 'x'", RunOptions{}, true},
			{"exec 'printf' '%s|' \"x\"", RunOptions{}, false},
			{"exec pwd", RunOptions{}, true},
			{"exec cat", RunOptions{}, true},
			{"exec env", RunOptions{Become: true}, true},
			{"exec env", RunOptions{Become: true, BecomeUser: "nobody"}, true},
			{"exec env", RunOptions{Become: true, Env: map[string]string{"FERRY_A": "x'y\nz"}}, true},
			{"exec 'printf' '%s|' a\\ b 'it'\\''s'", RunOptions{}, true},
			{"exec sh -c 'exit 7'", RunOptions{}, true},
			{"exec no-such-program-ferry", RunOptions{}, true},
		} {
			want, got := run(t, alone, tc.line, tc.opts), run(t, c, tc.line, tc.opts)
			if line, _ := Wrap(tc.line, tc.opts); func() bool { _, ok := directLine(line); return ok }() != tc.direct {
				t.Errorf("%q (%+v): direct is not %v", tc.line, tc.opts, tc.direct)
			}
			if cleanEnv(got.Stdout) != cleanEnv(want.Stdout) || got.ExitCode != want.ExitCode {
				t.Errorf("%q: through the loop %d %q\nin a session %d %q", tc.line, got.ExitCode, got.Stdout, want.ExitCode, want.Stdout)
			}
		}
		// Not literal: a login shell of its own, as before.
		for _, line := range []string{"exec echo $HOME", "exec echo *", "exec echo ~", "FOO=1 exec env", "exec env; true", "echo 'a'", "exec 'a", "exec a\\"} {
			if _, ok := directLine(line); ok {
				t.Errorf("%q was taken as a literal line", line)
			}
		}
		if p := parentOf(t, c); p != loop {
			t.Fatalf("the shell changed: %q then %q", loop, p)
		}
	})

	t.Run("BecomeShell", func(t *testing.T) {
		// A playbook run: a command that becomes root goes to root's loop,
		// started by one sudo for all of them, and sees what `sudo ...
		// /bin/sh -c CMD` in a session of its own shows it (but for
		// SUDO_COMMAND, which names the loop).
		prelude := "ferry_pre() { echo \"pre $1 $(id -u)\"; }\n" + "# " + strings.Repeat("x", maxShellRequest) + "\n"
		pb := s.connect(t, Config{ShellFirst: true, Prelude: prelude}, "")
		alone := s.connect(t, Config{NoShell: true}, "")
		root := RunOptions{Become: true}
		// Where a command ran: its parent (the loop), that one's parent's name.
		where := `echo "$(id -u) $PPID $(cat /proc/$(awk '/^PPid:/{print $2}' /proc/$PPID/status)/comm) $(tr '\0' ' ' </proc/$PPID/cmdline | head -c 40)"`
		first := strings.TrimSpace(string(run(t, pb, where, root).Stdout))
		if f := strings.Fields(first); len(f) < 4 || f[0] != "0" || f[2] != "sudo" || !strings.Contains(first, "__f_nl") {
			t.Fatalf("a become command ran as %q, want uid 0 in a loop under sudo", first)
		}
		for _, cmd := range []string{where, prelude + where} {
			if again := strings.TrimSpace(string(run(t, pb, cmd, root).Stdout)); again != first {
				t.Fatalf("another become command ran in %q, not in the first's loop %q: a sudo each", again, first)
			}
		}
		// The prelude is the become shell's: a command after it (which would
		// not fit in a request whole) runs in the loop, its functions
		// defined; as the login user, in a session of its own.
		if res := run(t, pb, prelude+"ferry_pre a", root); string(res.Stdout) != "pre a 0\n" {
			t.Fatalf("prelude command as root: %q %q", res.Stdout, res.Stderr)
		}
		if res := run(t, pb, prelude+"ferry_pre b; echo \"$PPID\"", RunOptions{}); !strings.HasPrefix(string(res.Stdout), "pre b ") || strings.Contains(first, " "+strings.Fields(string(res.Stdout))[3]+" ") {
			t.Fatalf("prelude command as the login user: %q %q", res.Stdout, res.Stderr)
		}
		for _, tc := range []struct {
			cmd   string
			opts  RunOptions
			stdin string
		}{
			{"exec env -u SUDO_COMMAND", root, ""},
			{"env -u SUDO_COMMAND", root, ""},
			{"env -u SUDO_COMMAND; echo \"$0 $$ $(id -un) $(pwd)\"; cat; exit 3", root, "in\n"},
			{"exec env -u SUDO_COMMAND", RunOptions{Become: true, Env: map[string]string{"FERRY_A": "x'y\nz"}}, ""},
			{"echo \"$0 $SHLVL $HOME\"; ps -o comm= -p $$; kill -TERM $$", root, ""},
		} {
			opts := func() RunOptions {
				o := tc.opts
				if tc.stdin != "" {
					o.Stdin = strings.NewReader(tc.stdin)
				}
				return o
			}
			want, got := run(t, alone, tc.cmd, opts()), run(t, pb, tc.cmd, opts())
			// $$ differs between any two processes.
			pid := regexp.MustCompile(`/bin/sh [0-9]+ `)
			g, w := pid.ReplaceAllString(cleanEnv(got.Stdout), "/bin/sh PID "), pid.ReplaceAllString(cleanEnv(want.Stdout), "/bin/sh PID ")
			if g != w || got.ExitCode != want.ExitCode || string(got.Stderr) != string(want.Stderr) {
				t.Errorf("%q: in the become shell %d %q %q\nwith a sudo of its own %d %q %q", tc.cmd, got.ExitCode, g, got.Stderr, want.ExitCode, w, want.Stderr)
			}
		}
		if again := strings.TrimSpace(string(run(t, pb, where, root).Stdout)); again != first {
			t.Fatalf("the become shell changed: %q then %q", first, again)
		}
		// Another user, a become password: a sudo each, as before.
		if res := run(t, pb, "id -un", RunOptions{Become: true, BecomeUser: "nobody"}); string(res.Stdout) != "nobody\n" {
			t.Fatalf("become nobody: %q", res.Stdout)
		}

		// When sudo wants a password, the loop cannot start: each command
		// gets its own sudo and sudo's own message; commands as the login
		// user are not disturbed.
		s.onHost(t, `cp /etc/sudoers.d/ferry-lab-deploy /tmp/ferry-sudoers && echo 'deploy ALL=(ALL:ALL) ALL' >/etc/sudoers.d/ferry-lab-deploy`)
		t.Cleanup(func() { s.onHost(t, `cp /tmp/ferry-sudoers /etc/sudoers.d/ferry-lab-deploy`) })
		pw := s.connect(t, Config{ShellFirst: true}, "")
		for range 2 {
			res := run(t, pw, "id -u", root)
			if res.ExitCode != 1 || !strings.Contains(string(res.Stderr), "password is required") {
				t.Fatalf("become without a password: %+v", res)
			}
		}
		if !isOff(pw.root) {
			t.Fatal("the become shell was not turned off after sudo refused it")
		}
		normal(t, pw, "sudo refused")
		s.onHost(t, `cp /tmp/ferry-sudoers /etc/sudoers.d/ferry-lab-deploy`)
	})

	t.Run("Output", func(t *testing.T) {
		// No final newline, on both streams.
		res := run(t, c, `printf abc; printf def >&2`, RunOptions{})
		if string(res.Stdout) != "abc" || string(res.Stderr) != "def" {
			t.Fatalf("got %q %q", res.Stdout, res.Stderr)
		}
		// Every byte value, NUL included.
		var format strings.Builder
		var want []byte
		for b := range 256 {
			fmt.Fprintf(&format, `\%03o`, b)
			want = append(want, byte(b))
		}
		res = run(t, c, "printf '"+format.String()+"'; printf '"+format.String()+"' >&2", RunOptions{})
		if !bytes.Equal(res.Stdout, want) || !bytes.Equal(res.Stderr, want) {
			t.Fatalf("binary output: got %q / %q", res.Stdout, res.Stderr)
		}
		// More than MaxOutput: the first MaxOutput bytes are kept, all are streamed.
		var live countWriter
		res = run(t, c, fmt.Sprintf("head -c %d /dev/zero", MaxOutput+12345), RunOptions{Stdout: &live})
		if !bytes.HasPrefix(res.Stdout, make([]byte, MaxOutput)) || !strings.Contains(string(res.Stdout[MaxOutput:]), "12345 more bytes of output not kept") {
			t.Fatalf("capped output: %d bytes, tail %q", len(res.Stdout), res.Stdout[min(len(res.Stdout), MaxOutput):])
		}
		if live.n != MaxOutput+12345 {
			t.Fatalf("streamed %d bytes, want %d", live.n, MaxOutput+12345)
		}
		normal(t, c, "large output")
	})

	t.Run("FakeMarkers", func(t *testing.T) {
		var mu sync.Mutex
		var toks []string
		seen := func(cl *Client, tok string) {
			if cl == c {
				mu.Lock()
				toks = append(toks, tok)
				mu.Unlock()
			}
		}
		tokenSeen.Store(&seen)
		defer tokenSeen.Store(nil)
		normal(t, c, "nothing")
		mu.Lock()
		prev := toks[len(toks)-1]
		mu.Unlock()
		// The previous request's markers, whole and cut short, and
		// lookalikes with a guessed token, on both streams.
		fake := prev + "<\n" + prev + ">0\n" + prev + ">\n" + "\x1bferry-00000000000000000000000000000000>3\n" + prev[:10]
		q := "'" + strings.ReplaceAll(fake, "'", `'\''`) + "'"
		res := run(t, c, "printf '%s' "+q+"; printf '%s' "+q+" >&2; exit 4", RunOptions{})
		if string(res.Stdout) != fake || string(res.Stderr) != fake || res.ExitCode != 4 {
			t.Fatalf("got %q / %q / %d, want %q and exit 4", res.Stdout, res.Stderr, res.ExitCode, fake)
		}
		normal(t, c, "fake markers")
	})

	t.Run("CommandsCannotHarmTheLoop", func(t *testing.T) {
		for _, tc := range []struct {
			cmd  string
			code int // -1: any non-zero
			out  string
		}{
			{"exit 7", 7, ""},
			{"exec true", 0, ""},
			{"exec false", 1, ""},
			{"cd / && pwd", 0, "/\n"},
			{"set -e; false; echo no", 1, ""},
			{"if then fi ((", -1, ""},
			{"'unterminated", -1, ""},
			{"trap 'echo trapped' EXIT; trap '' TERM; echo set", 0, "set\ntrapped\n"},
			{"__f_t=x; __f_sh=/bin/false; __f_c='echo hijacked'; FERRY_X=1; export FERRY_X; alias echo=false", 0, ""},
			{"set -u; echo $FERRY_UNSET_VAR", -1, ""},
			{"kill -TERM $$", 128 + 15, ""},
			{"exec >&-; exec 2>&-; exit 3", 3, ""},
			{"cat; echo read-nothing", 0, "read-nothing\n"},
			{"read x; echo \"[$x] $?\"", 0, "[] 1\n"},
		} {
			res, err := c.Run(context.Background(), tc.cmd, RunOptions{})
			if err != nil {
				t.Fatalf("%q: %v", tc.cmd, err)
			}
			if tc.code == -1 && res.ExitCode == 0 || tc.code >= 0 && res.ExitCode != tc.code || string(res.Stdout) != tc.out {
				t.Fatalf("%q: got exit %d, stdout %q, stderr %q; want exit %d, stdout %q", tc.cmd, res.ExitCode, res.Stdout, res.Stderr, tc.code, tc.out)
			}
			normal(t, c, tc.cmd)
			res = run(t, c, `pwd; echo "${FERRY_X-unset}"; trap`, RunOptions{})
			if home := strings.TrimSpace(s.onHost(t, "getent passwd "+s.l.User+" | cut -d: -f6")); string(res.Stdout) != home+"\nunset\n" {
				t.Fatalf("after %q: the next command saw %q (want the home directory, no variable, no trap)", tc.cmd, res.Stdout)
			}
		}
		if p := parentOf(t, c); p != loop {
			t.Fatalf("the shell changed: %q then %q", loop, p)
		}
	})

	t.Run("Signals", func(t *testing.T) {
		// Commands start with the signals ignored that a session of their
		// own starts with (what sshd inherited: none, unless whatever
		// started the lab ignored some), not INT and QUIT on top as a
		// background job would (the lab's login shell is bash; see
		// shell.go for dash).
		res := run(t, c, sigIgn, RunOptions{})
		if alone := run(t, s.connect(t, Config{NoShell: true}, ""), sigIgn, RunOptions{}); string(res.Stdout) != string(alone.Stdout) {
			t.Fatalf("the command started with %q, in a session of its own with %q", res.Stdout, alone.Stdout)
		}
	})

	t.Run("Env", func(t *testing.T) {
		val := "it's \"quoted\" $HOME `id` \\ \n second line\r\n\ttab é"
		env := map[string]string{"FERRY_A": val, "FERRY_B": "", "FERRY_C": "'"}
		res := run(t, c, `printf '%s|%s|%s' "$FERRY_A" "$FERRY_B" "$FERRY_C"; cat`, RunOptions{Env: env})
		if want := val + "||'"; string(res.Stdout) != want {
			t.Fatalf("got %q, want %q", res.Stdout, want)
		}
		res = run(t, c, `printf '%s|%s' "$FERRY_A" "$(id -u)"`, RunOptions{Env: env, Become: true})
		if want := val + "|0"; string(res.Stdout) != want {
			t.Fatalf("become: got %q, want %q", res.Stdout, want)
		}
		// While the command runs, no process on the host (the loop, the
		// command's shell, sudo) has the value on its command line.
		secret := fmt.Sprintf("s3cr3t-%d", time.Now().UnixNano())
		for _, become := range []bool{false, true} {
			res = run(t, c, `cat /proc/[0-9]*/cmdline | tr '\0' ' '; printf '\n%s' "$FERRY_SECRET"`, RunOptions{Env: map[string]string{"FERRY_SECRET": secret + "\n'x"}, Become: become})
			ps, got, _ := strings.Cut(string(res.Stdout), "\n"+secret)
			if strings.Contains(ps, "s3cr3t") || got != "\n'x" {
				t.Fatalf("become=%v: the secret is on a command line, or the command did not get it: %q", become, res.Stdout)
			}
		}
		res = run(t, c, `echo "${FERRY_A-unset}"`, RunOptions{})
		if string(res.Stdout) != "unset\n" {
			t.Fatalf("the next command saw %q", res.Stdout)
		}
		if p := parentOf(t, c); p != loop {
			t.Fatalf("the shell changed: %q then %q", loop, p)
		}
	})

	t.Run("SecretsNotInArgvAndCancel", func(t *testing.T) {
		secret := fmt.Sprintf("s3cr3t-%d", time.Now().UnixNano())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := c.Run(ctx, `echo $$ >/tmp/ferry-shell.pid; exec sleep 60`, RunOptions{Env: map[string]string{"FERRY_SECRET": secret + "\n'x"}})
			done <- err
		}()
		running := `p=$(cat /tmp/ferry-shell.pid 2>/dev/null) && [ "$(cat /proc/$p/comm 2>/dev/null)" = sleep ]`
		s.waitFor(t, "the sleep", running)
		if out := s.onHost(t, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"); strings.Contains(out, "s3cr3t") {
			t.Fatalf("the secret is on a command line: %q", out)
		}
		if out := s.onHost(t, `tr '\0' '\n' </proc/$(cat /tmp/ferry-shell.pid)/environ`); !strings.Contains(out, "FERRY_SECRET="+secret) {
			t.Fatalf("the command did not get the secret: %q", out)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		s.waitFor(t, "the sleep to end", "! { "+running+"; }")
		normal(t, c, "a cancel")
		if p := viaShell(t, c); p == loop {
			t.Fatalf("the shell of the cancelled command was kept: %q", p)
		}
		loop = parentOf(t, c)
	})

	t.Run("BusyShellFallsBack", func(t *testing.T) {
		s.onHost(t, "rm -f /tmp/ferry-go /tmp/ferry-a")
		done := make(chan Result, 1)
		go func() {
			res, err := c.Run(context.Background(), `echo $PPID >/tmp/ferry-a; i=0; while [ ! -e /tmp/ferry-go ] && [ $i -lt 1000 ]; do sleep 0.05; i=$((i+1)); done; echo a`, RunOptions{})
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
		s.waitFor(t, "the first command", "[ -s /tmp/ferry-a ]")
		res := run(t, c, `touch /tmp/ferry-go; echo "b $PPID $(tr '\0' ' ' </proc/$PPID/cmdline)"`, RunOptions{})
		a := <-done
		busyParent := strings.TrimSpace(s.onHost(t, "cat /tmp/ferry-a"))
		if string(a.Stdout) != "a\n" || !strings.HasPrefix(string(res.Stdout), "b ") {
			t.Fatalf("got %q and %q", a.Stdout, res.Stdout)
		}
		if !strings.HasPrefix(loop, busyParent+" ") || strings.Contains(string(res.Stdout), "__f_sh") {
			t.Fatalf("the first command's parent was %s, the second's %q: want the shell (%q), then a session of its own", busyParent, res.Stdout, loop)
		}
		if p := parentOf(t, c); p != loop {
			t.Fatalf("the shell changed: %q then %q", loop, p)
		}
	})

	t.Run("StrayOutputRetiresTheShell", func(t *testing.T) {
		s.onHost(t, "rm -f /tmp/ferry-go2 /tmp/ferry-said")
		run(t, c, `( i=0; while [ ! -e /tmp/ferry-go2 ] && [ $i -lt 1000 ]; do sleep 0.05; i=$((i+1)); done; echo late; echo late >&2; touch /tmp/ferry-said ) &`, RunOptions{})
		s.onHost(t, "touch /tmp/ferry-go2")
		s.waitFor(t, "the late output", "[ -e /tmp/ferry-said ]")
		normal(t, c, "a late write") // the late bytes are dropped
		if p := viaShell(t, c); p == loop {
			t.Fatalf("the shell that got stray output was kept: %q", p)
		}
	})

	t.Run("OptOut", func(t *testing.T) {
		c := s.connect(t, Config{NoShell: true}, "")
		if p := parentOf(t, c); strings.Contains(p, "__f_sh") {
			t.Fatalf("NoShell: the command's parent is %q, want sshd", p)
		}
		res := run(t, c, `printf x; exit 3`, RunOptions{Env: map[string]string{"FERRY_A": "v"}})
		if string(res.Stdout) != "x" || res.ExitCode != 3 {
			t.Fatalf("got %+v", res)
		}
		// The environment commands see is the same either way (but for the
		// connections' client ports).
		const show = `env | grep -v -e '^_=' -e '^SSH_CLIENT=' -e '^SSH_CONNECTION=' | sort`
		if alone, shared := run(t, c, show, RunOptions{}), run(t, s.connect(t, Config{}, ""), show, RunOptions{}); string(alone.Stdout) != string(shared.Stdout) {
			t.Fatalf("environment in a session of its own:\n%s\nthrough the shell:\n%s", alone.Stdout, shared.Stdout)
		}
	})

	// Last: it takes the host's link down.
	t.Run("ConnectionLost", func(t *testing.T) {
		cfgFile := filepath.Join(t.TempDir(), "ssh_config")
		if err := os.WriteFile(cfgFile, []byte("Host *\n    ServerAliveInterval 1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c := s.connect(t, Config{}, cfgFile)
		viaShell(t, c)
		done := make(chan error, 1)
		go func() {
			_, err := c.Run(s.ctx, `echo $$ >/tmp/ferry-lost.pid; exec sleep 60`, RunOptions{})
			done <- err
		}()
		s.waitFor(t, "the sleep", `p=$(cat /tmp/ferry-lost.pid 2>/dev/null) && [ "$(cat /proc/$p/comm 2>/dev/null)" = sleep ]`)
		if err := s.l.SetLink(s.host, false); err != nil {
			t.Fatal(err)
		}
		defer s.l.SetLink(s.host, true)
		var err error
		select {
		case err = <-done:
		case <-s.ctx.Done():
			t.Fatal("Run never returned")
		}
		var se *Error
		if !errors.As(err, &se) || se.Kind != KindUnreachable || !strings.Contains(err.Error(), "connection lost while the command ran (its outcome is unknown)") {
			t.Fatalf("err = %v, want the unreachable error", err)
		}
	})
}

type countWriter struct{ n int }

func (w *countWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// TestShellLoginShells: the loop under dash as the login shell, and a
// login shell that refuses to run it: every command then falls back to a
// session of its own, from the first, with nothing of the refusal in its
// output.
// sigIgn prints the signals a command started with ignored.
const sigIgn = `grep '^SigIgn' /proc/$$/status`

func TestShellLoginShells(t *testing.T) {
	t.Parallel()
	s := startShellLab(t)
	// The host's /etc is its own overlay layer: this changes only the lab host.
	setShell := func(sh string) {
		s.onHost(t, `sed -i 's|^\(`+s.l.User+`:.*:\)[^:]*$|\1`+sh+`|' /etc/passwd && grep -q '^`+s.l.User+`:.*:`+sh+`$' /etc/passwd`)
	}

	t.Run("Dash", func(t *testing.T) {
		setShell("/bin/sh")
		if out := s.onHost(t, "readlink -f /bin/sh"); !strings.Contains(out, "dash") {
			t.Skipf("/bin/sh is %s, not dash", out)
		}
		c := s.connect(t, Config{}, "")
		viaShell(t, c)
		for i := range 10 {
			res := run(t, c, fmt.Sprintf(`printf 'o%d'; printf 'e%d' >&2; exit %d`, i, i, i), RunOptions{})
			if string(res.Stdout) != fmt.Sprintf("o%d", i) || string(res.Stderr) != fmt.Sprintf("e%d", i) || res.ExitCode != i {
				t.Fatalf("command %d: %+v", i, res)
			}
		}
		val := "a'b\nc\r\\d $x"
		res := run(t, c, `printf '%s|%s' "$FERRY_A" "$(id -u)"`, RunOptions{Env: map[string]string{"FERRY_A": val}, Become: true})
		if string(res.Stdout) != val+"|0" {
			t.Fatalf("env and become: %q", res.Stdout)
		}
		for _, opts := range []RunOptions{{}, {Become: true}} {
			alone := s.connect(t, Config{NoShell: true}, "")
			if got, want := run(t, c, "exec env", opts), run(t, alone, "exec env", opts); cleanEnv(got.Stdout) != cleanEnv(want.Stdout) {
				t.Fatalf("exec env (%+v) under dash: through the loop %q, in a session %q", opts, got.Stdout, want.Stdout)
			}
		}
		if res := run(t, c, "kill -TERM $$", RunOptions{}); res.ExitCode != 143 {
			t.Fatalf("kill -TERM $$: exit %d", res.ExitCode)
		}
		// Documented: dash cannot restore SIGINT and SIGQUIT for the
		// commands: those two on top of what a session of its own has.
		alone := run(t, s.connect(t, Config{NoShell: true}, ""), sigIgn, RunOptions{})
		var mask uint64
		if _, err := fmt.Sscanf(string(alone.Stdout), "SigIgn:\t%x", &mask); err != nil {
			t.Fatalf("SigIgn in a session of its own: %q: %v", alone.Stdout, err)
		}
		if res := run(t, c, sigIgn, RunOptions{}); string(res.Stdout) != fmt.Sprintf("SigIgn:\t%016x\n", mask|0x6) {
			t.Fatalf("under dash, the command started with %q", res.Stdout)
		}
		normal(t, c, "dash")
	})

	t.Run("Refused", func(t *testing.T) {
		s.onHost(t, `printf '%s\n' '#!/bin/bash' 'case "$2" in *__f_sh*) echo "oddsh: no loops here" >&2; exit 1;; esac' 'exec /bin/bash "$@"' >/usr/local/bin/ferry-oddsh && chmod 755 /usr/local/bin/ferry-oddsh`)
		setShell("/usr/local/bin/ferry-oddsh")
		c := s.connect(t, Config{}, "")
		for range 3 {
			if p := parentOf(t, c); strings.Contains(p, "__f_sh") {
				t.Fatalf("the command ran in a loop: %q", p)
			}
			res := run(t, c, `printf out; printf err >&2; exit 5`, RunOptions{})
			if string(res.Stdout) != "out" || string(res.Stderr) != "err" || res.ExitCode != 5 {
				t.Fatalf("got %+v", res)
			}
		}
		if !isOff(c.shell) {
			t.Fatal("the shell was not turned off for this connection after the login shell refused it")
		}
	})
}

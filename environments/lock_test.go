package environments

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dirConn runs the lock and state scripts with bash on this machine, with
// /var/lib/ferry replaced by the host's own directory: the real protocol
// (flock, rename) without SSH. It records each command it runs.
type dirConn struct {
	name, dir string
	log       *cmdLog
	deny      bool // answer as sudo does without passwordless sudo
}

type cmdLog struct {
	mu   sync.Mutex
	seq  atomic.Int64
	cmds []logged
}

type logged struct {
	host       string
	op         string
	start, end int64
}

func (c *dirConn) Run(ctx context.Context, cmd string, opts RunOptions) (Result, error) {
	start := c.log.seq.Add(1)
	defer func() {
		end := c.log.seq.Add(1)
		op := "?"
		for _, o := range []string{"acquire", "heartbeat", "release", "force"} {
			if strings.Contains(cmd, "\nlk "+o+"\n") {
				op = o
			}
		}
		c.log.mu.Lock()
		c.log.cmds = append(c.log.cmds, logged{c.name, op, start, end})
		c.log.mu.Unlock()
	}()
	if c.deny {
		return Result{ExitCode: 1, Stderr: []byte("sudo: a password is required\n")}, nil
	}
	// /bin/sh, as sudo runs it on a host (dash on Debian): the scripts are POSIX.
	sh := exec.CommandContext(ctx, "/bin/sh", "-c", strings.ReplaceAll(cmd, stateDir, c.dir))
	sh.Stdin = opts.Stdin
	var out, errb strings.Builder
	sh.Stdout, sh.Stderr = &out, &errb
	err := sh.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return Result{ExitCode: ee.ExitCode(), Stdout: []byte(out.String()), Stderr: []byte(errb.String())}, nil
	}
	return Result{Stdout: []byte(out.String()), Stderr: []byte(errb.String())}, err
}

// holdingConn is a dirConn that can keep a command running (Starter): the
// lock takes a holder on it, as on an SSH connection.
type holdingConn struct{ *dirConn }

func (c holdingConn) Start(ctx context.Context, cmd string, opts RunOptions) (Stream, error) {
	st := &dirStream{c: c.dirConn, start: c.log.seq.Add(1), op: "acquire"}
	if c.deny {
		cmd = "echo 'sudo: a password is required' >&2; exit 1"
	}
	st.cmd = exec.Command("/bin/sh", "-c", strings.ReplaceAll(cmd, stateDir, c.dir))
	st.cmd.Stderr = &st.errb
	var err error
	if st.in, err = st.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if st.out, err = st.cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if err := st.cmd.Start(); err != nil {
		return nil, err
	}
	if opts.BecomePass != "" { // sudo with NOPASSWD leaves it unread
		io.WriteString(st.in, opts.BecomePass+"\n")
	}
	return st, nil
}

// dirStream is a holder run by /bin/sh on this machine. It logs each
// operation it carries (acquire, then heartbeats and the release, from the
// lines ferry writes) as a command, ended by the answer's last line.
type dirStream struct {
	c     *dirConn
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   io.Reader
	errb  strings.Builder
	op    string
	start int64
}

func (s *dirStream) Write(p []byte) (int, error) {
	for _, o := range []string{"heartbeat", "release"} {
		if strings.Contains(string(p), o+"\n") {
			s.op, s.start = o, s.c.log.seq.Add(1)
		}
	}
	return s.in.Write(p)
}

func (s *dirStream) Read(p []byte) (int, error) {
	n, err := s.out.Read(p)
	if s.op != "" && strings.Contains(string(p[:n]), holderEnd) {
		end := s.c.log.seq.Add(1)
		s.c.log.mu.Lock()
		s.c.log.cmds = append(s.c.log.cmds, logged{s.c.name, s.op, s.start, end})
		s.c.log.mu.Unlock()
		s.op = ""
	}
	return n, err
}

func (s *dirStream) CloseWrite() error { return s.in.Close() }

func (s *dirStream) Wait(ctx context.Context) (Result, error) {
	err := s.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return Result{ExitCode: ee.ExitCode(), Stderr: []byte(s.errb.String())}, nil
	}
	return Result{Stderr: []byte(s.errb.String())}, err
}

func (s *dirStream) Close() error {
	s.in.Close()
	return s.cmd.Process.Kill()
}

func (l *cmdLog) count(host, op string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.cmds {
		if c.host == host && (op == "" || c.op == op) {
			n++
		}
	}
	return n
}

func dirHosts(t *testing.T, names ...string) ([]LockHost, *cmdLog) {
	t.Helper()
	return dirHostsHolding(t, false, names...)
}

// dirHostsHolding: with holding, connections that can keep a holder running.
func dirHostsHolding(t *testing.T, holding bool, names ...string) ([]LockHost, *cmdLog) {
	t.Helper()
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock(1)")
	}
	root := t.TempDir()
	log := &cmdLog{}
	var hs []LockHost
	for _, n := range names {
		d := filepath.Join(root, n)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		var c Conn = &dirConn{name: n, dir: d, log: log}
		if holding {
			c = holdingConn{c.(*dirConn)}
		}
		hs = append(hs, LockHost{Name: n, Conn: c})
	}
	return hs, log
}

func lockFile(h LockHost, env string) string {
	return filepath.Join(dirOf(h).dir, "locks", env+".json")
}

func dirOf(h LockHost) *dirConn {
	if hc, ok := h.Conn.(holdingConn); ok {
		return hc.dirConn
	}
	return h.Conn.(*dirConn)
}

// bothWays runs f on connections that take the lock with one command per
// operation and on connections that keep a holder.
func bothWays(t *testing.T, f func(t *testing.T, hosts func(names ...string) ([]LockHost, *cmdLog))) {
	for _, holding := range []bool{false, true} {
		name := map[bool]string{false: "commands", true: "holder"}[holding]
		t.Run(name, func(t *testing.T) {
			f(t, func(names ...string) ([]LockHost, *cmdLog) { return dirHostsHolding(t, holding, names...) })
		})
	}
}

func testOpts(run string, warn func(string)) LockOptions {
	return LockOptions{Info: LockInfo{Env: "staging", Holder: "ben", RunID: run}, Timeout: time.Minute, Warn: warn}
}

// The gate is taken alone, then every other host at once: one command per
// host, and none of the others starts before the gate's has answered.
func TestAcquireGateThenTheRest(t *testing.T) {
	bothWays(t, func(t *testing.T, dirHosts func(names ...string) ([]LockHost, *cmdLog)) {
		hosts, log := dirHosts("app3", "app1", "app5", "app2", "app4")
		l, err := Acquire(context.Background(), hosts, testOpts("r1", nil))
		if err != nil {
			t.Fatal(err)
		}
		var gateEnd, firstOther int64 = 0, 1 << 62
		for _, c := range log.cmds {
			if c.host == "app1" {
				gateEnd = c.end
			} else {
				firstOther = min(firstOther, c.start)
			}
		}
		if gateEnd == 0 || firstOther < gateEnd {
			t.Errorf("the gate app1 answered at %d, another host started at %d: %+v", gateEnd, firstOther, log.cmds)
		}
		for _, h := range hosts {
			if n := log.count(h.Name, ""); n != 1 {
				t.Errorf("%s: %d commands to acquire, want 1", h.Name, n)
			}
			if _, err := os.Stat(lockFile(h, "staging")); err != nil {
				t.Errorf("%s: no lock file: %v", h.Name, err)
			}
		}
		// Releasing carries each host's release record: still one command per host.
		recs := map[string][]Release{"app2": {{App: "demo", Env: "staging", Version: "v2", RunID: "r1"}, {App: "other", Version: "v9"}}}
		if err := l.Release(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts {
			if n := log.count(h.Name, "release"); n != 1 {
				t.Errorf("%s: %d release commands, want 1", h.Name, n)
			}
			if _, err := os.Stat(lockFile(h, "staging")); !os.IsNotExist(err) {
				t.Errorf("%s: lock file left after release: %v", h.Name, err)
			}
		}
		dir := dirOf(hosts[3]).dir // app2
		for app, want := range map[string]string{"demo": `"version":"v2"`, "other": `"version":"v9"`} {
			b, err := os.ReadFile(filepath.Join(dir, app+".json"))
			if err != nil || !strings.Contains(string(b), want) {
				t.Errorf("app2 %s record: %q %v", app, b, err)
			}
			if st, err := os.Stat(filepath.Join(dir, app+".json")); err == nil && st.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v", app, st.Mode())
			}
		}
		if _, err := os.Stat(filepath.Join(dirOf(hosts[0]).dir, "demo.json")); !os.IsNotExist(err) {
			t.Errorf("app3 got a record it was not given: %v", err)
		}
	})
}

// Two contenders started together, many times, with the same list and
// with lists whose first hosts differ: exactly one proceeds each time.
func TestAcquireTwoContenders(t *testing.T) {
	bothWays(t, func(t *testing.T, dirHosts func(names ...string) ([]LockHost, *cmdLog)) {
		all, _ := dirHosts("app1", "app2", "app3", "app4", "app5", "app6")
		lists := [][2][]LockHost{
			{all[1:], all[1:]},          // same gate
			{all[0:4], all[1:]},         // gates app1 and app2
			{all[2:], {all[0], all[5]}}, // gates app3 and app1, one host in common
		}
		for round := range 12 {
			pair := lists[round%len(lists)]
			var wg sync.WaitGroup
			var locks [2]*Lock
			var errs [2]error
			start := make(chan struct{})
			for k := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					locks[k], errs[k] = Acquire(context.Background(), pair[k], testOpts(fmt.Sprintf("run%d-%d", round, k), nil))
				}()
			}
			close(start)
			wg.Wait()
			won := 0
			for k := range 2 {
				var held *HeldError
				switch {
				case errs[k] == nil:
					won++
				case !errors.As(errs[k], &held):
					t.Fatalf("round %d: contender %d: %v", round, k, errs[k])
				}
			}
			t.Logf("round %d: %v %v", round, errs[0], errs[1])
			if won != 1 {
				t.Fatalf("round %d: %d contenders proceeded (errors %v, %v)", round, won, errs[0], errs[1])
			}
			for _, l := range locks {
				if l != nil {
					l.Release(context.Background(), nil)
				}
			}
			for _, h := range all {
				if _, err := os.Stat(lockFile(h, "staging")); !os.IsNotExist(err) {
					t.Fatalf("round %d: %s still locked (the loser left its file?)", round, h.Name)
				}
			}
		}
	})
}

// writeHolder leaves a lock file as a run of this machine with pid would.
func writeHolder(t *testing.T, hosts []LockHost, pid int, bootID string) {
	t.Helper()
	machine, _, _, _ := thisProcess()
	_, start := procStat(pid)
	for _, h := range hosts {
		os.MkdirAll(filepath.Dir(lockFile(h, "staging")), 0o700)
		js := fmt.Sprintf(`{"env":"staging","holder":"ann","run_id":"dead-run","started":"2026-12-01T00:00:00Z","token":"t0","gate":"app1","machine":%q,"boot_id":%q,"pid":%d,"pid_start":%q}`,
			machine, bootID, pid, start)
		if err := os.WriteFile(lockFile(h, "staging"), []byte(js+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A holder that was a process of this machine and is gone is taken over at
// once, with a warning; one elsewhere (another boot) is not.
func TestAcquireDeadHolderHere(t *testing.T) {
	bothWays(t, func(t *testing.T, dirHosts func(names ...string) ([]LockHost, *cmdLog)) {
		hosts, _ := dirHosts("app1", "app2", "app3")
		_, bootID, _, _ := thisProcess()
		if bootID == "" {
			t.Skip("no boot id on this system")
		}
		dead := exec.Command("true")
		if err := dead.Run(); err != nil {
			t.Fatal(err)
		}
		writeHolder(t, hosts, dead.Process.Pid, bootID)
		var warns []string
		var mu sync.Mutex
		warn := func(s string) { mu.Lock(); warns = append(warns, s); mu.Unlock() }
		l, err := Acquire(context.Background(), hosts, testOpts("r2", warn))
		if err != nil {
			t.Fatalf("a dead holder of this machine was not taken over: %v", err)
		}
		l.Release(context.Background(), nil)
		if len(warns) != 1 || !strings.Contains(warns[0], "dead-run") || !strings.Contains(warns[0], "is gone") {
			t.Errorf("warnings %q, want one naming the dead run", warns)
		}

		// The same PID on another boot (another machine): held, exit 5.
		writeHolder(t, hosts, dead.Process.Pid, "another-boot")
		_, err = Acquire(context.Background(), hosts, testOpts("r3", nil))
		var held *HeldError
		if !errors.As(err, &held) || held.Holder.RunID != "dead-run" {
			t.Errorf("holder from another boot: %v", err)
		}
		// A live process of this machine (this test) holds it: held.
		writeHolder(t, hosts, os.Getpid(), bootID)
		if _, err = Acquire(context.Background(), hosts, testOpts("r4", nil)); !errors.As(err, &held) {
			t.Errorf("live holder: %v", err)
		}
	})
}

// A host where sudo needs a password: a PrivilegeError naming it, and the
// hosts taken before are given back.
func TestAcquireWithoutPrivilege(t *testing.T) {
	bothWays(t, func(t *testing.T, dirHosts func(names ...string) ([]LockHost, *cmdLog)) {
		hosts, _ := dirHosts("app1", "app2", "bastion")
		dirOf(hosts[2]).deny = true
		_, err := Acquire(context.Background(), hosts, testOpts("r5", nil))
		var pe *PrivilegeError
		if !errors.As(err, &pe) || pe.Host != "bastion" || !strings.Contains(err.Error(), "passwordless sudo") {
			t.Fatalf("got %v, want a PrivilegeError for bastion", err)
		}
		for _, h := range hosts[:2] {
			if _, err := os.Stat(lockFile(h, "staging")); !os.IsNotExist(err) {
				t.Errorf("%s: lock left after the failure: %v", h.Name, err)
			}
		}
	})
}

// passwordFirst is a connection whose sudo left the become password
// unread on stdin (NOPASSWD): it must not end up in the record.
type passwordFirst struct{ *dirConn }

func (c passwordFirst) Run(ctx context.Context, cmd string, opts RunOptions) (Result, error) {
	if opts.Stdin != nil {
		opts.Stdin = io.MultiReader(strings.NewReader("hunter2\n"), opts.Stdin)
	}
	return c.dirConn.Run(ctx, cmd, opts)
}

func TestWriteReleaseSkipsUnreadPassword(t *testing.T) {
	hosts, _ := dirHosts(t, "app1")
	dc := hosts[0].Conn.(*dirConn)
	if err := WriteRelease(context.Background(), passwordFirst{dc}, Release{App: "demo", Version: "v3"}, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dc.dir, "demo.json"))
	if err != nil || strings.Contains(string(b), "hunter2") || !strings.HasPrefix(string(b), `{"app":"demo"`) {
		t.Errorf("record %q, %v", b, err)
	}
}

// Every branch of the lock script, run by /bin/sh over a real directory:
// a fresh lock, another run's fresh lock (held, with its age), a stale one
// (taken over), heartbeats of the holder and of a run that lost it, a
// release by a run that does not hold it (nothing removed) and by the
// holder, and a forced release.
func TestLockScriptPaths(t *testing.T) {
	hosts, _ := dirHosts(t, "app1")
	h := hosts[0]
	o := testOpts("r1", nil)
	run := func(op, token string, info []byte) lockAnswer {
		t.Helper()
		a, err := o.run(context.Background(), h, op, token, info, nil)
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		return a
	}
	mine := []byte(`{"env":"staging","run_id":"r1","token":"aaaa"}`)
	theirs := []byte(`{"env":"staging","run_id":"r2","token":"bbbb"}`)
	f := lockFile(h, "staging")
	if a := run("acquire", "aaaa", mine); a.state != "acquired" {
		t.Fatalf("free lock: %q", a.state)
	}
	if b, _ := os.ReadFile(f); string(b) != string(mine)+"\n" {
		t.Fatalf("lock file %q", b)
	}
	if a := run("acquire", "aaaa", mine); a.state != "acquired" {
		t.Errorf("own lock again: %q", a.state)
	}
	old := time.Now().Add(-40 * time.Second) // the timeout is a minute
	os.Chtimes(f, old, old)
	if a := run("acquire", "bbbb", theirs); a.state != "held" || a.info == nil || a.info.RunID != "r1" || a.info.Age < 30*time.Second {
		t.Errorf("another run's lock: %q %+v", a.state, a.info)
	}
	if a := run("heartbeat", "aaaa", nil); a.state != "ok" {
		t.Errorf("holder's heartbeat: %q", a.state)
	}
	if st, _ := os.Stat(f); time.Since(st.ModTime()) > time.Minute {
		t.Errorf("heartbeat did not touch the file: %v", st.ModTime())
	}
	old = time.Now().Add(-2 * time.Minute)
	os.Chtimes(f, old, old)
	if a := run("acquire", "bbbb", theirs); a.state != "taken" || a.info == nil || a.info.RunID != "r1" {
		t.Errorf("stale lock: %q %+v", a.state, a.info)
	}
	if a := run("heartbeat", "aaaa", nil); a.state != "lost" || a.info == nil || a.info.RunID != "r2" {
		t.Errorf("heartbeat of the run that lost it: %q %+v", a.state, a.info)
	}
	if a := run("release", "aaaa", nil); a.state != "notmine" {
		t.Errorf("release by a run that does not hold it: %q", a.state)
	}
	if _, err := os.Stat(f); err != nil {
		t.Errorf("another run's release removed the file: %v", err)
	}
	if a := run("release", "bbbb", nil); a.state != "released" {
		t.Errorf("holder's release: %q", a.state)
	}
	if _, err := os.Stat(f); !os.IsNotExist(err) {
		t.Errorf("lock file left after its holder released it: %v", err)
	}
	run("acquire", "bbbb", theirs)
	if a := run("force", "", nil); a.state != "released" || a.info == nil || a.info.RunID != "r2" {
		t.Errorf("forced release: %q %+v", a.state, a.info)
	}
	if a := run("force", "", nil); a.state != "free" {
		t.Errorf("forced release of a free lock: %q", a.state)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(f), ".tmp.*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// The holder: heartbeats go through it (no command of their own), a holder
// whose stdin ends without "release" (its controller died) exits and leaves
// the lock held, and a release whose holder is gone falls back to a
// command, which removes the file.
func TestHolder(t *testing.T) {
	hosts, log := dirHostsHolding(t, true, "app1", "app2")
	var warns []string
	var mu sync.Mutex
	warn := func(s string) { mu.Lock(); warns = append(warns, s); mu.Unlock() }
	l, err := Acquire(context.Background(), hosts, testOpts("r1", warn))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		a, err := l.heartbeatOn(context.Background(), h)
		if err != nil || a.state != "ok" {
			t.Fatalf("%s: heartbeat %q %v", h.Name, a.state, err)
		}
		if n := log.count(h.Name, "heartbeat"); n != 1 {
			t.Errorf("%s: %d heartbeats logged, want 1 (through the holder)", h.Name, n)
		}
	}
	// app1's holder loses its stdin, as when the controller is killed.
	hd := l.holderOf("app1")
	if _, err := hd.end(context.Background()); err != nil {
		t.Fatalf("the holder did not exit when its stdin ended: %v", err)
	}
	if _, err := os.Stat(lockFile(hosts[0], "staging")); err != nil {
		t.Fatalf("the lock was not left held: %v", err)
	}
	other, err := Acquire(context.Background(), hosts, testOpts("r2", nil))
	var held *HeldError
	if !errors.As(err, &held) || held.Holder.RunID != "r1" {
		t.Fatalf("a second run: %v (lock %v), want held by r1", err, other)
	}
	// The release finds app1's holder gone and releases with a command.
	recs := map[string][]Release{"app1": {{App: "demo", Version: "v2"}}}
	if err := l.Release(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if _, err := os.Stat(lockFile(h, "staging")); !os.IsNotExist(err) {
			t.Errorf("%s: lock file left: %v", h.Name, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dirOf(hosts[0]).dir, "demo.json")); err != nil || !strings.Contains(string(b), `"version":"v2"`) {
		t.Errorf("app1 record %q %v", b, err)
	}
	if log.count("app1", "release") != 1 || len(warns) != 1 || !strings.Contains(warns[0], "holder did not answer") {
		t.Errorf("app1: %d release commands, warnings %q; want one command and one warning", log.count("app1", "release"), warns)
	}
}

// A record whose app name is not one AppName makes is refused by the
// holder (no file outside the state directory), and the lock is released.
func TestHolderRefusesBadAppName(t *testing.T) {
	hosts, _ := dirHostsHolding(t, true, "app1")
	l, err := Acquire(context.Background(), hosts, testOpts("r1", nil))
	if err != nil {
		t.Fatal(err)
	}
	hd := l.takeHolder("app1")
	out, err := hd.ask(context.Background(), "record ../evil {}\nrelease\n")
	if err != nil || !strings.Contains(string(out), stateFailed) || !strings.Contains(string(out), "FERRY-LOCK released") {
		t.Fatalf("answer %q %v", out, err)
	}
	hd.end(context.Background())
	if _, err := os.Stat(filepath.Join(dirOf(hosts[0]).dir, "..", "evil.json")); !os.IsNotExist(err) {
		t.Errorf("a record was written outside the state directory: %v", err)
	}
}

// With a become password that sudo did not read (NOPASSWD), the holder
// skips it: the lock is taken, and the password is in no file.
func TestHolderSkipsUnreadPassword(t *testing.T) {
	hosts, _ := dirHostsHolding(t, true, "app1")
	o := testOpts("r1", nil)
	o.Become.BecomePass = "hunter2"
	l, err := Acquire(context.Background(), hosts, o)
	if err != nil {
		t.Fatal(err)
	}
	if l.holderOf("app1") == nil {
		t.Fatal("no holder: the lock was taken with a command")
	}
	if err := l.Release(context.Background(), map[string][]Release{"app1": {{App: "demo", Version: "v3"}}}); err != nil {
		t.Fatal(err)
	}
	dir := dirOf(hosts[0]).dir
	b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
	if err != nil || strings.Contains(string(b), "hunter2") || !strings.HasPrefix(string(b), `{"app":"demo"`) {
		t.Errorf("record %q, %v", b, err)
	}
	if _, err := os.Stat(lockFile(hosts[0], "staging")); !os.IsNotExist(err) {
		t.Errorf("lock file left: %v", err)
	}
}

package environments

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrydeploy/ferry/internal/parallel"
	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/output"
)

// The deploy lock of an environment lives on its hosts: one file per host,
// /var/lib/ferry/locks/<env>.json, changed only under flock(1) on that host,
// so each host's check-and-set is atomic. A run holds the environment when
// it holds the file on every host of its list; it takes the first host of
// the list (in sorted order: its gate) alone, then all the others at once,
// and gives back all it took when one is held by someone else (after
// waiting briefly for a holder whose gate comes later, which gives way).
// docs/environments.md has the argument for why two contenders never both
// proceed and one of them does.

// Conn runs a command on a host. environments does not know the SSH
// client: internal/cli adapts a host's connection to it (rootConn), so
// inventory plugins and environments stay below the runner's transport.
type Conn interface {
	Run(ctx context.Context, cmd string, opts RunOptions) (Result, error)
}

// RunOptions are what the lock's and the release record's commands need:
// root on the host (with the become password when sudo asks for one), and
// their input.
type RunOptions struct {
	Become     bool
	BecomePass string
	Stdin      io.Reader
}

// Result of a command: a non-zero exit is not an error.
type Result struct {
	ExitCode       int
	Stdout, Stderr []byte
}

// LockHost is one host of the environment and its connection.
type LockHost struct {
	Name string
	Conn Conn
}

// LockInfo is what a lock file says about its holder.
type LockInfo struct {
	Env      string    `json:"env"`
	Holder   string    `json:"holder"` // user
	Origin   string    `json:"origin,omitempty"`
	RunID    string    `json:"run_id"`
	Version  string    `json:"version,omitempty"`
	Playbook string    `json:"playbook,omitempty"`
	Started  time.Time `json:"started"`
	Token    string    `json:"token"`
	// Heartbeat is when the holder last proved it is alive (the file's
	// mtime); Age is how long ago that was on the host's own clock.
	Heartbeat time.Time     `json:"heartbeat"`
	Age       time.Duration `json:"age_ns"`
	Host      string        `json:"host,omitempty"`
	// Gate is the first host of the holder's list: of two runs that meet,
	// the one with the earlier gate goes first.
	Gate string `json:"gate,omitempty"`
	// Machine, BootID, PID and PIDStart name the holder's process, so a
	// run on the same machine can tell that the holder is dead.
	Machine  string `json:"machine,omitempty"`
	BootID   string `json:"boot_id,omitempty"`
	PID      int    `json:"pid,omitempty"`
	PIDStart string `json:"pid_start,omitempty"`
}

// String shows the holder on one line; what the lock file claims (its
// holder wrote it, and root on the host could) is escaped.
func (i LockInfo) String() string {
	s := fmt.Sprintf("%s (run %s", output.SafeText(i.Holder), output.SafeText(i.RunID))
	if i.Origin != "" {
		s += ", from " + output.SafeText(i.Origin)
	}
	if i.Version != "" {
		s += ", version " + output.SafeText(i.Version)
	}
	if !i.Started.IsZero() {
		s += ", since " + i.Started.UTC().Format("2006-01-02 15:04:05Z")
	}
	return s + fmt.Sprintf(", heartbeat %s ago)", i.Age.Round(time.Second))
}

// PrivilegeError: the lock file cannot be written on a host because the
// login user cannot become root there without a password.
type PrivilegeError struct {
	Host string
	Msg  string // what sudo said
}

func (e *PrivilegeError) Error() string {
	return fmt.Sprintf("the deploy lock cannot be written on %s: the login user cannot become root there (%s); ferry keeps the lock in %s as root: give that user passwordless sudo on %s, set FERRY_BECOME_PASSWORD, or, if the playbook never deploys to %s, keep it out of the plays' hosts: patterns or of the environment's limit",
		e.Host, e.Msg, lockDir, e.Host, e.Host)
}

// HeldError: someone else holds the environment's lock (exit 5).
type HeldError struct {
	Env    string
	Holder LockInfo
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("environment %s is locked by %s on %s: wait for it with --lock-wait DURATION, or, if that run is dead, `ferry lock release --env %s`",
		e.Env, e.Holder, e.Holder.Host, e.Env)
}

// LockOptions configure Acquire.
type LockOptions struct {
	Info LockInfo // Env and who is taking it; Token and Started are set by Acquire
	// Timeout: a lock whose heartbeat is older is stale and taken over (default 2m).
	Timeout time.Duration
	// Wait: how long to queue behind another holder (0: fail at once, after
	// a few quick retries that settle two contenders starting together).
	Wait time.Duration
	// Become is how to reach root on the hosts (BecomePass, when sudo needs one).
	Become RunOptions
	// Warn receives what the operator must read: stale locks taken over,
	// hosts skipped, a heartbeat that found the lock gone.
	Warn func(msg string)
	// Lost is called (once) when a heartbeat finds the lock taken from this
	// run; the run should stop.
	Lost func(err error)
	// Resumes is the run this one resumes (ferry run --resume): its lock,
	// left by a run that died, is taken over at once.
	Resumes string
}

// Lock is a held environment lock. Release it, also on failure.
type Lock struct {
	Info  LockInfo
	hosts []LockHost
	opts  LockOptions

	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	lostOnce sync.Once
	// adopt: run ids whose files acquire takes over (the resumed run, dead
	// holders of this machine); warned: dead holders already reported.
	adopt  []string
	warned map[string]bool
	// holders: by host, the running holders of the lock (lockholder.go).
	hmu     sync.Mutex
	holders map[string]*holder
}

// takeHolder returns and forgets the holder of host (nil: none).
func (l *Lock) takeHolder(host string) *holder {
	l.hmu.Lock()
	defer l.hmu.Unlock()
	hd := l.holders[host]
	delete(l.holders, host)
	return hd
}

// holderOf returns the holder of host (nil: none).
func (l *Lock) holderOf(host string) *holder {
	l.hmu.Lock()
	defer l.hmu.Unlock()
	return l.holders[host]
}

// acquireOn takes the lock on h: with a holder when its connection can
// keep one running, else with one command.
func (l *Lock) acquireOn(ctx context.Context, h LockHost, raw []byte, adopt []string) (lockAnswer, error) {
	a, hd, ok, err := l.opts.startHolder(ctx, h, l.Info.Token, raw, adopt)
	if !ok {
		return l.opts.run(ctx, h, "acquire", l.Info.Token, raw, adopt)
	}
	if hd != nil {
		l.hmu.Lock()
		l.holders[h.Name] = hd
		l.hmu.Unlock()
	}
	return a, err
}

// DefaultLockTimeout is how old a heartbeat makes a lock stale.
const DefaultLockTimeout = 2 * time.Minute

const lockDir = "/var/lib/ferry/locks"

// lockScript runs one operation on one host's lock file under flock. Output:
// a line "FERRY-LOCK <state> <age seconds>", then the file (one JSON line).
// adopt lists the run ids whose files acquire takes over at once (a run
// this one resumes, a holder whose process is gone).
func lockScript(op, env, token string, timeout time.Duration, info []byte, adopt []string) string {
	return lockFuncs(env, token, timeout, info, adopt) + "lk " + op + "\n"
}

// lockFuncs defines lk OP, one operation on the host's lock file under
// flock (lockScript runs one; the holder, one per line it reads).
//
// On the common paths (a free lock taken, our own released or refreshed)
// an operation starts two processes besides the shell, flock and
// mv/rm/touch: the file is read and matched with builtins, its age is
// asked only when someone else's file is there, and the temporary file is
// named by the shell's PID, unique on the host while the guard is held
// (the directory is root's, 0700). Each process is a fork and exec on
// every host at once, on the critical path of every run.
func lockFuncs(env, token string, timeout time.Duration, info []byte, adopt []string) string {
	quoted := make([]string, len(adopt))
	for i, a := range adopt {
		quoted[i] = shell.Quote(a)
	}
	return fmt.Sprintf(`set -u; umask 077
d=%[1]s; f="$d/"%[2]s.json; tok=%[3]s; st=
[ -d "$d" ] || mkdir -p "$d" || exit 90
ago() { [ -f "$f" ] && age=$(( $(date +%%s) - $(stat -c %%Y "$f") )); }
write() { t="$d/.tmp.$$"; printf '%%s\n' %[4]s >"$t" && mv -f "$t" "$f"; }
lk() {
exec 9>"$d/.guard"
if ! flock -w 10 9; then echo "FERRY-LOCK busy 0"; exec 9>&-; return 0; fi
l=; [ -f "$f" ] && { IFS= read -r l <"$f" || [ -n "$l" ]; }
mine=no; case $l in *"\"token\":\"$tok\""*) mine=yes ;; esac
adopt=no; if [ -f "$f" ]; then for res in %[6]s; do case $l in *"\"run_id\":\"$res\""*) adopt=yes ;; esac; done; fi
age=0; w=yes
case $1 in
acquire)
  if [ -f "$f" ] && [ $mine = no ]; then
    ago
    if [ $adopt = yes ]; then echo "FERRY-LOCK resumed $age"; cat "$f"
    elif [ "$age" -le %[5]d ]; then echo "FERRY-LOCK held $age"; cat "$f"; w=no
    else echo "FERRY-LOCK stale $age"; cat "$f"; fi
  fi
  if [ $w = yes ] && write; then echo "FERRY-LOCK acquired 0"; st=held; fi ;;
heartbeat)
  if [ $mine = yes ]; then touch "$f"; echo "FERRY-LOCK ok 0"; else ago; echo "FERRY-LOCK lost $age"; cat "$f" 2>/dev/null; fi ;;
release)
  if [ $mine = yes ]; then rm -f "$f"; echo "FERRY-LOCK released 0"; else ago; echo "FERRY-LOCK notmine $age"; fi ;;
force)
  if [ -f "$f" ]; then ago; echo "FERRY-LOCK released $age"; cat "$f"; rm -f "$f"; else echo "FERRY-LOCK free 0"; fi ;;
esac
exec 9>&-
}
`, lockDir, shell.Quote(env), shell.Quote(token), shell.Quote(string(info)), int(timeout.Seconds()), strings.Join(quoted, " "))
}

// lockAnswer is one host's answer to a lock operation.
type lockAnswer struct {
	state    string
	info     *LockInfo // the file as it was (held, stale, lost, force)
	stateErr error     // the release record written with it failed
}

func parseLockAnswer(out []byte) (lockAnswer, error) {
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var a lockAnswer
	var age time.Duration
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 3 && f[0] == "FERRY-LOCK" {
			switch {
			case a.state == "":
				a.state = f[1]
				n, _ := strconv.Atoi(f[2])
				age = time.Duration(n) * time.Second
			case a.state == "stale" && f[1] == "acquired":
				a.state = "taken"
			case a.state == "resumed" && f[1] == "acquired":
				a.state = "adopted"
			}
			continue
		}
		if strings.HasPrefix(line, "{") && a.info == nil {
			var info LockInfo
			if err := json.Unmarshal([]byte(line), &info); err != nil {
				return a, fmt.Errorf("unreadable lock file: %v", err)
			}
			info.Age = age
			info.Heartbeat = time.Now().Add(-age).Truncate(time.Second)
			a.info = &info
		}
	}
	if a.state == "" {
		return a, fmt.Errorf("no answer from the lock script (is flock(1) installed? it is in util-linux): %s", strings.TrimSpace(string(out)))
	}
	return a, nil
}

// deniedBySudo reports whether sudo's complaint means the login user
// cannot become root without a password (as opposed to a failing command).
func deniedBySudo(stderr string) bool {
	for _, m := range []string{"a password is required", "a terminal is required", "is not in the sudoers", "is not allowed to run sudo", "may not run sudo"} {
		if strings.Contains(stderr, m) {
			return true
		}
	}
	return false
}

// exec runs one lock script (op names it in errors) as root on h.
func (o LockOptions) exec(ctx context.Context, h LockHost, op, script string, stdin io.Reader) (lockAnswer, error) {
	ro := o.Become
	ro.Become = true
	ro.Stdin = stdin
	res, err := h.Conn.Run(ctx, script, ro)
	if err != nil {
		return lockAnswer{}, fmt.Errorf("lock %s on %s: %w", op, h.Name, err)
	}
	stderr := strings.TrimSpace(string(res.Stderr))
	if res.ExitCode != 0 {
		if deniedBySudo(stderr) {
			return lockAnswer{}, &PrivilegeError{Host: h.Name, Msg: stderr}
		}
		return lockAnswer{}, fmt.Errorf("lock %s on %s: exit %d: %s", op, h.Name, res.ExitCode, stderr)
	}
	a, err := parseLockAnswer(res.Stdout)
	if err != nil {
		return a, fmt.Errorf("lock %s on %s: %w", op, h.Name, err)
	}
	if a.info != nil {
		a.info.Host = h.Name
	}
	if bytes.Contains(res.Stdout, []byte(stateFailed)) {
		a.stateErr = fmt.Errorf("record release on %s: %s", h.Name, stderr)
	}
	return a, nil
}

func (o LockOptions) run(ctx context.Context, h LockHost, op, token string, info []byte, adopt []string) (lockAnswer, error) {
	return o.exec(ctx, h, op, lockScript(op, o.Info.Env, token, o.Timeout, info, adopt), nil)
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// How long a run waits for a holder whose gate comes after its own to give
// way: that holder gives up as soon as it meets this run and gives back
// what it took, about two round trips, so the wait is a few of this run's
// own round trips (bounded), not a queue behind a holder that proceeded.
const (
	yieldRoundTrips = 4
	yieldMin        = 250 * time.Millisecond
	yieldMax        = 2 * time.Second
)

// Acquire takes the environment's lock on every host: the first host in
// sorted order (the gate) alone, then all the others at once. When a host
// is held by another run it gives back what it took and, within
// opts.Wait, tries again after a random back-off; then it returns a
// *HeldError naming the holder. A holder that is a dead process of this
// machine is taken over at once (with a warning). The returned Lock
// heartbeats until Release.
func Acquire(ctx context.Context, hosts []LockHost, opts LockOptions) (*Lock, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultLockTimeout
	}
	if opts.Warn == nil {
		opts.Warn = func(string) {}
	}
	if len(hosts) == 0 {
		return nil, errors.New("lock: no host to hold the lock on")
	}
	hosts = append([]LockHost(nil), hosts...)
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
	info := opts.Info
	info.Token = newToken()
	if info.Started.IsZero() {
		info.Started = time.Now().UTC()
	}
	info.Heartbeat, info.Age, info.Host = time.Time{}, 0, ""
	info.Gate = hosts[0].Name
	info.Machine, info.BootID, info.PID, info.PIDStart = thisProcess()
	raw, err := json.Marshal(struct {
		Env      string    `json:"env"`
		Holder   string    `json:"holder"`
		Origin   string    `json:"origin,omitempty"`
		RunID    string    `json:"run_id"`
		Version  string    `json:"version,omitempty"`
		Playbook string    `json:"playbook,omitempty"`
		Started  time.Time `json:"started"`
		Token    string    `json:"token"`
		Gate     string    `json:"gate"`
		Machine  string    `json:"machine,omitempty"`
		BootID   string    `json:"boot_id,omitempty"`
		PID      int       `json:"pid,omitempty"`
		PIDStart string    `json:"pid_start,omitempty"`
	}{info.Env, info.Holder, info.Origin, info.RunID, info.Version, info.Playbook, info.Started, info.Token,
		info.Gate, info.Machine, info.BootID, info.PID, info.PIDStart})
	if err != nil {
		return nil, err
	}
	l := &Lock{Info: info, hosts: hosts, opts: opts, warned: map[string]bool{}, holders: map[string]*holder{}}
	if opts.Resumes != "" {
		l.adopt = []string{opts.Resumes}
	}
	deadline := time.Now().Add(opts.Wait)
	var lastHeld *HeldError
	for {
		held, err := l.tryAll(ctx, raw)
		if err != nil {
			return nil, err
		}
		if held == nil {
			l.stop, l.done = make(chan struct{}), make(chan struct{})
			go l.heartbeat()
			return l, nil
		}
		// No retry without --lock-wait: of two contenders one always gets
		// through (docs/environments.md), so giving up cannot starve both.
		if opts.Wait <= 0 || !time.Now().Before(deadline) {
			return nil, held
		}
		if lastHeld == nil || lastHeld.Holder.RunID != held.Holder.RunID {
			opts.Warn(fmt.Sprintf("waiting up to %s for the lock of %s, held by %s", time.Until(deadline).Round(time.Second), info.Env, held.Holder))
		}
		lastHeld = held
		pause := min(time.Duration(250+mrand.IntN(750))*time.Millisecond, time.Until(deadline))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
	}
}

// tryAll takes the gate, then every other host at once. A host held by a
// run whose gate comes after ours is asked again for a while (that run
// gives way); any other holder makes it give back what it took and
// return who holds the lock.
func (l *Lock) tryAll(ctx context.Context, raw []byte) (*HeldError, error) {
	taken := make([]bool, len(l.hosts))
	giveBack := func() {
		var mine []LockHost
		for i, ok := range taken {
			if ok {
				mine = append(mine, l.hosts[i])
			}
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		l.releaseHosts(rctx, mine, nil)
	}
	todo := []int{0} // the gate alone first
	gatePassed := false
	var yieldFrom time.Time
	var slowest time.Duration // this run's slowest round so far
	pause := 20 * time.Millisecond
	for adoptions := 0; ; {
		adopt := append([]string(nil), l.adopt...)
		answers := make([]lockAnswer, len(todo))
		errs := make([]error, len(todo))
		began := time.Now()
		parallel.Each(ctx, len(todo), 0, func(k int) {
			answers[k], errs[k] = l.acquireOn(ctx, l.hosts[todo[k]], raw, adopt)
		})
		slowest = max(slowest, time.Since(began))
		var retry []int
		var conflict, yielding *HeldError // a holder that goes first; one that gives way
		var failed error
		adopted := false
		for k, i := range todo {
			h, a := l.hosts[i], answers[k]
			if err := errs[k]; err != nil {
				var pe *PrivilegeError
				if failed == nil || errors.As(err, &pe) {
					failed = err
				}
				continue
			}
			switch a.state {
			case "acquired":
				taken[i] = true
			case "taken":
				taken[i] = true
				was := "a dead run"
				if a.info != nil {
					was = a.info.String()
				}
				l.opts.Warn(fmt.Sprintf("took over the stale lock of %s on %s from %s: no heartbeat for longer than the lock timeout (%s)",
					l.Info.Env, h.Name, was, l.opts.Timeout))
			case "adopted":
				taken[i] = true
				if a.info != nil && a.info.RunID == l.opts.Resumes {
					l.opts.Warn(fmt.Sprintf("took over on %s the lock of run %s, which this run resumes", h.Name, l.opts.Resumes))
				}
			case "held":
				holder := LockInfo{Holder: "another run", Host: h.Name}
				if a.info != nil {
					holder = *a.info
				}
				switch {
				case deadHere(holder):
					l.adoptDead(holder)
					adopted = true
					retry = append(retry, i)
				case gatePassed && holder.Gate > l.Info.Gate:
					// Its gate comes after ours: it gives way when it meets us.
					retry = append(retry, i)
					if yielding == nil {
						yielding = &HeldError{Env: l.Info.Env, Holder: holder}
					}
				case conflict == nil:
					conflict = &HeldError{Env: l.Info.Env, Holder: holder}
				}
			case "":
				// not asked: ctx ended
			default: // busy: another contender is in this host's critical section right now
				if conflict == nil {
					conflict = &HeldError{Env: l.Info.Env, Holder: LockInfo{Holder: "another ferry (taking the lock right now)", Host: h.Name}}
				}
			}
		}
		switch {
		case ctx.Err() != nil:
			giveBack()
			return nil, ctx.Err()
		case failed != nil:
			giveBack()
			return nil, failed
		case conflict != nil:
			giveBack()
			return conflict, nil
		case len(retry) > 0:
			if adopted {
				adoptions++
				if adoptions > 3 {
					giveBack()
					return nil, fmt.Errorf("lock %s: could not take over the lock of a dead run", l.Info.Env)
				}
			} else {
				if yieldFrom.IsZero() {
					yieldFrom = time.Now()
				}
				if time.Since(yieldFrom) >= min(max(yieldRoundTrips*slowest, yieldMin), yieldMax) {
					giveBack()
					return yielding, nil
				}
				select {
				case <-ctx.Done():
					giveBack()
					return nil, ctx.Err()
				case <-time.After(pause):
				}
				pause = min(2*pause, 500*time.Millisecond)
			}
			todo = retry
			continue
		}
		if gatePassed || len(l.hosts) == 1 {
			return nil, nil
		}
		gatePassed = true
		todo = make([]int, len(l.hosts)-1)
		for i := range todo {
			todo[i] = i + 1
		}
	}
}

// adoptDead makes the next attempts take over the files of holder, a run
// of this machine whose process is gone, and says so once.
func (l *Lock) adoptDead(holder LockInfo) {
	if l.warned[holder.RunID] {
		return
	}
	l.warned[holder.RunID] = true
	l.adopt = append(l.adopt, holder.RunID)
	l.opts.Warn(fmt.Sprintf("took over the lock of %s from %s: that run's process (pid %d on this machine) is gone",
		l.Info.Env, holder, holder.PID))
}

// releaseHosts removes this run's lock file from hosts, all at once; the
// releases in records (by host) are written in the same command.
func (l *Lock) releaseHosts(ctx context.Context, hosts []LockHost, records map[string][]Release) error {
	errs := make([]error, len(hosts))
	parallel.Each(ctx, len(hosts), 0, func(i int) {
		h := hosts[i]
		if hd := l.takeHolder(h.Name); hd != nil {
			a, err := l.holderRelease(ctx, hd, records[h.Name])
			if err == nil {
				errs[i] = a.stateErr
				return
			}
			// The holder is gone (the link dropped and came back, say): a
			// command of its own releases the lock and writes the records.
			l.opts.Warn(fmt.Sprintf("lock release on %s: its holder did not answer (%v); releasing with a command", h.Name, err))
		}
		script := lockScript("release", l.Info.Env, l.Info.Token, l.opts.Timeout, nil, nil)
		var stdin io.Reader
		if rels := records[h.Name]; len(rels) > 0 {
			write, in, err := recordScript(rels)
			if err != nil {
				errs[i] = fmt.Errorf("record release on %s: %w", h.Name, err)
			} else {
				// The record first: once the lock is free, the host says what it runs.
				// (Not `( ... ) || echo`: that would turn off set -e inside.)
				script = "( " + write + ")\n[ $? -eq 0 ] || echo " + stateFailed + "\n" + script
				stdin = in
			}
		}
		a, err := l.opts.exec(ctx, h, "release", script, stdin)
		errs[i] = errors.Join(errs[i], err, a.stateErr)
	})
	return errors.Join(errs...)
}

// heartbeat refreshes every host's lock file at a quarter of the timeout,
// and reports a lock that was taken away.
func (l *Lock) heartbeat() {
	defer close(l.done)
	every := max(l.opts.Timeout/4, 200*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		parallel.Each(ctx, len(l.hosts), 0, func(i int) {
			h := l.hosts[i]
			a, err := l.heartbeatOn(ctx, h)
			switch {
			case err != nil:
				l.opts.Warn(fmt.Sprintf("lock heartbeat: %v", err))
			case a.state == "lost":
				by := "`ferry lock release` (the file is gone)"
				if a.info != nil {
					by = a.info.String()
				}
				err := fmt.Errorf("the lock of %s on %s was taken over by %s: this run stops", l.Info.Env, h.Name, by)
				l.lostOnce.Do(func() {
					l.opts.Warn(err.Error())
					if l.opts.Lost != nil {
						l.opts.Lost(err)
					}
				})
			}
		})
		cancel()
	}
}

// heartbeatOn refreshes h's lock file: through its holder, else (or when
// the holder does not answer) with a command.
func (l *Lock) heartbeatOn(ctx context.Context, h LockHost) (lockAnswer, error) {
	if hd := l.holderOf(h.Name); hd != nil {
		out, err := hd.ask(ctx, "heartbeat\n")
		if err == nil {
			a, err := parseLockAnswer(out)
			if a.info != nil {
				a.info.Host = h.Name
			}
			return a, err
		}
		if ctx.Err() != nil {
			return lockAnswer{}, err
		}
		l.takeHolder(h.Name)
		hd.s.Close()
	}
	return l.opts.run(ctx, h, "heartbeat", l.Info.Token, nil, nil)
}

// Release stops the heartbeat and removes this run's lock file from every
// host at once (files another run took over are left alone). records, by
// host, are the releases to record there: they ride on the same command.
func (l *Lock) Release(ctx context.Context, records map[string][]Release) error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		err = l.releaseHosts(ctx, l.hosts, records)
	})
	return err
}

// Hosts returns the hosts the lock is held on, sorted.
func (l *Lock) Hosts() []string {
	out := make([]string, len(l.hosts))
	for i, h := range l.hosts {
		out[i] = h.Name
	}
	return out
}

// ForceRelease removes the environment's lock file from every host,
// whoever holds it, and returns what was there.
func ForceRelease(ctx context.Context, hosts []LockHost, env string, become RunOptions) ([]LockInfo, error) {
	o := LockOptions{Info: LockInfo{Env: env}, Become: become, Timeout: DefaultLockTimeout}
	found := make([]*LockInfo, len(hosts))
	errs := make([]error, len(hosts))
	parallel.Each(ctx, len(hosts), 0, func(i int) {
		a, err := o.run(ctx, hosts[i], "force", "", nil, nil)
		found[i], errs[i] = a.info, err
	})
	var out []LockInfo
	for _, f := range found {
		if f != nil {
			out = append(out, *f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out, errors.Join(errs...)
}

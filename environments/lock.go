package environments

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/output"
	"github.com/ferrydeploy/ferry/ssh"
)

// The deploy lock of an environment lives on its hosts: one file per host,
// /var/lib/ferry/locks/<env>.json, changed only under flock(1) on that host,
// so each host's check-and-set is atomic. A run holds the environment when
// it holds the file on every host of the environment; it takes them one by
// one in sorted host order and gives back all it took at the first host
// held by someone else. docs/environments.md has the argument for why two
// contenders can never both proceed.

// Conn runs a command on a host (an *ssh.Client, a tasks.Conn).
type Conn interface {
	Run(ctx context.Context, cmd string, opts ssh.RunOptions) (ssh.Result, error)
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
	Become ssh.RunOptions
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
}

// DefaultLockTimeout is how old a heartbeat makes a lock stale.
const DefaultLockTimeout = 2 * time.Minute

const lockDir = "/var/lib/ferry/locks"

// lockScript runs one operation on one host's lock file under flock. Output:
// a line "FERRY-LOCK <state> <age seconds>", then the file (one JSON line).
func lockScript(op, env, token string, timeout time.Duration, info []byte, resumes string) string {
	return fmt.Sprintf(`set -u; umask 077
d=%[1]s; f="$d/"%[2]s.json; tok=%[3]s; res=%[7]s
mkdir -p "$d" || exit 90
exec 9>"$d/.guard"
flock -w 10 9 || { echo "FERRY-LOCK busy 0"; exit 0; }
now=$(date +%%s)
age=0; [ -f "$f" ] && age=$(( now - $(stat -c %%Y "$f") ))
mine=no; [ -f "$f" ] && grep -q "\"token\":\"$tok\"" "$f" && mine=yes
adopt=no; [ -n "$res" ] && [ -f "$f" ] && grep -q "\"run_id\":\"$res\"" "$f" && adopt=yes
write() { t=$(mktemp "$d/.tmp.XXXXXX") && printf '%%s\n' %[5]s >"$t" && mv -f "$t" "$f"; }
case %[4]s in
acquire)
  if [ -f "$f" ] && [ $mine = no ]; then
    if [ $adopt = yes ]; then echo "FERRY-LOCK resumed $age"; cat "$f"
    elif [ "$age" -le %[6]d ]; then echo "FERRY-LOCK held $age"; cat "$f"; exit 0
    else echo "FERRY-LOCK stale $age"; cat "$f"; fi
  fi
  write && echo "FERRY-LOCK acquired 0" ;;
heartbeat)
  if [ $mine = yes ]; then touch "$f"; echo "FERRY-LOCK ok 0"; else echo "FERRY-LOCK lost $age"; cat "$f" 2>/dev/null; fi ;;
release)
  if [ $mine = yes ]; then rm -f "$f"; echo "FERRY-LOCK released 0"; else echo "FERRY-LOCK notmine $age"; fi ;;
force)
  if [ -f "$f" ]; then echo "FERRY-LOCK released $age"; cat "$f"; rm -f "$f"; else echo "FERRY-LOCK free 0"; fi ;;
esac
`, lockDir, shell.Quote(env), shell.Quote(token), op, shell.Quote(string(info)), int(timeout.Seconds()), shell.Quote(resumes))
}

// lockAnswer is one host's answer to a lock operation.
type lockAnswer struct {
	state string
	info  *LockInfo // the file as it was (held, stale, lost, force)
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

func (o LockOptions) run(ctx context.Context, h LockHost, op, token string, info []byte) (lockAnswer, error) {
	ro := o.Become
	ro.Become = true
	ro.Stdin, ro.Stdout, ro.Stderr = nil, nil, nil
	res, err := h.Conn.Run(ctx, lockScript(op, o.Info.Env, token, o.Timeout, info, o.Resumes), ro)
	if err != nil {
		return lockAnswer{}, fmt.Errorf("lock %s on %s: %w", op, h.Name, err)
	}
	if res.ExitCode != 0 {
		return lockAnswer{}, fmt.Errorf("lock %s on %s: exit %d: %s", op, h.Name, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	a, err := parseLockAnswer(res.Stdout)
	if err != nil {
		return a, fmt.Errorf("lock %s on %s: %w", op, h.Name, err)
	}
	if a.info != nil {
		a.info.Host = h.Name
	}
	return a, nil
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Acquire takes the environment's lock on every host, in sorted host
// order, one after the other. At the first host held by another run it
// gives back what it took and, within opts.Wait, tries again after a
// random back-off; then it returns a *HeldError naming the holder. The returned Lock heartbeats
// until Release.
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
	raw, err := json.Marshal(struct {
		Env      string    `json:"env"`
		Holder   string    `json:"holder"`
		Origin   string    `json:"origin,omitempty"`
		RunID    string    `json:"run_id"`
		Version  string    `json:"version,omitempty"`
		Playbook string    `json:"playbook,omitempty"`
		Started  time.Time `json:"started"`
		Token    string    `json:"token"`
	}{info.Env, info.Holder, info.Origin, info.RunID, info.Version, info.Playbook, info.Started, info.Token})
	if err != nil {
		return nil, err
	}
	l := &Lock{Info: info, hosts: hosts, opts: opts}
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
		// No retry without --lock-wait: with hosts taken one at a time in
		// one global order, of two contenders at least one never meets
		// the other's lock, so giving up at once cannot starve both.
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

// tryAll takes every host in order; at the first one held by another run
// it releases what it took and returns who holds it.
func (l *Lock) tryAll(ctx context.Context, raw []byte) (*HeldError, error) {
	var taken []LockHost
	giveBack := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		l.releaseHosts(rctx, taken)
	}
	for _, h := range l.hosts {
		a, err := l.opts.run(ctx, h, "acquire", l.Info.Token, raw)
		if err != nil {
			giveBack()
			return nil, err
		}
		switch a.state {
		case "acquired":
			taken = append(taken, h)
		case "taken":
			taken = append(taken, h)
			was := "a dead run"
			if a.info != nil {
				was = a.info.String()
			}
			l.opts.Warn(fmt.Sprintf("took over the stale lock of %s on %s from %s: no heartbeat for longer than the lock timeout (%s)",
				l.Info.Env, h.Name, was, l.opts.Timeout))
		case "adopted":
			taken = append(taken, h)
			l.opts.Warn(fmt.Sprintf("took over on %s the lock of run %s, which this run resumes", h.Name, l.opts.Resumes))
		case "held":
			giveBack()
			holder := LockInfo{Holder: "another run", Host: h.Name}
			if a.info != nil {
				holder = *a.info
			}
			return &HeldError{Env: l.Info.Env, Holder: holder}, nil
		default: // busy: another contender is in this host's critical section right now
			giveBack()
			return &HeldError{Env: l.Info.Env, Holder: LockInfo{Holder: "another ferry (taking the lock right now)", Host: h.Name}}, nil
		}
	}
	return nil, nil
}

func (l *Lock) releaseHosts(ctx context.Context, hosts []LockHost) error {
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := l.opts.run(ctx, h, "release", l.Info.Token, nil); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
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
		var wg sync.WaitGroup
		for _, h := range l.hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := l.opts.run(ctx, h, "heartbeat", l.Info.Token, nil)
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
			}()
		}
		wg.Wait()
		cancel()
	}
}

// Release stops the heartbeat and removes this run's lock file from every
// host (files another run took over are left alone).
func (l *Lock) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		err = l.releaseHosts(ctx, l.hosts)
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
func ForceRelease(ctx context.Context, hosts []LockHost, env string, become ssh.RunOptions) ([]LockInfo, error) {
	o := LockOptions{Info: LockInfo{Env: env}, Become: become, Timeout: DefaultLockTimeout}
	var out []LockInfo
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := o.run(ctx, h, "force", "", nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if a.info != nil {
				out = append(out, *a.info)
			}
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out, errors.Join(errs...)
}

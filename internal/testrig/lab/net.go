package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// stateDir holds one lock and one state file per allocated network. A lab
// holds its lock (flock) for its lifetime, so a state file whose lock can be
// taken belongs to a dead process: its leftovers are removed by the next
// Start.
var stateDir = "/run/ferry-lab"

const netSlots = 256

// netAlloc is one lab's network: apps on 10.213.N.0/24, the bastion chain on
// 10.212.N.0/30 (root .1, bastion1 .2) and 10.212.N.4/30 (bastion1 .5,
// bastion2 .6).
type netAlloc struct {
	n    int
	lock *os.File
	// big labs (more than a /24 holds) put their apps on
	// 10.(216+N/64).(N%64*4).0/22 instead: up to 1,014 hosts.
	big bool
}

// labState is what a lab creates outside its directory, saved as JSON.
type labState struct {
	PID        int      `json:"pid"`
	Prefix     string   `json:"prefix"`
	Dir        string   `json:"dir"`
	Namespaces []string `json:"namespaces"`
	Links      []string `json:"links"`
	Routes     []string `json:"routes"`
}

func (a *netAlloc) appSubnet() string {
	if a.big {
		return fmt.Sprintf("10.%d.%d.0/22", 216+a.n/64, a.n%64*4)
	}
	return fmt.Sprintf("10.213.%d.0/24", a.n)
}
func (a *netAlloc) transitSubnet() string { return fmt.Sprintf("10.212.%d.0/24", a.n) }

// app is the i-th address of the app network (i < 256, or 1,024 when big).
func (a *netAlloc) app(i int) string {
	if a.big {
		return fmt.Sprintf("10.%d.%d.%d", 216+a.n/64, a.n%64*4+i/256, i%256)
	}
	return fmt.Sprintf("10.213.%d.%d", a.n, i)
}

// appBits is the app network's prefix length.
func (a *netAlloc) appBits() int {
	if a.big {
		return 22
	}
	return 24
}

// appPatterns are ssh_config Host patterns matching the app network.
func (a *netAlloc) appPatterns() string {
	if !a.big {
		return fmt.Sprintf("10.213.%d.*", a.n)
	}
	var ps []string
	for o := 0; o < 4; o++ {
		ps = append(ps, fmt.Sprintf("10.%d.%d.*", 216+a.n/64, a.n%64*4+o))
	}
	return strings.Join(ps, " ")
}
func (a *netAlloc) transit(i int) string { return fmt.Sprintf("10.212.%d.%d", a.n, i) }
func (a *netAlloc) statePath() string {
	return filepath.Join(stateDir, fmt.Sprintf("net-%d.json", a.n))
}

// allocNet reaps stale labs and takes a free network slot.
func allocNet() (*netAlloc, error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab state dir: %w", err)
	}
	reapStale()
	start := (os.Getpid()*31 + int(labCounter.Load())*7) % netSlots
	for i := range netSlots {
		n := (start + i) % netSlots
		f, ok := tryLock(n)
		if !ok {
			continue
		}
		a := &netAlloc{n: n, lock: f}
		// Taken the lock of a dead lab between reapStale and here.
		if st, err := readState(a.statePath()); err == nil {
			_ = cleanup(st)
			_ = os.Remove(a.statePath())
		}
		if routeExists(a.appSubnet()) || routeExists(a.transitSubnet()) {
			// Someone else's network (not a lab we know): leave it alone.
			_ = f.Close()
			continue
		}
		return a, nil
	}
	return nil, fmt.Errorf("lab: all %d networks 10.213.0-255.0/24 are in use; close other labs (see %s)", netSlots, stateDir)
}

func tryLock(n int) (*os.File, bool) {
	f, err := os.OpenFile(filepath.Join(stateDir, fmt.Sprintf("net-%d.lock", n)), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, false
	}
	return f, true
}

func routeExists(cidr string) bool {
	out, err := exec.Command("ip", "-4", "route", "show", "exact", cidr).Output()
	return err == nil && strings.TrimSpace(string(out)) != ""
}

// reapStale removes what labs of dead processes left behind.
func reapStale() {
	ents, err := os.ReadDir(stateDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		var n int
		if _, err := fmt.Sscanf(e.Name(), "net-%d.json", &n); err != nil || n < 0 || n >= netSlots {
			continue
		}
		f, ok := tryLock(n)
		if !ok {
			continue // a live lab
		}
		p := filepath.Join(stateDir, e.Name())
		if st, err := readState(p); err == nil {
			_ = cleanup(st)
		}
		_ = os.Remove(p)
		_ = f.Close()
	}
}

func readState(path string) (labState, error) {
	var st labState
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	err = json.Unmarshal(b, &st)
	return st, err
}

func (a *netAlloc) saveState(st labState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("lab state: %w", err)
	}
	tmp := a.statePath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("lab state: %w", err)
	}
	if err := os.Rename(tmp, a.statePath()); err != nil {
		return fmt.Errorf("lab state: %w", err)
	}
	return nil
}

// release forgets the state and frees the slot.
func (a *netAlloc) release() error {
	if a.lock == nil {
		return nil
	}
	err := os.Remove(a.statePath())
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	_ = a.lock.Close()
	a.lock = nil
	return err
}

// cleanup removes namespaces (killing what still runs in them), links and
// routes of a lab. Missing pieces are not errors.
func cleanup(st labState) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var errs []error
	for _, ns := range st.Namespaces {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err != nil {
			continue
		}
		killNamespace(ctx, ns)
	}
	for _, l := range st.Links {
		if _, err := net.InterfaceByName(l); err != nil {
			continue
		}
		if err := run(ctx, "ip", "link", "del", l); err != nil && linkStillThere(l) {
			errs = append(errs, err)
		}
	}
	for _, ns := range st.Namespaces {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err != nil {
			continue
		}
		if err := run(ctx, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range st.Routes {
		f := strings.Fields(r)
		if len(f) == 2 && routeExists(f[1]) {
			if err := run(ctx, "ip", append([]string{"route", "del"}, f...)...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func linkStillThere(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// killNamespace SIGKILLs every process in a lab network namespace (all are
// the lab's own) and waits, bounded, for them to go.
func killNamespace(ctx context.Context, ns string) {
	for {
		out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
		pids := strings.Fields(string(out))
		if err != nil || len(pids) == 0 {
			return
		}
		for _, p := range pids {
			var pid int
			if _, err := fmt.Sscanf(p, "%d", &pid); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sshBanner connects to addr from inside network namespace ns ("" for this
// machine's) and reads the SSH identification line.
func sshBanner(ns, addr string, timeout time.Duration) error {
	conn, err := dialIn(ns, addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	// sshd re-executes itself for every connection: on a busy machine the
	// banner takes a while.
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-") {
		return fmt.Errorf("%s: not an SSH banner: %q", addr, line)
	}
	return nil
}

// dialIn opens a TCP connection from inside a network namespace: the socket
// is created on a thread switched into ns, then the thread is switched back.
func dialIn(ns, addr string, timeout time.Duration) (net.Conn, error) {
	if ns == "" {
		return net.DialTimeout("tcp", addr, timeout)
	}
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", ns, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("open own netns: %w", err)
	}
	defer self.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter netns %s: %w", ns, err)
	}
	conn, dialErr := net.DialTimeout("tcp", addr, timeout)
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: the runtime then discards it instead of
		// running other goroutines in the wrong namespace.
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("leave netns %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	return conn, dialErr
}

// raiseNeighbourTable lifts the machine's ARP table limits (one table for
// every namespace, default 128/512/1024 entries) so that a bastion can
// reach a thousand hosts: past gc_thresh3 its connects fail with "No route
// to host". Limits are only ever raised.
func raiseNeighbourTable() error {
	for i, want := range []int{4096, 8192, 16384} {
		p := fmt.Sprintf("/proc/sys/net/ipv4/neigh/default/gc_thresh%d", i+1)
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("lab: read %s: %w", p, err)
		}
		var cur int
		fmt.Sscan(strings.TrimSpace(string(b)), &cur)
		if cur >= want {
			continue
		}
		if err := os.WriteFile(p, []byte(fmt.Sprint(want)), 0o644); err != nil {
			return fmt.Errorf("lab: raise %s to %d for a large lab: %w", p, want, err)
		}
	}
	return nil
}

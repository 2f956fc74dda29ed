// Package lab starts a disposable fleet of real OpenSSH servers on this
// machine, for ferry's tests and `make demo`: one bastion (or a chain of two)
// and N app hosts, each an sshd in its own network, UTS, mount and PID
// namespaces, with its own /etc, /usr, /var, /opt, /home, /tmp and /var/log.
// App hosts are reachable only through the bastion (ProxyJump, via sshd's TCP
// forwarding); a direct connection from the machine fails at once.
//
// The lab needs root. Available reports why it cannot run; StartT skips a
// test with that reason. Labs are independent: several can run at once, in
// one test binary or in many, each on its own /24.
package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/parallel"
)

// Options configure Start. The zero value is a bastion and three app hosts.
type Options struct {
	// Hosts is the number of app hosts (default 3, at most 240).
	Hosts int
	// Jumps is the number of bastions in the chain: 1 (default) or 2, where
	// the second bastion is reachable only from the first.
	Jumps int
	// Dir holds keys, configs and per-host state. Default: a new temporary
	// directory, removed by Close. A given Dir is kept (its hosts/ is reset).
	Dir string
	// Prefix names the lab's namespaces and links (at most 10 characters of
	// [a-z0-9]). Default: derived from the PID and a counter.
	Prefix string
	// Log receives progress lines when set.
	Log io.Writer

	// TrustedUserCAKeys is the path of a CA public key file; sshd on every
	// host then accepts user certificates signed by it.
	TrustedUserCAKeys string
	// AuthorizedKeys are extra public keys (authorized_keys lines) for the
	// deploy user on every host.
	AuthorizedKeys [][]byte
	// StartTimeout bounds the wait for every sshd to answer (default 30s).
	StartTimeout time.Duration
}

// Host is one lab machine.
type Host struct {
	Name      string // hostname inside the host: bastion, bastion1, app1, ...
	Addr      string // IPv4 address
	Port      int    // sshd port (22)
	Namespace string // network namespace name (ip netns)
	HostKey   string // sshd's host public key, authorized_keys form
}

// Lab is a running lab. Its paths are ready to hand to ssh, ansible or ferry.
type Lab struct {
	Dir        string
	User       string // "deploy"
	KeyFile    string // the client's unencrypted ed25519 private key
	KnownHosts string // known_hosts with every host's key, by name and address
	Bastions   []Host // in jump order
	Hosts      []Host // app hosts
	Inventory  string // static YAML Ansible inventory of the app hosts (group app)
	SSHConfig  string // ssh_config usable with ssh -F
	Subnet     string // the app hosts' network (CIDR)

	ownDir  bool
	prefix  string
	net     *netAlloc
	log     io.Writer
	hosts   map[string]*hostProc
	order   []*hostProc
	rootLnk string
	routes  []string
	spawn   *spawner

	closeOnce sync.Once
	closeErr  error
}

// hostProc is the running PID 1 of one host.
type hostProc struct {
	Host
	role string // "app" or "bastion"
	dir  string // per-host directory (sources of its mounts)
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	pid1 int           // the host's PID 1, as the root PID namespace sees it
}

const (
	labUser        = "deploy"
	sshdPath       = "/usr/sbin/sshd"
	sftpServerPath = "/usr/lib/openssh/sftp-server"
	defaultHosts   = 3
	maxHosts       = 1000 // a bridge takes at most 1,024 ports
	smallHosts     = 240  // more than this: a /22 (see netAlloc.big)
	defaultTimeout = 30 * time.Second
)

var labCounter atomic.Int64

// Available returns nil when a lab can run on this machine, or a one-line
// reason (for t.Skip) when it cannot.
func Available() error {
	if testing.Testing() && testing.Short() {
		return errors.New("no lab in -short mode (make unit): make test runs the lab tests")
	}
	if os.Geteuid() != 0 {
		return errors.New("lab needs root (network namespaces, mounts): run the tests as root")
	}
	for _, tool := range []string{"ip", "unshare", "nsenter", "mount", "umount", "hostname", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("lab needs %s on PATH (util-linux/iproute2)", tool)
		}
	}
	for _, f := range []string{sshdPath, sftpServerPath} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("lab needs OpenSSH's %s: apt-get install openssh-server", f)
		}
	}
	fs, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return fmt.Errorf("lab needs /proc: %w", err)
	}
	if !bytes.Contains(fs, []byte("overlay")) {
		return errors.New("lab needs overlayfs in the kernel (modprobe overlay)")
	}
	return nil
}

// StartT starts a lab for a test, skips the test when labs cannot run here,
// fails it when the lab does not start, and closes the lab at cleanup.
func StartT(t testing.TB, opts Options) *Lab {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	// Namespaces, links and hosts take about 0.1-0.3 s each on a busy 2-core machine.
	limit := max(2*defaultTimeout, opts.StartTimeout+time.Duration(opts.Hosts)*300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	l, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	return l
}

// Start brings up a lab and returns once every sshd answers on its network.
// On error nothing is left behind.
func Start(ctx context.Context, opts Options) (l *Lab, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if opts.Hosts == 0 {
		opts.Hosts = defaultHosts
	}
	if opts.Hosts < 0 || opts.Hosts > maxHosts {
		return nil, fmt.Errorf("lab hosts: %d is out of range 1..%d", opts.Hosts, maxHosts)
	}
	if opts.Jumps == 0 {
		opts.Jumps = 1
	}
	if opts.Jumps != 1 && opts.Jumps != 2 {
		return nil, fmt.Errorf("lab jumps: %d is not 1 or 2", opts.Jumps)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = defaultTimeout
	}
	if opts.Prefix == "" {
		opts.Prefix = "fl" + strconv.FormatInt(int64(os.Getpid()), 36) + strconv.FormatInt(labCounter.Add(1), 36)
	}
	if !validPrefix(opts.Prefix) {
		return nil, fmt.Errorf("lab prefix %q: use 1 to 10 characters of [a-z0-9]", opts.Prefix)
	}

	l = &Lab{User: labUser, prefix: opts.Prefix, log: opts.Log, hosts: map[string]*hostProc{}}
	defer func() {
		if err != nil {
			if cerr := l.Close(); cerr != nil {
				err = fmt.Errorf("%w (and cleanup: %v)", err, cerr)
			}
			l = nil
		}
	}()
	if err := l.makeDir(opts.Dir); err != nil {
		return l, err
	}
	started := time.Now()

	l.net, err = allocNet()
	if err != nil {
		return l, err
	}
	l.net.big = opts.Hosts > smallHosts
	if l.net.big {
		if err := raiseNeighbourTable(); err != nil {
			return l, err
		}
		// Hosts start at about 0.1 s each on 2 cores, sharing the machine.
		opts.StartTimeout = max(opts.StartTimeout, time.Duration(opts.Hosts)*300*time.Millisecond)
	}
	l.Subnet = l.net.appSubnet()
	l.logf("lab %s: %d app hosts behind %d bastion(s) on %s, dir %s", l.prefix, opts.Hosts, opts.Jumps, l.Subnet, l.Dir)

	l.plan(opts)
	// Record what we are about to create before creating it, so that a crash
	// at any point leaves leftovers a later Start can find and remove.
	if err := l.net.saveState(l.state()); err != nil {
		return l, err
	}

	clientPub, err := l.writeClientKey()
	if err != nil {
		return l, err
	}
	extra := append([][]byte{clientPub}, opts.AuthorizedKeys...)
	var caKey []byte
	if opts.TrustedUserCAKeys != "" {
		caKey, err = os.ReadFile(opts.TrustedUserCAKeys)
		if err != nil {
			return l, fmt.Errorf("read TrustedUserCAKeys: %w", err)
		}
	}

	if err := l.parallel(func(h *hostProc) error {
		if err := run(ctx, "ip", "netns", "add", h.Namespace); err != nil {
			return err
		}
		return l.prepareHost(h, extra, caKey)
	}); err != nil {
		return l, err
	}
	if err := l.wire(ctx); err != nil {
		return l, err
	}
	l.spawn = newSpawner()
	for _, h := range l.order {
		if err := l.startHost(h); err != nil {
			return l, err
		}
	}
	if err := l.waitReady(ctx, opts.StartTimeout); err != nil {
		return l, err
	}
	if err := l.writeClientFiles(); err != nil {
		return l, err
	}
	l.logf("lab %s: up in %s", l.prefix, time.Since(started).Round(time.Millisecond))
	return l, nil
}

func validPrefix(p string) bool {
	if p == "" || len(p) > 10 {
		return false
	}
	for _, c := range p {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func (l *Lab) makeDir(dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "ferry-lab-")
		if err != nil {
			return fmt.Errorf("lab dir: %w", err)
		}
		l.Dir, l.ownDir = d, true
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("lab dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return fmt.Errorf("lab dir: %w", err)
	}
	// A previous lab in the same directory left its per-host state.
	if err := os.RemoveAll(filepath.Join(abs, "hosts")); err != nil {
		return fmt.Errorf("lab dir: reset hosts: %w", err)
	}
	l.Dir = abs
	return nil
}

// plan names and addresses every host.
func (l *Lab) plan(opts Options) {
	add := func(name, role, addr string) {
		h := &hostProc{
			Host: Host{Name: name, Addr: addr, Port: 22, Namespace: l.prefix + "-" + name},
			role: role,
			dir:  filepath.Join(l.Dir, "hosts", name),
			done: make(chan struct{}),
		}
		l.hosts[name] = h
		l.order = append(l.order, h)
	}
	if opts.Jumps == 1 {
		add("bastion", "bastion", l.net.transit(2))
	} else {
		add("bastion1", "bastion", l.net.transit(2))
		add("bastion2", "bastion", l.net.transit(6))
	}
	for i := 1; i <= opts.Hosts; i++ {
		add(fmt.Sprintf("app%d", i), "app", l.net.app(9+i))
	}
	l.rootLnk = l.prefix + "t"
	l.routes = []string{"unreachable " + l.net.appSubnet(), "unreachable " + l.net.transitSubnet()}
}

func (l *Lab) state() labState {
	st := labState{PID: os.Getpid(), Prefix: l.prefix, Dir: l.Dir, Links: []string{l.rootLnk}, Routes: l.routes}
	for _, h := range l.order {
		st.Namespaces = append(st.Namespaces, h.Namespace)
	}
	return st
}

func (l *Lab) bastions() []*hostProc {
	var bs []*hostProc
	for _, h := range l.order {
		if h.role == "bastion" {
			bs = append(bs, h)
		}
	}
	return bs
}

func (l *Lab) apps() []*hostProc {
	var as []*hostProc
	for _, h := range l.order {
		if h.role == "app" {
			as = append(as, h)
		}
	}
	return as
}

// wire creates the links between namespaces. Addresses are set by each
// host's init from its net.batch.
//
//	root --<prefix>t/eth0-- bastion1 [--j0/eth0-- bastion2] --aN/eth0-- appN (bridge br0)
func (l *Lab) wire(ctx context.Context) error {
	bs := l.bastions()
	first, last := bs[0], bs[len(bs)-1]
	if err := run(ctx, "ip", "link", "add", l.rootLnk, "type", "veth", "peer", "name", "eth0", "netns", first.Namespace); err != nil {
		return err
	}
	if err := run(ctx, "ip", "addr", "add", l.net.transit(1)+"/30", "dev", l.rootLnk); err != nil {
		return err
	}
	if err := run(ctx, "ip", "link", "set", l.rootLnk, "up"); err != nil {
		return err
	}
	// Without these, a direct connection to a lab address would wander off
	// towards the default gateway instead of failing at once.
	for _, r := range l.routes {
		if err := run(ctx, "ip", append([]string{"route", "add"}, strings.Fields(r)...)...); err != nil {
			return err
		}
	}
	if len(bs) == 2 {
		if err := run(ctx, "ip", "-n", last.Namespace, "link", "add", "eth0", "type", "veth", "peer", "name", "j0", "netns", first.Namespace); err != nil {
			return err
		}
	}
	apps := l.apps()
	return l.parallelOver(apps, func(h *hostProc) error {
		return run(ctx, "ip", "-n", h.Namespace, "link", "add", "eth0", "type", "veth", "peer", "name", bridgePort(h), "netns", last.Namespace)
	})
}

// bridgePort is the bastion-side name of an app host's link ("a3" for app3).
func bridgePort(h *hostProc) string { return "a" + strings.TrimPrefix(h.Name, "app") }

func (l *Lab) startHost(h *hostProc) error {
	logf, err := os.OpenFile(filepath.Join(h.dir, "init.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", h.Name, err)
	}
	defer logf.Close()
	cmd := exec.Command("nsenter", "--net=/run/netns/"+h.Namespace, "--",
		"unshare", "--uts", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--propagation", "private",
		"/bin/bash", filepath.Join(l.Dir, "init.sh"), h.dir, h.Name, h.role)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C meant for the command run in the lab must
	// not end the hosts. Pdeathsig: the hosts end with the process that owns
	// them (--kill-child passes it on to the host's PID 1).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := l.spawn.start(cmd); err != nil {
		return fmt.Errorf("start %s: %w", h.Name, err)
	}
	h.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(h.done)
	}()
	return nil
}

// waitReady waits until every host's PID 1 is known and its sshd sends its
// banner over the lab network, along the path a client takes.
func (l *Lab) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	bs := l.bastions()
	return l.parallel(func(h *hostProc) error {
		from := "" // root namespace
		var via *hostProc
		switch {
		case h.role == "app":
			via = bs[len(bs)-1]
		case h != bs[0]:
			via = bs[0]
		}
		if via != nil {
			from = via.Namespace
		}
		// Both ends must have their network configured before the first
		// connection attempt (see init.sh).
		ready := func() bool {
			if _, err := os.Stat(filepath.Join(h.dir, "ready")); err != nil {
				return false
			}
			if via == nil {
				return true
			}
			_, err := os.Stat(filepath.Join(via.dir, "ready"))
			return err == nil
		}
		// A SYN sent before the link is up is lost and TCP would retry it
		// only after a second: start with short connect timeouts.
		dialTimeout := 100 * time.Millisecond
		for {
			if h.pid1 == 0 {
				h.pid1 = childOf(h.cmd.Process.Pid)
			}
			if h.pid1 != 0 && ready() {
				err := sshBanner(from, net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)), dialTimeout)
				if err == nil {
					return nil
				}
				if errors.Is(err, os.ErrDeadlineExceeded) && dialTimeout < 2*time.Second {
					dialTimeout *= 2
				}
			}
			select {
			case <-h.done:
				return fmt.Errorf("host %s exited during start: %s", h.Name, tail(filepath.Join(h.dir, "init.log"), filepath.Join(h.dir, "log", "sshd.log")))
			case <-ctx.Done():
				return fmt.Errorf("host %s: sshd did not answer on %s:%d within %s: %s", h.Name, h.Addr, h.Port, timeout,
					tail(filepath.Join(h.dir, "init.log"), filepath.Join(h.dir, "log", "sshd.log")))
			case <-time.After(15 * time.Millisecond):
			}
		}
	})
}

func (h *hostProc) exited() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// spawner starts the hosts from one goroutine locked to its own thread. The
// hosts die with the thread that started them (Pdeathsig), and Go may end
// a thread under a goroutine that locked it and returned; this thread lives
// exactly as long as the lab.
type spawner struct {
	reqs chan spawnReq
	quit chan struct{}
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), quit: make(chan struct{})}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		for {
			select {
			case r := <-s.reqs:
				r.errc <- r.cmd.Start()
			case <-s.quit:
				return
			}
		}
	}()
	return s
}

func (s *spawner) start(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	select {
	case s.reqs <- spawnReq{cmd, errc}:
		return <-errc
	case <-s.quit:
		return errors.New("lab is closed")
	}
}

func (s *spawner) stop() { close(s.quit) }

// childOf returns the first child of pid (unshare's child is the host's PID 1).
func childOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			n, _ := strconv.Atoi(f[0])
			return n
		}
		return 0
	}
	// Kernels without CONFIG_PROC_CHILDREN: scan for the parent.
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(st, ')'); i > 0 {
			f := strings.Fields(string(st[i+1:]))
			if len(f) > 1 && f[1] == strconv.Itoa(pid) {
				return n
			}
		}
	}
	return 0
}

// tail returns the last lines of the given files, for error messages.
func tail(files ...string) string {
	var parts []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 5 {
			lines = lines[len(lines)-5:]
		}
		parts = append(parts, filepath.Base(f)+": "+strings.Join(lines, " | "))
	}
	if len(parts) == 0 {
		return "no output"
	}
	return strings.Join(parts, "; ")
}

// Host returns the host (bastion or app) with the given name.
func (l *Lab) Host(name string) (Host, bool) {
	h, ok := l.hosts[name]
	if !ok {
		return Host{}, false
	}
	return h.Host, true
}

// Bastion returns the first hop as user@addr.
func (l *Lab) Bastion() string { return l.User + "@" + l.Bastions[0].Addr }

// JumpSpec returns the whole bastion chain as a ProxyJump value
// (user@addr[,user@addr]).
func (l *Lab) JumpSpec() string {
	var hops []string
	for _, b := range l.Bastions {
		hops = append(hops, l.User+"@"+b.Addr)
	}
	return strings.Join(hops, ",")
}

func (l *Lab) host(name string) (*hostProc, error) {
	h, ok := l.hosts[name]
	if !ok {
		return nil, fmt.Errorf("lab has no host %q (hosts: %s)", name, strings.Join(l.names(), ", "))
	}
	if h.pid1 == 0 || h.exited() {
		return nil, fmt.Errorf("lab host %s is not running", name)
	}
	return h, nil
}

func (l *Lab) names() []string {
	var n []string
	for _, h := range l.order {
		n = append(n, h.Name)
	}
	return n
}

// Command returns a command that runs argv inside a host: in its mount, UTS,
// network and PID namespaces, as root, not through SSH. The caller may set
// Stdin/Stdout/Stderr before running it.
func (l *Lab) Command(ctx context.Context, host string, argv ...string) (*exec.Cmd, error) {
	h, err := l.host(host)
	if err != nil {
		return nil, err
	}
	args := append([]string{"-t", strconv.Itoa(h.pid1), "-m", "-u", "-n", "-p", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root", "USER=root"}
	cmd.Dir = "/"
	cmd.WaitDelay = 2 * time.Second
	return cmd, nil
}

// Exec runs a bash command inside a host (see Command) and returns its
// standard output. The error carries the exit status and standard error.
func (l *Lab) Exec(ctx context.Context, host string, cmd string) (string, error) {
	return l.ExecInput(ctx, host, nil, cmd)
}

// ExecInput is Exec with the given standard input.
func (l *Lab) ExecInput(ctx context.Context, host string, stdin io.Reader, cmd string) (string, error) {
	c, err := l.Command(ctx, host, "/bin/bash", "-c", cmd)
	if err != nil {
		return "", err
	}
	var out, errb bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = stdin, &out, &errb
	if err := c.Run(); err != nil {
		return out.String(), fmt.Errorf("exec on %s: %q: %w: %s", host, cmd, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Dial opens a TCP connection to addr from inside a host's network (so
// "127.0.0.1:8080" is the host's own loopback), without a process or SSH:
// cheap enough for a load balancer's health checks.
func (l *Lab) Dial(ctx context.Context, host, addr string) (net.Conn, error) {
	h, err := l.host(host)
	if err != nil {
		return nil, err
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, ctx.Err()
		}
	}
	return dialIn(h.Namespace, addr, timeout)
}

// SetLink takes a host's network link down (up=false) or back up. A down app
// host stays known to the bastion but answers nothing, like an instance
// whose network died.
func (l *Lab) SetLink(host string, up bool) error {
	h, err := l.host(host)
	if err != nil {
		return err
	}
	state := "down"
	if up {
		state = "up"
	}
	return run(context.Background(), "ip", "-n", h.Namespace, "link", "set", "eth0", state)
}

// HostDir is the directory that holds a host's own files as the machine sees
// them: opt/ is the host's /opt, home/ its /home, log/ its /var/log.
func (l *Lab) HostDir(host string) (string, error) {
	h, ok := l.hosts[host]
	if !ok {
		return "", fmt.Errorf("lab has no host %q", host)
	}
	return h.dir, nil
}

// Connections counts the connections a host's sshd has authenticated (its
// "Accepted <method> for" log lines, written before the client hears that
// it is in). Not the "Connection from" lines: the lab's readiness probe,
// which only reads the banner, makes one too, and under load sshd may
// write it after a test has read the log.
func (l *Lab) Connections(host string) (int, error) {
	h, ok := l.hosts[host]
	if !ok {
		return 0, fmt.Errorf("lab has no host %q", host)
	}
	b, err := os.ReadFile(filepath.Join(h.dir, "log", "sshd.log"))
	if err != nil {
		return 0, fmt.Errorf("read %s sshd log: %w", host, err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "Accepted ") && strings.Contains(line, " for ") {
			n++
		}
	}
	return n, nil
}

// BastionConnections counts the connections the first bastion accepted.
func (l *Lab) BastionConnections() (int, error) {
	return l.Connections(l.Bastions[0].Name)
}

// AuthorizeKey adds a public key (authorized_keys line, options allowed) for
// the deploy user on every host.
func (l *Lab) AuthorizeKey(pub []byte) error {
	line := append(bytes.TrimSpace(pub), '\n')
	for _, h := range l.order {
		p := filepath.Join(h.dir, "home", labUser, ".ssh", "authorized_keys")
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("authorize key on %s: %w", h.Name, err)
		}
		_, err = f.Write(line)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("authorize key on %s: %w", h.Name, err)
		}
	}
	return nil
}

// TrustUserCA makes sshd on every host accept user certificates signed by
// the given CA public key (sshd reads TrustedUserCAKeys at each login).
func (l *Lab) TrustUserCA(ctx context.Context, caPub []byte) error {
	line := append(bytes.TrimSpace(caPub), '\n')
	for _, h := range l.order {
		if _, err := l.ExecInput(ctx, h.Name, bytes.NewReader(line), "cat >> "+userCAPath); err != nil {
			return fmt.Errorf("trust user CA: %w", err)
		}
	}
	return nil
}

// Close stops every host and removes namespaces, links, routes and the
// allocated network; a lab directory Start created is removed too. It is
// safe to call more than once.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.teardown() })
	return l.closeErr
}

func (l *Lab) teardown() error {
	var errs []error
	for _, h := range l.order {
		if h.cmd == nil || h.cmd.Process == nil {
			continue
		}
		// Killing the host's PID 1 ends its whole PID namespace; killing
		// unshare makes --kill-child do the same. PID 1 is unshare's child:
		// while unshare runs, its PID cannot have been reused.
		if h.pid1 != 0 && !h.exited() {
			_ = syscall.Kill(h.pid1, syscall.SIGKILL)
		}
		_ = h.cmd.Process.Kill()
	}
	for _, h := range l.order {
		if h.cmd == nil {
			continue
		}
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			errs = append(errs, fmt.Errorf("host %s (pid %d) did not exit", h.Name, h.cmd.Process.Pid))
		}
	}
	if l.spawn != nil {
		l.spawn.stop()
	}
	if l.net != nil {
		errs = append(errs, cleanup(l.state()))
		errs = append(errs, l.net.release())
	}
	if l.ownDir && l.Dir != "" {
		if err := os.RemoveAll(l.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove lab dir: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close lab %s: %w", l.prefix, err)
	}
	l.logf("lab %s: closed", l.prefix)
	return nil
}

func (l *Lab) logf(format string, args ...any) {
	if l.log != nil {
		fmt.Fprintf(l.log, format+"\n", args...)
	}
}

// parallel runs fn for every host at once and returns the errors joined.
func (l *Lab) parallel(fn func(*hostProc) error) error { return l.parallelOver(l.order, fn) }

func (l *Lab) parallelOver(hs []*hostProc, fn func(*hostProc) error) error {
	errs := make([]error, len(hs))
	// Bounded: hundreds of hosts must not fork hundreds of ip at once.
	parallel.Each(context.Background(), len(hs), 16, func(i int) { errs[i] = fn(hs[i]) })
	return errors.Join(errs...)
}

// run runs a command and returns its output in the error when it fails.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

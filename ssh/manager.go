package ssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Manager owns every SSH connection of a run: one per target host and one
// per jump host, shared by all targets behind it. It is safe for concurrent use.
type Manager struct {
	cfg  Config
	sc   *sshConfig
	keys *keyring
	hk   *hostKeys

	mu    sync.Mutex
	conns map[string]*pending // by chain key: "u@h:p>u@h:p>..."
	order []string            // chain keys in creation order, closed in reverse

	extraConfigs map[string]*sshConfig // -F files of targets, by path
}

// pending is a connection being made or made; waiters share its result.
type pending struct {
	done   chan struct{}
	client *ssh.Client
	err    error
	closed bool
	gone   chan struct{}          // closed when the connection ends (set with client)
	lost   atomic.Pointer[string] // why ferry closed it (keepalives unanswered), if it did
	shell  shellSlot              // its command shell, when it is a target's
	root   shellSlot              // its become shell (root's command shell)
}

// ended reports whether a made connection has since ended.
func (p *pending) ended() bool {
	select {
	case <-p.done:
	default:
		return false // still being made
	}
	if p.gone == nil {
		return false
	}
	select {
	case <-p.gone:
		return true
	default:
		return false
	}
}

// NewManager checks cfg and loads ssh_config; nothing connects until Connect.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	if cfg.KeepAliveInterval == 0 {
		cfg.KeepAliveInterval = 15 * time.Second
	}
	if cfg.KeepAliveMax <= 0 {
		cfg.KeepAliveMax = 3
	}
	if cfg.Policy == "" {
		cfg.Policy = AcceptNew
	}
	sc, err := loadSSHConfig(cfg.SSHConfigFiles, &cfg)
	if err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, sc: sc, conns: map[string]*pending{}}
	m.keys = newKeyring(&m.cfg)
	m.hk = newHostKeys(&m.cfg)
	if cfg.Policy == Off && cfg.Warn != nil {
		cfg.Warn("host key checking is OFF (--known-hosts-policy off): connections can be intercepted without notice")
	}
	return m, nil
}

// configFile loads an ssh_config named by a target (-F), once per path.
func (m *Manager) configFile(path string) (*sshConfig, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if sc, ok := m.extraConfigs[path]; ok {
		return sc, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("ssh config -F %s: %w", path, err)
	}
	sc, err := loadSSHConfig([]string{path}, &m.cfg)
	if err != nil {
		return nil, err
	}
	if m.extraConfigs == nil {
		m.extraConfigs = map[string]*sshConfig{}
	}
	m.extraConfigs[path] = sc
	return sc, nil
}

// Connect returns the connection to t, making it (and the jump hosts before
// it) if needed. Concurrent calls for the same host share one connection.
func (m *Manager) Connect(ctx context.Context, t Target) (*Client, error) {
	name := t.Name
	if name == "" {
		name = t.Addr
	}
	if name == "" {
		return nil, errors.New("connect: target has neither a name nor an address")
	}
	sc := m.sc
	if t.ConfigFile != "" {
		var err error
		if sc, err = m.configFile(t.ConfigFile); err != nil {
			return nil, &Error{Host: name, Kind: KindOther, Msg: err.Error(), Hint: "fix the -F file in ansible_ssh_common_args", Err: err}
		}
	}
	target := sc.resolve(name, t.Addr, t.Port, t.User, t.IdentityFile)
	hops, err := sc.chain(t, target)
	if err != nil {
		return nil, &Error{Host: name, Kind: KindOther, Msg: err.Error(), Hint: "fix the ProxyJump setting", Err: err}
	}
	if sc != m.sc {
		// A -F file says where and as whom to connect; host key checking
		// stays ferry's (flags, ~/.ssh/config, defaults), a security
		// setting an inventory does not lower. Liveness bounds the -F file
		// leaves unset come from ferry's own config too: an operator's
		// ServerAliveInterval must not fall back to the 15s default for
		// hosts whose inventory names a -F file (a dead link would then go
		// unnoticed for about a minute).
		keep := func(e *endpoint) {
			d := m.sc.resolve(e.alias, e.addr, e.port, e.user, "")
			e.knownHosts, e.globalHosts, e.strictness = d.knownHosts, d.globalHosts, d.strictness
			if e.keepAlive == 0 {
				e.keepAlive = d.keepAlive
			}
			if e.connectLimit == 0 {
				e.connectLimit = d.connectLimit
			}
		}
		keep(&target)
		for i := range hops {
			keep(&hops[i])
		}
	}
	// A bastion hop with no identity of its own uses the target's (SPEC: an
	// inventory naming one key for its hosts also reaches their bastion).
	for i := range hops {
		if len(hops[i].identities) == 0 {
			hops[i].identities = target.identities
		}
	}
	chain := append(hops, target)
	var via *ssh.Client
	var last *pending
	var conns []*pending
	key := ""
	for i, e := range chain {
		if key != "" {
			key += ">"
		}
		key += e.String()
		p, err := m.hop(ctx, name, key, e, via, chain[:i], i < len(chain)-1)
		if err != nil {
			return nil, err
		}
		via, last = p.client, p
		conns = append(conns, p)
	}
	cl := newClient(name, via, m, &last.shell, &last.root)
	cl.gone, cl.hops = last.gone, conns
	return cl, nil
}

// hop returns the shared connection for chain key, dialing it through via.
func (m *Manager) hop(ctx context.Context, target, key string, e endpoint, via *ssh.Client, before []endpoint, jump bool) (*pending, error) {
	m.mu.Lock()
	p, ok := m.conns[key]
	if ok && (p.closed || p.ended()) {
		ok = false // dropped: keepAlive may not have forgotten it yet
	}
	if !ok {
		p = &pending{done: make(chan struct{})}
		m.conns[key] = p
		m.order = append(m.order, key)
		m.mu.Unlock()
		p.client, p.err = m.dial(ctx, target, e, via, before, jump)
		if p.err != nil {
			// Let a later Connect retry a transient failure; keep fatal ones.
			m.mu.Lock()
			if se := (*Error)(nil); !errors.As(p.err, &se) || se.Retryable() {
				delete(m.conns, key)
			}
			m.mu.Unlock()
		} else {
			p.gone = make(chan struct{})
			go func(c *ssh.Client, gone chan struct{}) { c.Wait(); close(gone) }(p.client, p.gone)
			go m.keepAlive(key, p, e)
		}
		close(p.done)
	} else {
		m.mu.Unlock()
		select {
		case <-p.done:
		case <-ctx.Done():
			return nil, classifyDial(target, e.String(), "", ctx.Err())
		}
	}
	if p.err != nil {
		// Re-label shared hop failures with this target's name.
		var se *Error
		if errors.As(p.err, &se) && se.Host != target {
			cp := *se
			cp.Host = target
			return nil, &cp
		}
		return nil, p.err
	}
	return p, nil
}

func (m *Manager) logf(format string, args ...any) {
	if m.cfg.Log != nil {
		m.cfg.Log(format, args...)
	}
}

// dial opens one hop: TCP (directly or as a channel of via), then the SSH handshake.
func (m *Manager) dial(ctx context.Context, target string, e endpoint, via *ssh.Client, before []endpoint, jump bool) (*ssh.Client, error) {
	limit := m.cfg.ConnectTimeout
	if e.connectLimit > 0 && e.connectLimit < limit {
		limit = e.connectLimit
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	viaName := ""
	if len(before) > 0 {
		viaName = before[len(before)-1].String()
	}
	m.logf("connect %s%s", e, map[bool]string{true: " via " + viaName, false: ""}[viaName != ""])

	var conn net.Conn
	var err error
	if via == nil {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", e.hostPort())
		if err == nil {
			conn = quickAck(conn)
		}
	} else {
		conn, err = via.DialContext(ctx, "tcp", e.hostPort())
	}
	if err != nil {
		return nil, classifyDial(target, e.String(), viaName, err)
	}

	signers, tried, err := m.keys.signers(e)
	if err != nil {
		conn.Close()
		return nil, &Error{Host: target, Hop: e.String(), Kind: KindAuth, Msg: err.Error(), Err: err}
	}
	hkcb, err := m.hk.callback(target, e)
	if err != nil {
		conn.Close()
		return nil, &Error{Host: target, Hop: e.String(), Kind: KindOther, Msg: err.Error(), Err: err}
	}
	plain := make([]ssh.Signer, len(signers))
	for i, s := range signers {
		plain[i] = s.Signer
	}
	cc := &ssh.ClientConfig{
		User:              e.user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(plain...)},
		HostKeyCallback:   hkcb,
		HostKeyAlgorithms: m.hk.algorithms(e),
		Timeout:           limit,
		ClientVersion:     "SSH-2.0-ferry",
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl) // TCP conns honour it; forwarded channels do not, hence the watchdog below
	}
	type result struct {
		c     ssh.Conn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
		err   error
	}
	resc := make(chan result, 1)
	go func() {
		c, chans, reqs, err := ssh.NewClientConn(conn, e.hostPort(), cc)
		resc <- result{c, chans, reqs, err}
	}()
	var r result
	select {
	case r = <-resc:
	case <-ctx.Done():
		conn.Close()
		<-resc
		return nil, classifyDial(target, e.String(), viaName, ctx.Err())
	}
	if r.err != nil {
		conn.Close()
		return nil, m.classifyHandshake(target, e, viaName, tried, r.err, jump)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(r.c, r.chans, r.reqs), nil
}

func (m *Manager) classifyHandshake(target string, e endpoint, via string, tried []string, err error, jump bool) error {
	var se *Error
	if errors.As(err, &se) {
		return se // host key verdicts come back through the handshake
	}
	msg := err.Error()
	if strings.Contains(msg, "unable to authenticate") || strings.Contains(msg, "no supported methods remain") {
		return &Error{Host: target, Hop: e.String(), Kind: KindAuth, Err: err,
			Msg:  fmt.Sprintf("permission denied for %s%s (tried %s)", map[bool]string{true: "jump host ", false: ""}[jump], e.String(), strings.Join(tried, ", ")),
			Hint: fmt.Sprintf("add the public key to ~%s/.ssh/authorized_keys on %s, or choose the key with --private-key / ansible_ssh_private_key_file / FERRY_SSH_KEY", e.user, e.addr)}
	}
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "i/o timeout") {
		return classifyDial(target, e.String(), via, context.DeadlineExceeded)
	}
	return &Error{Host: target, Hop: e.String(), Kind: KindUnreachable, Err: err,
		Msg:  fmt.Sprintf("ssh handshake with %s failed: %v", e.String(), err),
		Hint: "is an SSH server listening there? check the port and that MaxStartups on the bastion is not exceeded"}
}

// keepAlive pings the server; after KeepAliveMax missed answers the
// connection is closed so blocked commands fail instead of hanging.
func (m *Manager) keepAlive(key string, p *pending, e endpoint) {
	interval := m.cfg.KeepAliveInterval
	if e.keepAlive > 0 {
		interval = e.keepAlive
	}
	if interval < 0 {
		return
	}
	done := p.gone
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-done:
			m.forget(key, p)
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := p.client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case err := <-reply:
			if err != nil {
				missed = m.cfg.KeepAliveMax
			} else {
				missed = 0
			}
		case <-time.After(interval):
			missed++
		case <-done:
			m.forget(key, p)
			return
		}
		if missed >= m.cfg.KeepAliveMax {
			m.logf("%s: no answer to %d keepalives, closing", e, missed)
			why := fmt.Sprintf("%s did not answer %d keepalives %s apart", e, missed, interval)
			p.lost.Store(&why)
			p.client.Close()
		}
	}
}

func (m *Manager) forget(key string, p *pending) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p.closed = true
	if m.conns[key] == p {
		delete(m.conns, key)
	}
}

// Close closes every connection, targets before the bastions they go through.
func (m *Manager) Close() error {
	m.mu.Lock()
	order := m.order
	conns := m.conns
	m.order, m.conns = nil, map[string]*pending{}
	m.mu.Unlock()
	var errs []error
	for i := len(order) - 1; i >= 0; i-- {
		p, ok := conns[order[i]]
		if !ok {
			continue
		}
		<-p.done
		if p.client != nil {
			if err := p.client.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

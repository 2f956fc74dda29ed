package ssh

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys verifies host keys with OpenSSH known_hosts semantics (hashed
// entries, [host]:port, @cert-authority, @revoked) and records new ones
// under accept-new. One instance serves every connection of a run.
type hostKeys struct {
	cfg *Config

	mu       sync.Mutex
	dbs      map[string]ssh.HostKeyCallback // by joined file list
	accepted map[string]ssh.PublicKey       // keys recorded this run, by hostport
	warnedNo map[string]bool                // endpoints warned about StrictHostKeyChecking no
}

func newHostKeys(cfg *Config) *hostKeys {
	return &hostKeys{cfg: cfg, dbs: map[string]ssh.HostKeyCallback{}, accepted: map[string]ssh.PublicKey{}, warnedNo: map[string]bool{}}
}

func (hk *hostKeys) files(e endpoint) []string {
	if len(hk.cfg.KnownHostsFiles) > 0 {
		return hk.cfg.KnownHostsFiles
	}
	if len(e.knownHosts) > 0 {
		return e.knownHosts
	}
	return []string{filepath.Join(hk.cfg.home(), ".ssh", "known_hosts")}
}

// lookupFiles are the files a key is checked against: the user's, then the
// global ones (/etc/ssh/ssh_known_hosts unless GlobalKnownHostsFile says
// otherwise), as OpenSSH does. Only files(e)[0] is ever written.
func (hk *hostKeys) lookupFiles(e endpoint) []string {
	return append(append([]string(nil), hk.files(e)...), e.globalHosts...)
}

func (hk *hostKeys) policy(e endpoint) Policy {
	if hk.cfg.PolicySet || e.strictness == "" {
		if hk.cfg.Policy == "" {
			return AcceptNew
		}
		return hk.cfg.Policy
	}
	p, err := ParsePolicy(e.strictness)
	if err != nil || e.strictness == "ask" {
		return AcceptNew
	}
	return p
}

// db returns the known_hosts callback for files, loading them once.
func (hk *hostKeys) db(files []string) (ssh.HostKeyCallback, error) {
	key := fmt.Sprint(files)
	hk.mu.Lock()
	defer hk.mu.Unlock()
	if cb, ok := hk.dbs[key]; ok {
		return cb, nil
	}
	var existing []string
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		}
	}
	cb := ssh.HostKeyCallback(func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} })
	if len(existing) > 0 {
		var err error
		cb, err = knownhosts.New(existing...)
		if err != nil {
			return nil, fmt.Errorf("read known hosts %v: %w (fix or remove the bad line)", existing, err)
		}
	}
	hk.dbs[key] = cb
	return cb, nil
}

// algorithms returns the host key algorithms known for hostport, so the
// server is asked for the key type we can verify (as OpenSSH does).
func (hk *hostKeys) algorithms(e endpoint) []string {
	cb, err := hk.db(hk.lookupFiles(e))
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	probe := probeKey{}
	if err := cb(e.hostPort(), fakeAddr(e), probe); !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	set := map[string]bool{}
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			set[ssh.KeyAlgoRSASHA512] = true
			set[ssh.KeyAlgoRSASHA256] = true
			set[ssh.KeyAlgoRSA] = true
		default:
			set[t] = true
		}
	}
	var algos []string
	for a := range set {
		algos = append(algos, a)
	}
	sort.Strings(algos)
	return algos
}

// callback returns the HostKeyCallback for endpoint e.
func (hk *hostKeys) callback(target string, e endpoint) (ssh.HostKeyCallback, error) {
	pol := hk.policy(e)
	if pol == Off {
		hk.warnConfigOff(e)
		return ssh.InsecureIgnoreHostKey(), nil
	}
	files := hk.files(e)
	lookup := hk.lookupFiles(e)
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		hostport := e.hostPort()
		cb, err := hk.db(lookup)
		if err != nil {
			return err
		}
		err = cb(hostport, remote, key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &re):
			return &Error{Host: target, Hop: e.String(), Kind: KindHostKeyChanged, Err: err,
				Msg:  fmt.Sprintf("host key of %s is revoked in %s:%d", hostport, re.Revoked.Filename, re.Revoked.Line),
				Hint: "do not connect; ask the host's owner for its new key"}
		case errors.As(err, &ke) && len(ke.Want) > 0:
			w := ke.Want[0]
			return &Error{Host: target, Hop: e.String(), Kind: KindHostKeyChanged, Err: err,
				Msg: fmt.Sprintf("HOST KEY CHANGED for %s: it now presents %s %s, known_hosts has %s at %s:%d",
					hostport, key.Type(), ssh.FingerprintSHA256(key), w.Key.Type(), w.Filename, w.Line),
				Hint: fmt.Sprintf("this may be an attack; if the host was rebuilt, verify the new key out of band, then remove line %d of %s (ssh-keygen -R %s -f %s)",
					w.Line, w.Filename, knownhosts.Normalize(hostport), w.Filename)}
		case errors.As(err, &ke):
			return hk.unknown(target, e, pol, files[0], hostport, key)
		}
		return err
	}, nil
}

// warnConfigOff warns, once per endpoint and run, that ssh_config's
// StrictHostKeyChecking no turned host key checking off: a setting copied
// from a laptop's config must not silently weaken a production run (the
// --known-hosts-policy off flag warns in NewManager).
func (hk *hostKeys) warnConfigOff(e endpoint) {
	if hk.cfg.PolicySet || e.strictness == "" || hk.cfg.Warn == nil {
		return
	}
	hk.mu.Lock()
	seen := hk.warnedNo[e.hostPort()]
	hk.warnedNo[e.hostPort()] = true
	hk.mu.Unlock()
	if !seen {
		hk.cfg.Warn(fmt.Sprintf("host key checking is OFF for %s (StrictHostKeyChecking %s in ssh config): connections can be intercepted without notice; remove that line or pass --known-hosts-policy", e.String(), e.strictness))
	}
}

func (hk *hostKeys) unknown(target string, e endpoint, pol Policy, file, hostport string, key ssh.PublicKey) error {
	hk.mu.Lock()
	defer hk.mu.Unlock()
	if prev, ok := hk.accepted[hostport]; ok {
		if bytes.Equal(prev.Marshal(), key.Marshal()) {
			return nil
		}
		return &Error{Host: target, Hop: e.String(), Kind: KindHostKeyChanged,
			Msg:  fmt.Sprintf("HOST KEY CHANGED for %s during this run (%s)", hostport, ssh.FingerprintSHA256(key)),
			Hint: "two hosts answer at one address, or this is an attack; do not retry"}
	}
	if pol == Strict {
		return &Error{Host: target, Hop: e.String(), Kind: KindHostKeyUnknown,
			Msg: fmt.Sprintf("host key of %s (%s %s) is not in %s and the known-hosts policy is strict",
				hostport, key.Type(), ssh.FingerprintSHA256(key), file),
			Hint: fmt.Sprintf("verify the key, then add it: ssh-keyscan -p %d %s >> %s, or run once with --known-hosts-policy accept-new", e.port, e.addr, file)}
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("record host key of %s: %w", hostport, err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostport)}, key) + "\n"
	_, werr := f.WriteString(line)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		return fmt.Errorf("record host key of %s in %s: %w", hostport, file, errors.Join(werr, cerr))
	}
	hk.accepted[hostport] = key
	if hk.cfg.Warn != nil {
		hk.cfg.Warn(fmt.Sprintf("%s: recorded new host key %s %s in %s", hostport, key.Type(), ssh.FingerprintSHA256(key), file))
	}
	return nil
}

// probeKey is a key no known_hosts line matches, used to list the known keys of a host.
type probeKey struct{}

func (probeKey) Type() string                        { return "ferry-probe" }
func (probeKey) Marshal() []byte                     { return []byte("ferry-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe") }

func fakeAddr(e endpoint) net.Addr {
	ip := net.ParseIP(e.addr)
	if ip == nil {
		ip = net.IPv4zero
	}
	return &net.TCPAddr{IP: ip, Port: e.port}
}

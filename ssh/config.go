package ssh

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// Policy is what to do with host keys that are not in known_hosts.
type Policy string

const (
	AcceptNew Policy = "accept-new" // record unknown keys, refuse changed ones (default)
	Strict    Policy = "strict"     // refuse unknown keys
	Off       Policy = "off"        // verify nothing (explicit flag only; warns every run)
)

// ParsePolicy accepts the flag's values and OpenSSH's StrictHostKeyChecking words.
func ParsePolicy(s string) (Policy, error) {
	switch strings.ToLower(s) {
	case "", "accept-new":
		return AcceptNew, nil
	case "strict", "yes":
		return Strict, nil
	case "off", "no":
		return Off, nil
	}
	return "", fmt.Errorf("unknown known-hosts policy %q: use strict, accept-new or off", s)
}

// Config is the connection policy of a run: where keys and known hosts come
// from and how long to wait. The zero value plus defaults is usable.
type Config struct {
	// KnownHostsFiles are read; the first is where accept-new records keys.
	// Empty: UserKnownHostsFile from ssh_config, else ~/.ssh/known_hosts.
	KnownHostsFiles []string
	Policy          Policy
	// PolicySet says Policy came from a flag, so ssh_config's StrictHostKeyChecking does not override it.
	PolicySet bool

	IdentityFiles []string // --private-key: tried first, for every host and hop
	KeyPEM        []byte   // FERRY_SSH_KEY: a private key's PEM text (CI secrets)
	Passphrase    []byte   // FERRY_SSH_KEY_PASSPHRASE
	// Prompt asks for a passphrase (nil: no prompt, e.g. no TTY).
	Prompt func(what string) ([]byte, error)
	// AgentSocket overrides SSH_AUTH_SOCK ("none" disables the agent).
	AgentSocket string
	// NoDefaultKeys skips ~/.ssh/id_* (tests).
	NoDefaultKeys bool
	// Home and User are the local user's home directory (~, %d, ~/.ssh) and
	// name (%u, the default remote user); empty: the process's ($HOME,
	// $USER). The CLI passes its own environment's, so that tests in one
	// process can each have their own.
	Home string
	User string

	// SSHConfigFiles to consult, in order; nil means ~/.ssh/config then
	// /etc/ssh/ssh_config; an empty non-nil slice disables ssh_config.
	SSHConfigFiles []string

	ConnectTimeout    time.Duration // TCP connect + SSH handshake, per hop (default 15s)
	KeepAliveInterval time.Duration // default 15s; ServerAliveInterval in ssh_config
	KeepAliveMax      int           // missed keepalives before the connection is closed (default 3)

	// NoShell (FERRY_SSH_SHELL=0) runs every command in a session of its
	// own instead of the connection's command shell (see shell.go).
	NoShell bool
	// ShellFirst starts the command shell with the connection's first
	// command, for a caller that will send many (a playbook run), instead
	// of with its second (see shellSlot.used).
	ShellFirst bool
	// Prelude is a script many commands begin with (ferry's host-file
	// functions): the command shells hold it from their start, and such a
	// command sends only what follows it (shell.go).
	Prelude string

	// Warn receives warnings (host key policy off, a newly recorded key...).
	Warn func(msg string)
	// Log receives debug lines at -v (nil: silent).
	Log func(format string, args ...any)
}

// Hop is one jump host of a ProxyJump chain.
type Hop struct {
	User         string
	Host         string // address or ssh_config alias
	Port         int
	IdentityFile string
}

func (h Hop) String() string {
	s := h.Host
	if h.User != "" {
		s = h.User + "@" + s
	}
	if h.Port != 0 && h.Port != 22 {
		s += ":" + strconv.Itoa(h.Port)
	}
	return s
}

// ParseJumps parses a ProxyJump value: "[user@]host[:port][,...]" or "none".
func ParseJumps(s string) ([]Hop, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return nil, nil
	}
	var hops []Hop
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		part = strings.TrimPrefix(part, "ssh://")
		if part == "" {
			return nil, fmt.Errorf("empty hop in jump list %q", s)
		}
		var h Hop
		if i := strings.LastIndex(part, "@"); i >= 0 {
			h.User, part = part[:i], part[i+1:]
		}
		host, port, err := splitHostPort(part)
		if err != nil {
			return nil, fmt.Errorf("jump host %q: %w", part, err)
		}
		h.Host, h.Port = host, port
		hops = append(hops, h)
	}
	return hops, nil
}

func splitHostPort(s string) (string, int, error) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return "", 0, fmt.Errorf("missing ] in %q", s)
		}
		host, rest := s[1:end], s[end+1:]
		if rest == "" {
			return host, 0, nil
		}
		if !strings.HasPrefix(rest, ":") {
			return "", 0, fmt.Errorf("unexpected %q after ]", rest)
		}
		p, err := parsePort(rest[1:])
		return host, p, err
	}
	if strings.Count(s, ":") == 1 {
		i := strings.Index(s, ":")
		p, err := parsePort(s[i+1:])
		return s[:i], p, err
	}
	if s == "" {
		return "", 0, fmt.Errorf("empty host")
	}
	return s, 0, nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return p, nil
}

// Target is one host to connect to, as the inventory and flags describe it.
// Empty fields are filled from ssh_config, then defaults.
type Target struct {
	Name         string // inventory name, used in messages and as the ssh_config alias
	Addr         string // address (ansible_host); default Name
	Port         int
	User         string
	IdentityFile string
	// Jumps is the ProxyJump chain, outermost first. nil: ask ssh_config;
	// NoJumps: connect directly even if ssh_config names a ProxyJump.
	Jumps   []Hop
	NoJumps bool
	// ConfigFile (`-F FILE` in ansible_ssh_common_args) is the ssh_config
	// for this target and its jump hosts, instead of the default files.
	ConfigFile string
}

// endpoint is a fully resolved hop or target.
type endpoint struct {
	alias        string // name used for ssh_config lookups and messages
	addr         string
	port         int
	user         string
	identities   []string // identity files specific to this endpoint
	knownHosts   []string // UserKnownHostsFile
	globalHosts  []string // GlobalKnownHostsFile (read, never written)
	strictness   string   // StrictHostKeyChecking
	keepAlive    time.Duration
	connectLimit time.Duration
}

func (e endpoint) hostPort() string {
	if strings.Contains(e.addr, ":") {
		return "[" + e.addr + "]:" + strconv.Itoa(e.port)
	}
	return e.addr + ":" + strconv.Itoa(e.port)
}

func (e endpoint) String() string { return e.user + "@" + e.hostPort() }

// defaultGlobalKnownHosts is OpenSSH's GlobalKnownHostsFile default: keys an
// organisation pins for every user (often an @cert-authority line).
var defaultGlobalKnownHosts = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}

// sshConfig answers ssh_config questions for an alias across the configured files.
type sshConfig struct {
	files      []*ssh_config.Config
	home, user string // the local user's (Config.home, Config.localUser)
}

func loadSSHConfig(paths []string, cfg *Config) (*sshConfig, error) {
	if paths == nil {
		paths = []string{filepath.Join(cfg.home(), ".ssh", "config"), "/etc/ssh/ssh_config"}
	}
	sc := &sshConfig{home: cfg.home(), user: cfg.localUser()}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, fmt.Errorf("read ssh config: %w", err)
		}
		cfg, err := ssh_config.Decode(io.LimitReader(f, 1<<20))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("parse ssh config %s: %w (fix the file or set FERRY_SSH_CONFIG=none)", p, err)
		}
		sc.files = append(sc.files, cfg)
	}
	return sc, nil
}

// get returns the first value of key for alias (OpenSSH: first match wins).
func (sc *sshConfig) get(alias, key string) string {
	if sc == nil {
		return ""
	}
	for _, f := range sc.files {
		if v, err := f.Get(alias, key); err == nil && v != "" {
			return v
		}
	}
	return ""
}

func (sc *sshConfig) getAll(alias, key string) []string {
	if sc == nil {
		return nil
	}
	var out []string
	for _, f := range sc.files {
		if vs, err := f.GetAll(alias, key); err == nil {
			for _, v := range vs {
				if v != "" {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// home is the local user's home directory: Config.Home, else the process's.
func (c *Config) home() string {
	if c != nil && c.Home != "" {
		return c.Home
	}
	home, _ := os.UserHomeDir()
	return home
}

// localUser is the local user's name: Config.User, else the process's.
func (c *Config) localUser() string {
	if c != nil && c.User != "" {
		return c.User
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}

// expandPath expands ~ and OpenSSH's %d %u %h %r %% tokens.
func (sc *sshConfig) expandPath(p string, e endpoint) string {
	home := sc.home
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		p = filepath.Join(home, p[2:])
	}
	if strings.Contains(p, "%") {
		r := strings.NewReplacer("%d", home, "%u", sc.user, "%h", e.addr, "%r", e.user, "%%", "%")
		p = r.Replace(p)
	}
	return p
}

// resolve fills an endpoint for alias from explicit values, then ssh_config, then defaults.
func (sc *sshConfig) resolve(alias, addr string, port int, user, identity string) endpoint {
	e := endpoint{alias: alias, addr: addr, port: port, user: user}
	lookup := alias
	if e.addr == "" {
		if hn := sc.get(lookup, "HostName"); hn != "" {
			e.addr = strings.ReplaceAll(hn, "%h", alias)
		} else {
			e.addr = alias
		}
	} else if alias != addr && sc.get(alias, "HostName") == "" {
		// The inventory gave an address: ssh_config patterns may name it instead of the alias.
		if sc.get(addr, "User") != "" || sc.get(addr, "IdentityFile") != "" || sc.get(addr, "ProxyJump") != "" || sc.get(addr, "Port") != "" {
			lookup = addr
		}
	}
	if e.port == 0 {
		if p, err := parsePort(sc.get(lookup, "Port")); err == nil {
			e.port = p
		} else {
			e.port = 22
		}
	}
	if e.user == "" {
		e.user = sc.get(lookup, "User")
		if e.user == "" {
			e.user = sc.user
		}
	}
	if identity != "" {
		e.identities = []string{sc.expandPath(identity, e)}
	} else {
		for _, f := range sc.getAll(lookup, "IdentityFile") {
			e.identities = append(e.identities, sc.expandPath(f, e))
		}
	}
	for _, f := range strings.Fields(sc.get(lookup, "UserKnownHostsFile")) {
		e.knownHosts = append(e.knownHosts, sc.expandPath(f, e))
	}
	e.globalHosts = defaultGlobalKnownHosts
	if g := sc.get(lookup, "GlobalKnownHostsFile"); strings.EqualFold(g, "none") {
		e.globalHosts = nil
	} else if g != "" {
		e.globalHosts = nil
		for _, f := range strings.Fields(g) {
			e.globalHosts = append(e.globalHosts, sc.expandPath(f, e))
		}
	}
	e.strictness = strings.ToLower(sc.get(lookup, "StrictHostKeyChecking"))
	if v, err := strconv.Atoi(sc.get(lookup, "ServerAliveInterval")); err == nil && v > 0 {
		e.keepAlive = time.Duration(v) * time.Second
	}
	if v, err := strconv.Atoi(sc.get(lookup, "ConnectTimeout")); err == nil && v > 0 {
		e.connectLimit = time.Duration(v) * time.Second
	}
	e.alias = lookup
	return e
}

// chain resolves the jump hops for a target, outermost first. ProxyJump from
// ssh_config is followed recursively for the first hop, as OpenSSH does.
func (sc *sshConfig) chain(t Target, target endpoint) ([]endpoint, error) {
	if t.NoJumps {
		return nil, nil
	}
	hops := t.Jumps
	if hops == nil {
		pj := sc.get(target.alias, "ProxyJump")
		var err error
		hops, err = ParseJumps(pj)
		if err != nil {
			return nil, fmt.Errorf("ProxyJump for %s in ssh config: %w", target.alias, err)
		}
	}
	return sc.resolveHops(hops, 0)
}

func (sc *sshConfig) resolveHops(hops []Hop, depth int) ([]endpoint, error) {
	if len(hops) == 0 {
		return nil, nil
	}
	if depth > 8 {
		return nil, fmt.Errorf("ProxyJump chain deeper than 8 hops: is there a loop in ssh config?")
	}
	var out []endpoint
	for i, h := range hops {
		// A hop given as an alias may itself have a HostName/User/Port/IdentityFile in ssh_config.
		e := sc.resolve(h.Host, "", h.Port, h.User, h.IdentityFile)
		if i == 0 {
			pj, err := ParseJumps(sc.get(e.alias, "ProxyJump"))
			if err != nil {
				return nil, fmt.Errorf("ProxyJump for %s in ssh config: %w", e.alias, err)
			}
			pre, err := sc.resolveHops(pj, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, pre...)
		}
		out = append(out, e)
	}
	return out, nil
}

package inventory

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ferrydeploy/ferry/internal/value"
)

// Aliases of each connection setting, most specific first: within one
// level (one group's or host's vars) the first one present wins.
var (
	aliasHost = []string{"ansible_host", "ansible_ssh_host", "host"}
	aliasUser = []string{"ansible_user", "ansible_ssh_user", "ansible_ssh_user_name", "user"}
	aliasPort = []string{"ansible_port", "ansible_ssh_port", "port"}
	aliasKey  = []string{"ansible_ssh_private_key_file", "ansible_private_key_file", "identity_file"}
	sshArgs   = []string{"ansible_ssh_common_args", "ansible_ssh_extra_args"}
)

// conn is a host's resolved connection settings.
type conn struct {
	address, user, identityFile string
	port                        int
	jumps                       []Jump
	sshConfig                   string // -F FILE in the ssh args
	local                       bool   // ansible_connection: local
}

func isTemplate(v any) bool {
	s, ok := v.(string)
	return ok && strings.Contains(s, "{{")
}

func first(level map[string]any, keys []string) (string, any, bool) {
	for _, k := range keys {
		if v, ok := level[k]; ok {
			return k, v, true
		}
	}
	return "", nil, false
}

// connFromLevels resolves connection settings over variable levels, lowest
// precedence first: for each setting, the last level that sets it wins, so a
// host's `user` beats its group's `ansible_user`.
func connFromLevels(levels []map[string]any) (conn, []string) {
	var c conn
	var warns []string
	sshOpts := map[string]string{}
	for _, l := range levels {
		if len(l) == 0 {
			continue
		}
		if v, ok := l["ansible_connection"]; ok {
			c.local = scalarString(v) == "local"
		}
		for _, k := range sshArgs {
			if s, ok := l[k].(string); ok {
				file, opts, err := sshArgOptions(s)
				if err != nil {
					continue // reported with the jump settings below
				}
				if file != "" {
					c.sshConfig = file
				}
				for ok, ov := range opts {
					sshOpts[ok] = ov
				}
			}
		}
		if _, v, ok := first(l, aliasHost); ok {
			c.address = scalarString(v)
		}
		if _, v, ok := first(l, aliasUser); ok {
			c.user = scalarString(v)
		}
		if k, v, ok := first(l, aliasPort); ok {
			c.port = 0
			if v != nil && !isTemplate(v) {
				p, err := parsePort(v)
				if err != nil {
					warns = append(warns, fmt.Sprintf("%s: %v", k, err))
				}
				c.port = p
			} else if isTemplate(v) {
				warns = append(warns, fmt.Sprintf("%s %q is a template: ferry does not render inventory templates, using the default port", k, v))
			}
		}
		if _, v, ok := first(l, aliasKey); ok {
			c.identityFile = scalarString(v)
		}
		if v, ok := l["bastion"]; ok {
			j, err := parseBastion(v)
			if err != nil {
				warns = append(warns, fmt.Sprintf("bastion: %v", err))
			} else {
				c.jumps = j
			}
			continue
		}
		for _, k := range sshArgs {
			s, ok := l[k].(string)
			if !ok {
				continue
			}
			j, found, w, err := jumpsFromSSHArgs(s)
			warns = append(warns, w...)
			if err != nil {
				warns = append(warns, fmt.Sprintf("%s: %v", k, err))
				continue
			}
			if found {
				c.jumps = j
				break
			}
		}
	}
	warns = append(warns, c.applySSHOptions(sshOpts)...)
	return c, warns
}

func scalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case map[string]any, []any:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

func parsePort(v any) (int, error) {
	p, ok := value.Int(v)
	if !ok {
		return 0, fmt.Errorf("port must be a number from 1 to 65535, not %s", describe(v))
	}
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %d is out of range 1-65535", p)
	}
	return p, nil
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	default:
		return fmt.Sprint(x)
	}
}

// checkVar validates a well-known variable where it is written, so a
// mistake is reported at its position instead of surfacing at connect time.
func checkVar(key string, v any) error {
	if isTemplate(v) {
		return nil
	}
	in := func(list []string) bool { return slices.Contains(list, key) }
	switch {
	case in(aliasHost), in(aliasUser), in(aliasKey):
		switch v.(type) {
		case map[string]any, []any:
			return fmt.Errorf("%s must be a string, not %s", key, describe(v))
		}
	case in(aliasPort):
		if v == nil {
			return nil
		}
		if _, err := parsePort(v); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	case key == "bastion":
		if _, err := parseBastion(v); err != nil {
			return fmt.Errorf("bastion: %w", err)
		}
	case in(sshArgs):
		if v == nil {
			return nil
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s must be a string, not %s", key, describe(v))
		}
		if _, _, _, err := jumpsFromSSHArgs(s); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

var hopKeys = []string{"host", "user", "port", "identity_file"}

// parseBastion reads the bastion variable: "user@host:port" (several hops
// comma-separated), a list of hops (strings or maps), or one map
// {host, user, port, identity_file}. Empty, null or "none" means direct.
func parseBastion(v any) ([]Jump, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		s := strings.TrimSpace(x)
		if s == "" || strings.EqualFold(s, "none") {
			return nil, nil
		}
		return parseHops(s)
	case map[string]any:
		j, err := hopFromMap(x)
		if err != nil {
			return nil, err
		}
		return []Jump{j}, nil
	case []any:
		var out []Jump
		for i, e := range x {
			switch h := e.(type) {
			case string:
				j, err := parseHop(h)
				if err != nil {
					return nil, fmt.Errorf("hop %d: %w", i+1, err)
				}
				out = append(out, j)
			case map[string]any:
				j, err := hopFromMap(h)
				if err != nil {
					return nil, fmt.Errorf("hop %d: %w", i+1, err)
				}
				out = append(out, j)
			default:
				return nil, fmt.Errorf("hop %d must be \"user@host:port\" or a mapping, not %s", i+1, describe(e))
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("must be \"user@host:port\", a list of hops or a mapping with host, user, port, identity_file; not %s", describe(v))
}

func hopFromMap(m map[string]any) (Jump, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var j Jump
	for _, k := range keys {
		v := m[k]
		switch k {
		case "host", "address", "ansible_host":
			j.Host = scalarString(v)
		case "user", "ansible_user":
			j.User = scalarString(v)
		case "port", "ansible_port":
			p, err := parsePort(v)
			if err != nil {
				return j, err
			}
			j.Port = p
		case "identity_file", "ansible_ssh_private_key_file":
			j.IdentityFile = scalarString(v)
		default:
			msg := fmt.Sprintf("unknown bastion key %q (known: %s)", k, strings.Join(hopKeys, ", "))
			if s := suggest(k, hopKeys); s != "" {
				msg += "; " + s
			}
			return j, errors.New(msg)
		}
	}
	if j.Host == "" {
		return j, errors.New("a bastion mapping needs host")
	}
	return j, nil
}

func parseHops(s string) ([]Jump, error) {
	var out []Jump
	for _, part := range strings.Split(s, ",") {
		j, err := parseHop(part)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// parseHop parses one ProxyJump hop: [ssh://][user@]host[:port], with
// IPv6 addresses in brackets when a port follows.
func parseHop(s string) (Jump, error) {
	s = strings.TrimSpace(s)
	orig := s
	s = strings.TrimPrefix(s, "ssh://")
	var j Jump
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		j.User, s = s[:i], s[i+1:]
		if j.User == "" {
			return j, fmt.Errorf("hop %q has an empty user", orig)
		}
	}
	port := ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return j, fmt.Errorf("hop %q has an unclosed [", orig)
		}
		host, rest := s[1:end], s[end+1:]
		s = host
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return j, fmt.Errorf("hop %q: unexpected %q after ]", orig, rest)
			}
			port = rest[1:]
		}
	case strings.Count(s, ":") == 1:
		i := strings.IndexByte(s, ':')
		s, port = s[:i], s[i+1:]
	}
	if s == "" {
		return j, fmt.Errorf("hop %q has no host", orig)
	}
	if strings.ContainsAny(s, " \t/") {
		return j, fmt.Errorf("hop %q is not a host name", orig)
	}
	j.Host = s
	if port != "" {
		p, err := parsePort(port)
		if err != nil {
			return j, fmt.Errorf("hop %q: %w", orig, err)
		}
		j.Port = p
	}
	return j, nil
}

func bracketIPv6(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// jumpsFromSSHArgs finds the ProxyJump chain in ssh command-line options:
// -J hops, -o ProxyJump=hops, and -o ProxyCommand="ssh ... bastion" (the
// common pre-ProxyJump idiom). found reports whether the options name a
// jump setting at all (ProxyJump=none counts: it means direct).
func jumpsFromSSHArgs(s string) (jumps []Jump, found bool, warns []string, err error) {
	toks, err := shellSplit(s, false)
	if err != nil {
		return nil, false, nil, err
	}
	opt := func(o string) (bool, error) {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, _ = strings.Cut(strings.TrimSpace(o), " ")
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "proxyjump":
			if strings.EqualFold(v, "none") {
				return true, nil
			}
			jumps, err = parseHops(v)
			return true, err
		case "proxycommand":
			if strings.EqualFold(v, "none") {
				return true, nil
			}
			j, ok, perr := jumpsFromProxyCommand(v)
			if perr != nil {
				return false, perr
			}
			if !ok {
				warns = append(warns, fmt.Sprintf("ProxyCommand %q is not an ssh command: ferry ignores it and connects directly", v))
				return false, nil
			}
			jumps = j
			return true, nil
		}
		return false, nil
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		var arg string
		switch {
		case t == "-J" || t == "-o":
			if i+1 >= len(toks) {
				return nil, false, warns, fmt.Errorf("%s needs a value", t)
			}
			arg = toks[i+1]
			i++
		case strings.HasPrefix(t, "-J") || strings.HasPrefix(t, "-o"):
			arg = t[2:]
			// Accept "-oProxyJump host" as well as "-oProxyJump=host".
			if t[1] == 'o' && !strings.ContainsAny(arg, "= ") && i+1 < len(toks) && !strings.HasPrefix(toks[i+1], "-") {
				arg += "=" + toks[i+1]
				i++
			}
		default:
			continue
		}
		if t[:2] == "-J" {
			jumps, err = parseHops(arg)
			return jumps, true, warns, err
		}
		ok, err := opt(arg)
		if err != nil || ok {
			return jumps, ok, warns, err
		}
	}
	return nil, false, warns, nil
}

// ssh options that take an argument (from ssh(1)).
const sshArgFlags = "BbcDEeFIiJLlmOopQRSWw"

// jumpsFromProxyCommand reads `ssh [opts] [user@]bastion ...` (e.g.
// `ssh -W %h:%p -q user@bastion`) as a jump through bastion, itself
// possibly behind -J hops. ok is false when the command is not ssh.
func jumpsFromProxyCommand(cmd string) ([]Jump, bool, error) {
	toks, err := shellSplit(cmd, false)
	if err != nil {
		return nil, false, err
	}
	if len(toks) > 0 && toks[0] == "exec" {
		toks = toks[1:]
	}
	if len(toks) == 0 || path.Base(toks[0]) != "ssh" {
		return nil, false, nil
	}
	var prior []Jump
	var hop Jump
	var user, ident string
	var port int
	dest := ""
	for i := 1; i < len(toks); i++ {
		t := toks[i]
		if dest != "" {
			break // the rest is a remote command, e.g. `nc %h %p`
		}
		if !strings.HasPrefix(t, "-") || len(t) < 2 {
			dest = t
			continue
		}
		flag := t[1]
		if !strings.ContainsRune(sshArgFlags, rune(flag)) {
			continue // flags without argument, possibly grouped (-qT)
		}
		val := t[2:]
		if val == "" {
			if i+1 >= len(toks) {
				return nil, true, fmt.Errorf("ProxyCommand: -%c needs a value", flag)
			}
			val = toks[i+1]
			i++
		}
		switch flag {
		case 'l':
			user = val
		case 'p':
			p, err := parsePort(val)
			if err != nil {
				return nil, true, fmt.Errorf("ProxyCommand -p: %w", err)
			}
			port = p
		case 'i':
			ident = val
		case 'J':
			prior, err = parseHops(val)
			if err != nil {
				return nil, true, err
			}
		case 'o':
			k, v, ok := strings.Cut(val, "=")
			if !ok {
				k, v, _ = strings.Cut(val, " ")
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "user":
				user = strings.TrimSpace(v)
			case "port":
				p, err := parsePort(strings.TrimSpace(v))
				if err != nil {
					return nil, true, fmt.Errorf("ProxyCommand Port: %w", err)
				}
				port = p
			case "identityfile":
				ident = strings.TrimSpace(v)
			}
		}
	}
	if dest == "" {
		return nil, true, errors.New("ProxyCommand runs ssh without a destination")
	}
	hop, err = parseHop(dest)
	if err != nil {
		return nil, true, fmt.Errorf("ProxyCommand: %w", err)
	}
	if hop.User == "" {
		hop.User = user
	}
	if hop.Port == 0 {
		hop.Port = port
	}
	hop.IdentityFile = ident
	return append(prior, hop), true, nil
}

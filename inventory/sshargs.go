package inventory

import (
	"fmt"
	"strings"
)

// sshArgOptions reads the OpenSSH options in ansible_ssh_common_args /
// ansible_ssh_extra_args besides the jump settings: `-F FILE` (an ssh_config
// to use instead of the default ones, for the host and its bastion) and
// `-o Key=Value` / `-l user` / `-p port` / `-i key` for the settings ferry
// uses. Keys are lower-cased.
func sshArgOptions(s string) (configFile string, opts map[string]string, err error) {
	toks, err := shellSplit(s, false)
	if err != nil {
		return "", nil, err
	}
	opts = map[string]string{}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if len(t) < 2 || t[0] != '-' || !strings.ContainsRune("Foilp", rune(t[1])) {
			continue
		}
		val := t[2:]
		if val == "" {
			if i+1 >= len(toks) {
				return "", nil, fmt.Errorf("%s needs a value", t)
			}
			i++
			val = toks[i]
		}
		switch t[1] {
		case 'F':
			configFile = val
		case 'l':
			opts["user"] = val
		case 'p':
			opts["port"] = val
		case 'i':
			opts["identityfile"] = val
		case 'o':
			k, v, ok := strings.Cut(val, "=")
			if !ok {
				k, v, _ = strings.Cut(strings.TrimSpace(val), " ")
			}
			opts[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	return configFile, opts, nil
}

// applySSHOptions fills the settings the inventory's own variables leave
// unset from -o/-l/-p/-i options (ansible_user and friends win, as Ansible
// passes them after the common args).
func (c *conn) applySSHOptions(opts map[string]string) []string {
	var warns []string
	if v := opts["hostname"]; v != "" && c.address == "" {
		c.address = v
	}
	if v := opts["user"]; v != "" && c.user == "" {
		c.user = v
	}
	if v := opts["identityfile"]; v != "" && c.identityFile == "" {
		c.identityFile = v
	}
	if v := opts["port"]; v != "" && c.port == 0 {
		p, err := parsePort(v)
		if err != nil {
			warns = append(warns, fmt.Sprintf("ssh option Port: %v", err))
		} else {
			c.port = p
		}
	}
	return warns
}

// SSHConfigFile is the ssh_config named by `-F FILE` in the host's ssh
// args, or "" (the default ssh_config files apply).
func (h *Host) SSHConfigFile() string { return h.conn.sshConfig }

// Local reports `ansible_connection: local`: the host is the controller.
func (h *Host) Local() bool { return h.conn.local }

// WithUser is h logging in as user: the play's remote_user for a host whose
// inventory names no user (ansible_user wins over remote_user, as in Ansible).
func (h *Host) WithUser(user string) *Host {
	c := *h
	c.conn.user = user
	return &c
}

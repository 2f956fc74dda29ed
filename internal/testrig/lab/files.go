package lab

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	_ "embed"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/internal/testrig/lab/systemctl"
)

//go:embed init.sh
var initScript []byte

// userCAPath is sshd's TrustedUserCAKeys file inside every host; it starts
// empty (or with Options.TrustedUserCAKeys) and sshd reads it at each login.
const userCAPath = "/etc/ssh/lab_user_ca_keys"

const sshdConfig = `# sshd_config of ferry lab host %s (generated)
Port 22
AddressFamily inet
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
LogLevel VERBOSE
PermitRootLogin no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
TrustedUserCAKeys ` + userCAPath + `
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowTcpForwarding yes
AllowAgentForwarding yes
X11Forwarding no
PrintMotd no
UseDNS no
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
`

// writeClientKey creates the lab's client key pair and returns the public key.
func (l *Lab) writeClientKey() ([]byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "ferry-lab")
	if err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	authorized := bytes.TrimSpace(ssh.MarshalAuthorizedKey(spub))
	authorized = append(authorized, " ferry-lab\n"...)
	l.KeyFile = filepath.Join(l.Dir, "id_ed25519")
	if err := os.WriteFile(l.KeyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	if err := os.WriteFile(l.KeyFile+".pub", authorized, 0o644); err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(l.Dir, "init.sh"), initScript, 0o755); err != nil {
		return nil, fmt.Errorf("lab init script: %w", err)
	}
	return authorized, nil
}

// hostKey generates an ed25519 host key: the private key file and the
// public key in authorized_keys form.
func hostKey(name string) (privPEM []byte, pub string, err error) {
	p, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "root@"+name)
	if err != nil {
		return nil, "", err
	}
	spub, err := ssh.NewPublicKey(p)
	if err != nil {
		return nil, "", err
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub))), nil
}

// deployIDs picks a uid/gid for deploy that the machine itself does not use,
// so that files a host's deploy owns mean nothing outside the lab.
func deployIDs() (uid, gid int) {
	used := map[int]bool{}
	for _, f := range []string{"/etc/passwd", "/etc/group"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			parts := strings.Split(sc.Text(), ":")
			if len(parts) > 2 {
				if n, err := strconv.Atoi(parts[2]); err == nil {
					used[n] = true
				}
			}
		}
	}
	id := 2000
	for used[id] && id < 60000 {
		id++
	}
	return id, id
}

// prepareHost lays out a host's directory: the sources of its mounts, the
// files its init appends to /etc, its sshd config and keys, its network.
func (l *Lab) prepareHost(h *hostProc, authorized [][]byte, caKey []byte) error {
	wrap := func(err error) error { return fmt.Errorf("prepare %s: %w", h.Name, err) }
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{"upper/etc/ssh", 0o755}, {"upper/etc/sudoers.d", 0o750}, {"upper/usr", 0o755}, {"upper/var", 0o755},
		{"work/etc", 0o755}, {"work/usr", 0o755}, {"work/var", 0o755},
		{"opt", 0o755}, {"cgroup", 0o755}, {"home", 0o755}, {"root", 0o700}, {"tmp", 0o777 | os.ModeSticky}, {"log", 0o755}, {"add", 0o700},
		{"ferry", 0o700},
	}
	if h.role == "app" {
		dirs = append(dirs, struct {
			path string
			mode os.FileMode
		}{"containers", 0o700})
	}
	for _, d := range dirs {
		p := filepath.Join(h.dir, d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return wrap(err)
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return wrap(err)
		}
	}
	// upper/ holds the host's changes, work/ is overlayfs' scratch space;
	// both belong to root like the directories they shadow.
	uid, gid := deployIDs()
	var hosts strings.Builder
	fmt.Fprintf(&hosts, "127.0.1.1\t%s\n", h.Name)
	for _, o := range l.order {
		fmt.Fprintf(&hosts, "%s\t%s\n", o.Addr, o.Name)
	}
	priv, pub, err := hostKey(h.Name)
	if err != nil {
		return wrap(err)
	}
	h.HostKey = pub
	files := []struct {
		path string
		data string
		mode os.FileMode
	}{
		{"add/hosts", hosts.String(), 0o644},
		{"add/passwd", fmt.Sprintf("%s:x:%d:%d:ferry lab deploy user:/home/%s:/bin/bash\n", labUser, uid, gid, labUser), 0o644},
		{"add/shadow", labUser + ":*:19000:0:99999:7:::\n", 0o600},
		{"add/group", fmt.Sprintf("%s:x:%d:\n", labUser, gid), 0o644},
		{"add/gshadow", labUser + ":!::\n", 0o600},
		{"upper/etc/ssh/sshd_config", fmt.Sprintf(sshdConfig, h.Name), 0o644},
		{"upper/etc/ssh/ssh_host_ed25519_key", string(priv), 0o600},
		{"upper/etc/ssh/ssh_host_ed25519_key.pub", pub + " root@" + h.Name + "\n", 0o644},
		{"upper/etc/ssh/lab_user_ca_keys", string(caKey), 0o644},
		{"net.batch", l.netBatch(h), 0o644},
	}
	if h.role == "app" {
		files = append(files,
			struct {
				path string
				data string
				mode os.FileMode
			}{"upper/etc/sudoers.d/ferry-lab-deploy", labUser + " ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440})
		// The stand-in replaces systemctl wherever a tool may look for it.
		for _, p := range []string{"upper/usr/local/bin/systemctl", "upper/usr/bin/systemctl"} {
			files = append(files, struct {
				path string
				data string
				mode os.FileMode
			}{p, string(systemctl.Script), 0o755})
		}
	}
	for _, f := range files {
		p := filepath.Join(h.dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return wrap(err)
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			return wrap(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return wrap(err)
		}
	}
	return wrap0(l.makeHome(h, uid, gid, authorized), wrap)
}

func wrap0(err error, wrap func(error) error) error {
	if err != nil {
		return wrap(err)
	}
	return nil
}

// makeHome creates /home/deploy with the authorized keys and skeleton files.
func (l *Lab) makeHome(h *hostProc, uid, gid int, authorized [][]byte) error {
	home := filepath.Join(h.dir, "home", labUser)
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		return err
	}
	var keys bytes.Buffer
	for _, k := range authorized {
		keys.Write(bytes.TrimSpace(k))
		keys.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "authorized_keys"), keys.Bytes(), 0o600); err != nil {
		return err
	}
	for _, f := range []string{".bashrc", ".profile", ".bash_logout"} {
		if b, err := os.ReadFile(filepath.Join("/etc/skel", f)); err == nil {
			if err := os.WriteFile(filepath.Join(home, f), b, 0o644); err != nil {
				return err
			}
		}
	}
	if err := os.Chmod(home, 0o750); err != nil {
		return err
	}
	return filepath.Walk(home, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// netBatch is the host's network setup, run by its init with ip -batch.
func (l *Lab) netBatch(h *hostProc) string {
	var b strings.Builder
	b.WriteString("link set lo up\n")
	if h.role == "app" {
		fmt.Fprintf(&b, "addr add %s/%d dev eth0\nlink set eth0 up\n", h.Addr, l.net.appBits())
		return b.String()
	}
	bs := l.bastions()
	switch {
	case len(bs) == 1 || h == bs[0]:
		fmt.Fprintf(&b, "addr add %s/30 dev eth0\nlink set eth0 up\n", l.net.transit(2))
	default:
		fmt.Fprintf(&b, "addr add %s/30 dev eth0\nlink set eth0 up\n", l.net.transit(6))
	}
	if len(bs) == 2 && h == bs[0] {
		fmt.Fprintf(&b, "addr add %s/30 dev j0\nlink set j0 up\n", l.net.transit(5))
		return b.String()
	}
	// The last bastion bridges the app hosts.
	fmt.Fprintf(&b, "link add br0 type bridge\naddr add %s/%d dev br0\nlink set br0 up\n", l.net.app(1), l.net.appBits())
	for _, a := range l.apps() {
		fmt.Fprintf(&b, "link set %s master br0\nlink set %s up\n", bridgePort(a), bridgePort(a))
	}
	return b.String()
}

// writeClientFiles writes known_hosts, ssh_config and the inventory.
func (l *Lab) writeClientFiles() error {
	for _, h := range l.order {
		if h.role == "app" {
			l.Hosts = append(l.Hosts, h.Host)
		} else {
			l.Bastions = append(l.Bastions, h.Host)
		}
	}
	l.KnownHosts = filepath.Join(l.Dir, "known_hosts")
	l.SSHConfig = filepath.Join(l.Dir, "ssh_config")
	l.Inventory = filepath.Join(l.Dir, "inventory.yml")

	var kh strings.Builder
	for _, h := range l.order {
		fmt.Fprintf(&kh, "%s,%s %s\n", h.Name, h.Addr, h.HostKey)
	}

	var sc strings.Builder
	fmt.Fprintf(&sc, "# ssh_config of the ferry lab in %s (generated): ssh -F %s app1\n\n", l.Dir, l.SSHConfig)
	prev := ""
	for _, b := range l.Bastions {
		fmt.Fprintf(&sc, "Host %s %s\n    HostName %s\n", b.Name, b.Addr, b.Addr)
		if prev != "" {
			fmt.Fprintf(&sc, "    ProxyJump %s\n", prev)
		}
		sc.WriteString("\n")
		prev = b.Name
	}
	for _, h := range l.Hosts {
		fmt.Fprintf(&sc, "Host %s\n    HostName %s\n    ProxyJump %s\n\n", h.Name, h.Addr, prev)
	}
	fmt.Fprintf(&sc, "Host %s\n    ProxyJump %s\n\n", l.net.appPatterns(), prev)
	fmt.Fprintf(&sc, `Host *
    User %s
    Port 22
    IdentityFile %s
    IdentitiesOnly yes
    UserKnownHostsFile %s
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    ConnectTimeout 10
`, labUser, configQuote(l.KeyFile), configQuote(l.KnownHosts))

	var inv strings.Builder
	fmt.Fprintf(&inv, "# Ansible inventory of the ferry lab in %s (generated)\nall:\n  children:\n    app:\n      hosts:\n", l.Dir)
	for _, h := range l.Hosts {
		fmt.Fprintf(&inv, "        %s:\n          ansible_host: %s\n", h.Name, h.Addr)
	}
	// -F hands the lab's ssh_config (key, known_hosts) to the jump too:
	// OpenSSH passes -F, but not -i or -o, to a ProxyJump hop.
	fmt.Fprintf(&inv, `      vars:
        ansible_user: %s
        ansible_port: 22
        ansible_ssh_private_key_file: %s
        ansible_ssh_common_args: %s
        ansible_python_interpreter: /usr/bin/python3
`, labUser, strconv.Quote(l.KeyFile), strconv.Quote("-F "+shell.Quote(l.SSHConfig)+" -J "+l.JumpSpec()))

	for _, f := range []struct{ path, data string }{
		{l.KnownHosts, kh.String()}, {l.SSHConfig, sc.String()}, {l.Inventory, inv.String()},
	} {
		if err := os.WriteFile(f.path, []byte(f.data), 0o644); err != nil {
			return fmt.Errorf("lab client files: %w", err)
		}
	}
	return nil
}

// configQuote quotes an ssh_config value that holds blanks.
func configQuote(s string) string {
	if strings.ContainsAny(s, " \t") {
		return `"` + s + `"`
	}
	return s
}

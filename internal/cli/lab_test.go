package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/testrig/lab"
)

// These tests drive the CLI in-process against a lab: real sshd processes in
// network namespaces, app hosts reachable only through the bastion.

type result struct {
	code           int
	stdout, stderr string
}

// ferry runs the CLI in-process with args; env entries (KEY=VALUE) hold for
// the rest of the test (and its subtests), in the commands' environment, not
// the process's, so that tests can run in parallel (AWS_* included: ferry
// gives the AWS SDK the command's environment, see awsapi.Config.Env).
func ferry(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return ferryWithin(t, 2*time.Minute, env, args...)
}

// ferryWithin is ferry with another bound on the run (large fleets).
func ferryWithin(t *testing.T, limit time.Duration, env []string, args ...string) result {
	t.Helper()
	setTestEnv(t, env...)
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(counting(context.Background(), t), limit)
	defer cancel()
	code := runEnv(ctx, args, commandEnv(t), strings.NewReader(""), &out, &errb)
	r := result{code, out.String(), errb.String()}
	t.Logf("ferry %s → %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, r.stdout, r.stderr)
	return r
}

// isolate gives the test's ferry commands their own HOME (so ~/.ssh is
// empty) and record directory, and no agent or key from the environment. It sets nothing in the
// process: tests that call it may run in parallel.
func isolate(t *testing.T) string {
	home := t.TempDir()
	setTestEnv(t, "HOME="+home, "SSH_AUTH_SOCK=", "FERRY_SSH_KEY=", "FERRY_SSH_KEY_PASSPHRASE=",
		"FERRY_RECORD_DIR="+filepath.Join(home, "runs"))
	return home
}

// testEnvs holds, by test name, the environment entries ferry and isolate
// gave a test; a subtest sees its parents'.
var testEnvs sync.Map // string → []string

func setTestEnv(t *testing.T, kv ...string) {
	if len(kv) == 0 {
		return
	}
	old, _ := testEnvs.Load(t.Name())
	prev, _ := old.([]string)
	if old == nil {
		t.Cleanup(func() { testEnvs.Delete(t.Name()) })
	}
	testEnvs.Store(t.Name(), append(slices.Clone(prev), kv...))
}

// ownEnv is what t's parents and t set (setTestEnv), in that order.
func ownEnv(t *testing.T) []string {
	var own []string
	for name := t.Name(); ; {
		if v, ok := testEnvs.Load(name); ok {
			own = append(slices.Clone(v.([]string)), own...)
		}
		i := strings.LastIndex(name, "/")
		if i < 0 {
			break
		}
		name = name[:i]
	}
	return own
}

// commandEnv is the environment of a ferry command in test t: the
// process's, then ownEnv (later entries win).
func commandEnv(t *testing.T) environ {
	return environOf(append(os.Environ(), ownEnv(t)...))
}

// inventoryWithoutKey writes an inventory of the lab's app hosts naming no key,
// so the test decides where the key comes from.
func inventoryWithoutKey(t *testing.T, l *lab.Lab) string {
	var b strings.Builder
	b.WriteString("all:\n  children:\n    app:\n      hosts:\n")
	for _, h := range l.Hosts {
		fmt.Fprintf(&b, "        %s:\n          ansible_host: %s\n          ansible_user: %s\n          ansible_ssh_common_args: '-J %s'\n", h.Name, h.Addr, l.User, l.JumpSpec())
	}
	p := filepath.Join(t.TempDir(), "inventory.yml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLabPingExec(t *testing.T) {
	t.Parallel()
	l := lab.StartT(t, lab.Options{Hosts: 5})
	isolate(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	env := []string{"FERRY_KNOWN_HOSTS=" + kh}

	// 1. ping: every host OK through one bastion connection.
	before, err := l.BastionConnections()
	if err != nil {
		t.Fatal(err)
	}
	r := ferry(t, env, "ping", "-i", l.Inventory)
	if r.code != 0 {
		t.Fatalf("ping exit %d", r.code)
	}
	for _, h := range l.Hosts {
		if !regexp.MustCompile(`(?m)^` + h.Name + `\s+ok\s+user=deploy sudo=yes`).MatchString(r.stdout) {
			t.Errorf("no ok line for %s", h.Name)
		}
	}
	after, err := l.BastionConnections()
	if err != nil {
		t.Fatal(err)
	}
	if after-before != 1 {
		t.Errorf("bastion accepted %d connections for 5 hosts, want 1", after-before)
	}
	// The topology is real: an app host cannot be reached directly.
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(l.Hosts[0].Addr, "22"), 3*time.Second); err == nil {
		c.Close()
		t.Fatalf("direct connection to %s succeeded: the lab leaks", l.Hosts[0].Addr)
	}

	// accept-new recorded every key it saw.
	b, _ := os.ReadFile(kh)
	for _, h := range append(l.Bastions, l.Hosts...) {
		if !strings.Contains(string(b), h.Addr+" ssh-ed25519 ") {
			t.Errorf("known_hosts lacks %s", h.Addr)
		}
	}

	// 2. exec: each host's own output, prefixed by host.
	r = ferry(t, env, "exec", "-i", l.Inventory, "--", "hostname")
	if r.code != 0 {
		t.Fatalf("exec exit %d", r.code)
	}
	for _, h := range l.Hosts {
		if !regexp.MustCompile(`(?m)^` + h.Name + `\s+\| ` + h.Name + `$`).MatchString(r.stdout) {
			t.Errorf("no line %q | %q", h.Name, h.Name)
		}
	}
	r = ferry(t, env, "exec", "-i", l.Inventory, "--", `test "$(hostname)" != app3`)
	if r.code != exitcode.Failed || !strings.Contains(r.stderr, "app3") || strings.Contains(r.stderr, "app1") {
		t.Fatalf("failing command: exit %d, stderr %q", r.code, r.stderr)
	}
	r = ferry(t, env, "exec", "-i", l.Inventory, "--become", "-l", "app1", "--", "id", "-u")
	if r.code != 0 || !strings.Contains(r.stdout, "app1 | 0") {
		t.Fatalf("--become: exit %d, stdout %q", r.code, r.stdout)
	}

	// 6. A pattern matching nothing is an error.
	r = ferry(t, env, "exec", "-i", l.Inventory, "-l", "nosuchgroup", "--", "true")
	if r.code != exitcode.Invalid {
		t.Fatalf("empty pattern: exit %d", r.code)
	}
}

func TestLabKnownHosts(t *testing.T) {
	t.Parallel()
	l := lab.StartT(t, lab.Options{Hosts: 2})
	isolate(t)
	dir := t.TempDir()

	// strict refuses unknown hosts (the bastion, first).
	kh := filepath.Join(dir, "strict_known_hosts")
	r := ferry(t, []string{"FERRY_KNOWN_HOSTS=" + kh}, "ping", "-i", l.Inventory, "--known-hosts-policy", "strict")
	if r.code != exitcode.Unreachable || !strings.Contains(r.stdout, "not in "+kh) {
		t.Fatalf("strict: exit %d", r.code)
	}
	if _, err := os.Stat(kh); err == nil {
		t.Fatal("strict wrote the known_hosts file")
	}
	// strict with the lab's file passes.
	r = ferry(t, []string{"FERRY_KNOWN_HOSTS=" + l.KnownHosts}, "ping", "-i", l.Inventory, "--known-hosts-policy", "strict")
	if r.code != 0 {
		t.Fatalf("strict with known keys: exit %d", r.code)
	}

	// A changed key is refused with exit 3, naming file and line, and never retried.
	changed := filepath.Join(dir, "changed_known_hosts")
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "other")).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	other, _ := os.ReadFile(filepath.Join(dir, "other.pub"))
	otherKey := strings.Join(strings.Fields(string(other))[:2], " ")
	var lines []string
	target := l.Hosts[1]
	lineNo := 0
	orig, _ := os.ReadFile(l.KnownHosts)
	for _, ln := range strings.Split(strings.TrimSpace(string(orig)), "\n") {
		f := strings.Fields(ln)
		if len(f) >= 3 && strings.Contains(","+f[0]+",", ","+target.Addr+",") {
			ln = f[0] + " " + otherKey
			lineNo = len(lines) + 1
		}
		lines = append(lines, ln)
	}
	if lineNo == 0 {
		t.Fatalf("no line for %s in the lab's known_hosts", target.Addr)
	}
	os.WriteFile(changed, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	r = ferry(t, []string{"FERRY_KNOWN_HOSTS=" + changed}, "ping", "-i", l.Inventory)
	if r.code != exitcode.Unreachable {
		t.Fatalf("changed key: exit %d", r.code)
	}
	if !strings.Contains(r.stdout, "HOST KEY CHANGED") || !strings.Contains(r.stdout, fmt.Sprintf("%s:%d", changed, lineNo)) {
		t.Fatalf("changed key message does not name %s:%d:\n%s", changed, lineNo, r.stdout)
	}
	if !regexp.MustCompile(`(?m)^` + l.Hosts[0].Name + `\s+ok`).MatchString(r.stdout) {
		t.Errorf("the unchanged host failed too")
	}

	// off: works, and warns.
	r = ferry(t, []string{"FERRY_KNOWN_HOSTS=" + changed}, "ping", "-i", l.Inventory, "--known-hosts-policy", "off")
	if r.code != 0 || !strings.Contains(r.stderr, "host key checking is OFF") {
		t.Fatalf("off: exit %d, stderr %q", r.code, r.stderr)
	}
}

func keygen(t *testing.T, dir, name, pass string) (priv string, pub []byte) {
	t.Helper()
	priv = filepath.Join(dir, name)
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", pass, "-C", name, "-f", priv).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, err = os.ReadFile(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func TestLabAuth(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		t.Skip("ssh-agent not installed")
	}
	dir := t.TempDir()
	encKey, encPub := keygen(t, dir, "encrypted", "correct horse")
	envKey, envPub := keygen(t, dir, "envkey", "")
	wrongKey, _ := keygen(t, dir, "wrong", "")
	// An OpenSSH user certificate: the key itself is not authorized, the CA is.
	ca, _ := keygen(t, dir, "ca", "")
	certKey, _ := keygen(t, dir, "certkey", "")
	if out, err := exec.Command("ssh-keygen", "-q", "-s", ca, "-I", "ferry-test", "-n", "deploy", "-V", "+1h", certKey+".pub").CombinedOutput(); err != nil {
		t.Fatalf("sign: %v %s", err, out)
	}
	l := lab.StartT(t, lab.Options{Hosts: 2, AuthorizedKeys: [][]byte{encPub, envPub}, TrustedUserCAKeys: ca + ".pub"})
	inv := inventoryWithoutKey(t, l)
	known := "FERRY_KNOWN_HOSTS=" + l.KnownHosts

	t.Run("key file", func(t *testing.T) {
		isolate(t)
		if r := ferry(t, []string{known}, "ping", "-i", inv, "--private-key", l.KeyFile); r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
	})
	t.Run("default key in ~/.ssh", func(t *testing.T) {
		home := isolate(t)
		os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
		k, _ := os.ReadFile(l.KeyFile)
		os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), k, 0o600)
		if r := ferry(t, []string{known}, "ping", "-i", inv); r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
	})
	t.Run("encrypted key with FERRY_SSH_KEY_PASSPHRASE", func(t *testing.T) {
		isolate(t)
		r := ferry(t, []string{known}, "ping", "-i", inv, "--private-key", encKey)
		if r.code != exitcode.Unreachable || !strings.Contains(r.stdout, "FERRY_SSH_KEY_PASSPHRASE") {
			t.Fatalf("without passphrase: exit %d", r.code)
		}
		if r := ferry(t, []string{known, "FERRY_SSH_KEY_PASSPHRASE=correct horse"}, "ping", "-i", inv, "--private-key", encKey); r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
	})
	t.Run("FERRY_SSH_KEY", func(t *testing.T) {
		isolate(t)
		pem, _ := os.ReadFile(envKey)
		if r := ferry(t, []string{known, "FERRY_SSH_KEY=" + string(pem)}, "ping", "-i", inv); r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
	})
	t.Run("agent", func(t *testing.T) {
		isolate(t)
		sock := filepath.Join(t.TempDir(), "agent.sock")
		agent := exec.Command("ssh-agent", "-D", "-a", sock)
		if err := agent.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
		for i := 0; i < 50; i++ {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		add := exec.Command("ssh-add", l.KeyFile)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add: %v %s", err, out)
		}
		if r := ferry(t, []string{known, "SSH_AUTH_SOCK=" + sock}, "ping", "-i", inv); r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
	})
	t.Run("certificate", func(t *testing.T) {
		isolate(t)
		if r := ferry(t, []string{known}, "ping", "-i", inv, "--private-key", certKey); r.code != 0 {
			t.Fatalf("exit %d", r.code)
		}
		// Without the certificate next to it, the same key is refused.
		os.Rename(certKey+"-cert.pub", certKey+"-cert.pub.off")
		defer os.Rename(certKey+"-cert.pub.off", certKey+"-cert.pub")
		if r := ferry(t, []string{known}, "ping", "-i", inv, "--private-key", certKey); r.code != exitcode.Unreachable {
			t.Fatalf("without the certificate: exit %d", r.code)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		isolate(t)
		r := ferry(t, []string{known}, "ping", "-i", inv, "--private-key", wrongKey)
		if r.code != exitcode.Unreachable {
			t.Fatalf("exit %d", r.code)
		}
		// One line per host, naming the user and the key tried.
		for _, h := range l.Hosts {
			re := regexp.MustCompile(`(?m)^` + h.Name + `\s+FAILED\s+permission denied for (jump host )?deploy@\S+ \(tried ` + regexp.QuoteMeta(wrongKey) + `\)`)
			if !re.MatchString(r.stdout) {
				t.Errorf("%s: no one-line permission denied naming the user and key", h.Name)
			}
		}
	})
}

func TestLabSSHConfig(t *testing.T) {
	t.Parallel()
	l := lab.StartT(t, lab.Options{Hosts: 2, Jumps: 2})
	home := isolate(t)
	// The inventory says nothing but names; ~/.ssh/config supplies the rest,
	// including a two-hop ProxyJump chain (bastion1 → bastion2 → app).
	var inv, cfg strings.Builder
	inv.WriteString("[app]\n")
	for _, h := range l.Hosts {
		fmt.Fprintf(&inv, "%s\n", h.Name)
		fmt.Fprintf(&cfg, "Host %s\n  HostName %s\n  ProxyJump jump2\n", h.Name, h.Addr)
	}
	fmt.Fprintf(&cfg, "Host jump2\n  HostName %s\n  ProxyJump jump1\n", l.Bastions[1].Addr)
	fmt.Fprintf(&cfg, "Host jump1\n  HostName %s\n", l.Bastions[0].Addr)
	fmt.Fprintf(&cfg, "Host *\n  User %s\n  IdentityFile %s\n  UserKnownHostsFile %s\n", l.User, l.KeyFile, l.KnownHosts)
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(cfg.String()), 0o600)
	invPath := filepath.Join(t.TempDir(), "hosts.ini")
	os.WriteFile(invPath, []byte(inv.String()), 0o600)

	r := ferry(t, nil, "exec", "-i", invPath, "--known-hosts-policy", "strict", "--", "hostname")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	for _, h := range l.Hosts {
		if !strings.Contains(r.stdout, h.Name+" | "+h.Name) {
			t.Errorf("no output from %s", h.Name)
		}
	}
}

func TestInvalidInventories(t *testing.T) {
	t.Parallel()
	isolate(t)
	dir := t.TempDir()
	cases := []struct{ name, src, want string }{
		{"bad.yml", "all:\n  hosts:\n    web1:\n      ansible_port: [1, 2]\n", "bad.yml:4:"},
		{"bad.ini", "[web]\nweb1 ansible_port=22\n[web:bogus]\nx=1\n", "bad.ini:3:"},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		os.WriteFile(p, []byte(c.src), 0o600)
		r := ferry(t, nil, "ping", "-i", p)
		if r.code != exitcode.Invalid || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 4 and %q", c.name, r.code, r.stderr, c.want)
		}
		r = ferry(t, nil, "inventory", "-i", p, "--list")
		if r.code != exitcode.Invalid {
			t.Errorf("%s: inventory --list exit %d", c.name, r.code)
		}
	}
	good := filepath.Join(dir, "good.ini")
	os.WriteFile(good, []byte("[web]\nweb1\n"), 0o600)
	r := ferry(t, nil, "ping", "-i", good, "-l", "db")
	if r.code != exitcode.Invalid {
		t.Fatalf("pattern matching nothing: exit %d", r.code)
	}
}

package lab

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshTo runs a command on a lab host with the OpenSSH client, as a user
// would: ssh -F lab.SSHConfig HOST COMMAND.
func sshTo(t *testing.T, l *Lab, host, command string, extra ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"-F", l.SSHConfig, "-o", "BatchMode=yes"}, extra...)
	args = append(args, host, command)
	out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustSSH(t *testing.T, l *Lab, host, command string) string {
	t.Helper()
	out, err := sshTo(t, l, host, command)
	if err != nil {
		t.Fatalf("ssh %s %q: %v: %s", host, command, err, out)
	}
	return out
}

func mustExec(t *testing.T, l *Lab, host, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := l.Exec(ctx, host, command)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func requireSSHClient(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("needs the OpenSSH client (ssh)")
	}
}

func TestLab(t *testing.T) {
	t.Parallel()
	requireSSHClient(t)
	l := StartT(t, Options{Hosts: 3})

	t.Run("hostname through bastion", func(t *testing.T) {
		seen := map[string]bool{}
		for _, h := range l.Hosts {
			got := mustSSH(t, l, h.Name, "hostname")
			if got != h.Name {
				t.Errorf("ssh %s hostname = %q, want %q", h.Name, got, h.Name)
			}
			seen[got] = true
			// By address too (the inventory's view), via the Host 10.213.N.* block.
			if got := mustSSH(t, l, h.Addr, "hostname"); got != h.Name {
				t.Errorf("ssh %s hostname = %q, want %q", h.Addr, got, h.Name)
			}
		}
		if len(seen) != len(l.Hosts) {
			t.Errorf("hostnames %v are not distinct", seen)
		}
		if got := mustSSH(t, l, l.Bastions[0].Name, "hostname"); got != "bastion" {
			t.Errorf("bastion hostname = %q", got)
		}
	})

	t.Run("app hosts unreachable directly", func(t *testing.T) {
		for _, h := range l.Hosts {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(h.Addr, "22"), 5*time.Second)
			if err == nil {
				c.Close()
				t.Errorf("direct connection to %s (%s) succeeded; want it refused", h.Name, h.Addr)
			}
		}
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(l.Bastions[0].Addr, "22"), 5*time.Second); err != nil {
			t.Errorf("bastion not reachable directly: %v", err)
		} else {
			c.Close()
		}
	})

	t.Run("per-host filesystems", func(t *testing.T) {
		mustExec(t, l, "app1", "echo one > /opt/marker && echo etc > /etc/lab-marker && echo tmp > /tmp/marker")
		if got := mustExec(t, l, "app1", "cat /opt/marker /etc/lab-marker /tmp/marker"); got != "one\netc\ntmp" {
			t.Errorf("app1 markers = %q", got)
		}
		for _, other := range []string{"app2", "bastion"} {
			if got := mustExec(t, l, other, "ls /opt/marker /etc/lab-marker /tmp/marker 2>/dev/null || true"); got != "" {
				t.Errorf("%s sees app1's files: %q", other, got)
			}
		}
		for _, p := range []string{"/opt/marker", "/etc/lab-marker"} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("the machine itself sees %s", p)
			}
		}
		dir, err := l.HostDir("app1")
		if err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "opt", "marker")); err != nil || string(b) != "one\n" {
			t.Errorf("HostDir(app1)/opt/marker = %q, %v", b, err)
		}
		// Users exist only inside the hosts.
		if _, err := exec.Command("id", "deploy").Output(); err == nil {
			t.Error("user deploy exists on the machine itself")
		}
		if got := mustExec(t, l, "app2", "findmnt -no FSTYPE /var/lib/containers"); got == "overlay" {
			t.Errorf("/var/lib/containers is %s, want a bind mount", got)
		}
	})

	t.Run("deploy user and sudo", func(t *testing.T) {
		if got := mustSSH(t, l, "app2", "id -un; echo $HOME; echo $SHELL"); got != "deploy\n/home/deploy\n/bin/bash" {
			t.Errorf("deploy identity = %q", got)
		}
		if got := mustSSH(t, l, "app2", "sudo -n id -un"); got != "root" {
			t.Errorf("sudo -n id -un = %q", got)
		}
		if out, err := sshTo(t, l, "bastion", "sudo -n true"); err == nil {
			t.Errorf("deploy can sudo on the bastion: %s", out)
		}
	})

	t.Run("bastion connections", func(t *testing.T) {
		before, err := l.BastionConnections()
		if err != nil {
			t.Fatal(err)
		}
		mustSSH(t, l, "app3", "true")
		after, err := l.BastionConnections()
		if err != nil {
			t.Fatal(err)
		}
		if after != before+1 {
			t.Errorf("bastion connections %d -> %d, want one more", before, after)
		}
	})

	t.Run("authorize key", func(t *testing.T) {
		key := filepath.Join(t.TempDir(), "id_extra")
		pub := writeKey(t, key)
		withKey := func() (string, error) { return sshOnlyKey(t, l, key) }
		if out, err := withKey(); err == nil {
			t.Fatalf("an unknown key was accepted: %s", out)
		}
		if err := l.AuthorizeKey(pub); err != nil {
			t.Fatal(err)
		}
		if out, err := withKey(); err != nil || out != "app1" {
			t.Errorf("ssh with the authorized extra key: %v: %s", err, out)
		}
	})

	t.Run("link down and up", func(t *testing.T) {
		probe := fmt.Sprintf("timeout 2 bash -c '</dev/tcp/%s/22'", l.Hosts[1].Addr)
		if err := l.SetLink("app2", false); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := l.Exec(ctx, "bastion", probe); err == nil {
			t.Error("app2 answers with its link down")
		}
		if err := l.SetLink("app2", true); err != nil {
			t.Fatal(err)
		}
		var err error
		for range 20 {
			if _, err = l.Exec(ctx, "bastion", probe); err == nil {
				break
			}
		}
		if err != nil {
			t.Errorf("app2 still unreachable with its link up: %v", err)
		}
	})

	t.Run("exec errors", func(t *testing.T) {
		if _, err := l.Exec(context.Background(), "nosuch", "true"); err == nil || !strings.Contains(err.Error(), "app1") {
			t.Errorf("Exec on unknown host: %v", err)
		}
		if _, err := l.Exec(context.Background(), "app1", "echo oops >&2; exit 3"); err == nil || !strings.Contains(err.Error(), "oops") {
			t.Errorf("Exec failing command: %v", err)
		}
	})
}

// writeKey writes an unencrypted ed25519 key pair and returns the public key.
func writeKey(t *testing.T, path string) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "extra")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.MarshalAuthorizedKey(signer.PublicKey())
}

// sshOnlyKey runs hostname on app1 as deploy authenticating with key only
// (its -cert.pub is picked up by ssh when present); the jump uses the lab's
// own configuration.
func sshOnlyKey(t *testing.T, l *Lab, key string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ssh", "-F", "/dev/null", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile="+l.KnownHosts, "-o", "StrictHostKeyChecking=yes",
		"-i", key, "-o", "IdentitiesOnly=yes",
		"-o", "ProxyCommand=ssh -F "+l.SSHConfig+" -o BatchMode=yes -W %h:%p "+l.Bastions[len(l.Bastions)-1].Name,
		"deploy@"+l.Hosts[0].Addr, "hostname").CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// writeCert signs the public key with a new CA for principal deploy, writes
// key-cert.pub, and returns the CA's public key.
func writeCert(t *testing.T, key string, pub []byte) []byte {
	t.Helper()
	_, caPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ssh.NewSignerFromKey(caPriv)
	if err != nil {
		t.Fatal(err)
	}
	userKey, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	cert := &ssh.Certificate{
		Key: userKey, CertType: ssh.UserCert, KeyId: "lab-test", ValidPrincipals: []string{"deploy"},
		ValidAfter: uint64(time.Now().Add(-time.Hour).Unix()), ValidBefore: uint64(time.Now().Add(time.Hour).Unix()),
		Permissions: ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key+"-cert.pub", ssh.MarshalAuthorizedKey(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	return ssh.MarshalAuthorizedKey(ca.PublicKey())
}

func TestUserCertificates(t *testing.T) {
	t.Parallel()
	requireSSHClient(t)
	dir := t.TempDir()
	key1, key2 := filepath.Join(dir, "id_one"), filepath.Join(dir, "id_two")
	ca1 := writeCert(t, key1, writeKey(t, key1))
	ca1File := filepath.Join(dir, "ca1.pub")
	if err := os.WriteFile(ca1File, ca1, 0o644); err != nil {
		t.Fatal(err)
	}
	ca2 := writeCert(t, key2, writeKey(t, key2))

	l := StartT(t, Options{Hosts: 1, TrustedUserCAKeys: ca1File})
	if out, err := sshOnlyKey(t, l, key1); err != nil || out != "app1" {
		t.Errorf("certificate from the CA in Options: %v: %s", err, out)
	}
	if out, err := sshOnlyKey(t, l, key2); err == nil {
		t.Fatalf("certificate from an untrusted CA accepted: %s", out)
	}
	if err := l.TrustUserCA(context.Background(), ca2); err != nil {
		t.Fatal(err)
	}
	if out, err := sshOnlyKey(t, l, key2); err != nil || out != "app1" {
		t.Errorf("certificate from the CA added by TrustUserCA: %v: %s", err, out)
	}
}

func TestSystemctlStandIn(t *testing.T) {
	t.Parallel()
	requireSSHClient(t)
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool to build the example app")
	}
	l := StartT(t, Options{Hosts: 2})
	dir, err := l.HostDir("app1")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "opt", "app", "app")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v1", "-o", bin, "../../../playbooks/examples/app")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build example app: %v: %s", err, out)
	}
	unit := `[Unit]
Description=ferry example app

[Service]
ExecStart=/opt/app/app -listen 127.0.0.1:8080
User=deploy
Environment="APP_VERSION=v2"
WorkingDirectory=/opt/app

[Install]
WantedBy=multi-user.target
`
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := l.ExecInput(ctx, "app1", strings.NewReader(unit), "cat > /etc/systemd/system/app.service"); err != nil {
		t.Fatal(err)
	}

	isActive := func(host string) string {
		out, _ := sshTo(t, l, host, "systemctl is-active app")
		return out
	}
	if got := isActive("app1"); got != "inactive" {
		t.Fatalf("before start: is-active = %q", got)
	}
	mustSSH(t, l, "app1", "sudo -n systemctl enable --now app")
	if got := isActive("app1"); got != "active" {
		t.Fatalf("after start: is-active = %q", got)
	}
	body := ""
	for range 50 { // the app listens shortly after it starts
		out, err := sshTo(t, l, "app1", "curl -fsS http://127.0.0.1:8080/status")
		if err == nil {
			body = out
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var st struct {
		Version, Hostname string
		PID               int
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("status %q: %v", body, err)
	}
	if st.Version != "v2" || st.Hostname != "app1" {
		t.Errorf("status = %+v, want version v2 on app1", st)
	}
	show := mustSSH(t, l, "app1", "systemctl show app -p ActiveState,SubState,MainPID,LoadState,UnitFileState")
	for _, want := range []string{"ActiveState=active", "SubState=running", fmt.Sprintf("MainPID=%d", st.PID), "LoadState=loaded", "UnitFileState=enabled"} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %s:\n%s", want, show)
		}
	}
	if owner := mustExec(t, l, "app1", fmt.Sprintf("ps -o user= -p %d", st.PID)); owner != "deploy" {
		t.Errorf("app runs as %q, want deploy", owner)
	}
	// The service lives on app1 only.
	if got := isActive("app2"); got != "inactive" {
		t.Errorf("app2 is-active = %q", got)
	}

	mustSSH(t, l, "app1", "sudo -n systemctl stop app")
	out, err := sshTo(t, l, "app1", "systemctl is-active app")
	var exitErr *exec.ExitError
	if out != "inactive" || err == nil || !asExit(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("after stop: is-active = %q, %v; want inactive, exit 3", out, err)
	}
	if _, err := l.Exec(ctx, "app1", fmt.Sprintf("kill -0 %d", st.PID)); err == nil {
		t.Errorf("app pid %d still runs after stop", st.PID)
	}
}

func asExit(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

func TestTwoJumps(t *testing.T) {
	t.Parallel()
	requireSSHClient(t)
	l := StartT(t, Options{Hosts: 1, Jumps: 2})
	if len(l.Bastions) != 2 {
		t.Fatalf("bastions = %v", l.Bastions)
	}
	if got := mustSSH(t, l, "app1", "hostname"); got != "app1" {
		t.Errorf("app1 hostname = %q", got)
	}
	if got := mustSSH(t, l, "bastion2", "hostname"); got != "bastion2" {
		t.Errorf("bastion2 hostname = %q", got)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(l.Bastions[1].Addr, "22"), 5*time.Second); err == nil {
		c.Close()
		t.Error("bastion2 is reachable directly")
	}
	if n, err := l.Connections("bastion2"); err != nil || n < 2 {
		t.Errorf("bastion2 connections = %d, %v; want at least 2", n, err)
	}
	if !strings.Contains(l.JumpSpec(), ",") {
		t.Errorf("JumpSpec = %q, want two hops", l.JumpSpec())
	}
}

// TestCloseLeavesNothing checks that Close removes namespaces, links,
// routes, processes and the lab directory, and that it is idempotent.
func TestCloseLeavesNothing(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	ctx := context.Background()
	l, err := Start(ctx, Options{Hosts: 2})
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, h := range l.order {
		pids = append(pids, h.pid1, h.cmd.Process.Pid)
	}
	dir, prefix, subnet := l.Dir, l.prefix, l.Subnet
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	assertGone(t, prefix, subnet, dir, pids)
}

func assertGone(t *testing.T, prefix, subnet, dir string, pids []int) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), prefix+"-") {
		t.Errorf("namespaces left: %s", out)
	}
	if _, err := net.InterfaceByName(prefix + "t"); err == nil {
		t.Errorf("link %st left", prefix)
	}
	if routeExists(subnet) {
		t.Errorf("route to %s left", subnet)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if dir != "" && strings.Contains(string(mounts), dir) {
		t.Errorf("mounts under %s left", dir)
	}
	if strings.Contains(string(mounts), "/run/netns/"+prefix+"-") {
		t.Errorf("netns mounts left for %s", prefix)
	}
	for _, pid := range pids {
		if pid == 0 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if strings.Contains(string(st), prefix) || strings.Contains(string(st), "init.sh") {
				t.Errorf("process %d left: %q", pid, st)
			}
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("lab dir %s left", dir)
	}
}

// TestStaleLabReaped fakes a lab whose process died (a state file whose lock
// nobody holds, and its namespace and route) and checks Start removes it.
func TestStaleLabReaped(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	// Take a slot, as a lab would, then drop the lock as a dying process does.
	a, err := allocNet()
	if err != nil {
		t.Fatal(err)
	}
	st := labState{PID: 1 << 22, Prefix: "flstale", Namespaces: []string{"flstale-app1"}, Routes: []string{"unreachable " + a.appSubnet()}}
	if err := a.saveState(st); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), "ip", "netns", "add", "flstale-app1"); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), "ip", "route", "add", "unreachable", a.appSubnet()); err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("ip", "netns", "exec", "flstale-app1", "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { _ = sleeper.Wait(); close(waited) }()
	t.Cleanup(func() {
		_ = sleeper.Process.Kill()
		_ = cleanup(st)
	})
	// Start returns before ip has entered the namespace: a reaper that ran
	// now, on a loaded machine, would find the namespace empty, delete it,
	// and miss the process that enters it a moment later.
	for i := 0; ; i++ {
		out, _ := exec.Command("ip", "netns", "pids", "flstale-app1").Output()
		if slices.Contains(strings.Fields(string(out)), fmt.Sprint(sleeper.Process.Pid)) {
			break
		}
		if i == 500 {
			t.Fatal("the stale lab's process did not enter its namespace within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = a.lock.Close() // the owner "dies"

	l := StartT(t, Options{Hosts: 1})
	_ = l
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		ns, _ := exec.Command("ip", "netns", "identify", fmt.Sprint(sleeper.Process.Pid)).CombinedOutput()
		t.Errorf("the stale lab's process %d still runs (netns %q)", sleeper.Process.Pid, ns)
	}
	assertGone(t, "flstale", a.appSubnet(), "", nil)
	if _, err := os.Stat(a.statePath()); err == nil && l.net.n != a.n {
		t.Error("stale state file left")
	}
}

func TestParallelLabs(t *testing.T) {
	requireSSHClient(t)
	var labs [2]*Lab
	t.Run("group", func(t *testing.T) {
		for i := range labs {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				labs[i] = StartT(t, Options{Hosts: 1})
				if got := mustSSH(t, labs[i], "app1", "hostname"); got != "app1" {
					t.Errorf("hostname = %q", got)
				}
				if labs[i].Subnet == "" {
					t.Error("no subnet")
				}
			})
		}
	})
	if labs[0] != nil && labs[1] != nil && labs[0].Subnet == labs[1].Subnet {
		t.Errorf("two labs share %s", labs[0].Subnet)
	}
}

func TestOptionsValidation(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	for _, o := range []Options{{Hosts: -1}, {Hosts: 1001}, {Jumps: 3}, {Prefix: "Bad_Prefix"}, {Prefix: "waytoolongprefix"}} {
		if l, err := Start(context.Background(), o); err == nil {
			l.Close()
			t.Errorf("Start(%+v) succeeded", o)
		}
	}
}

func TestAnsibleSystemd(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("slow: runs ansible-playbook")
	}
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Skip("needs ansible-playbook")
	}
	requireSSHClient(t)
	l := StartT(t, Options{Hosts: 2})
	for _, h := range l.Hosts {
		dir, _ := l.HostDir(h.Name)
		bin := filepath.Join(dir, "opt", "app", "app")
		build := exec.Command("go", "build", "-o", bin, "../../../playbooks/examples/app")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build example app: %v: %s", err, out)
		}
	}
	play := filepath.Join(t.TempDir(), "play.yml")
	if err := os.WriteFile(play, []byte(`- hosts: app
  become: true
  gather_facts: false
  tasks:
    - copy:
        dest: /etc/systemd/system/app.service
        content: |
          [Service]
          ExecStart=/opt/app/app
          Environment=APP_VERSION=ansible
          [Install]
          WantedBy=multi-user.target
    - systemd: {name: app, state: started, enabled: true, daemon_reload: true}
    - command: curl -fsS http://127.0.0.1:8080/status
      register: st
      retries: 20
      delay: 1
      until: st.rc == 0
    - assert: {that: ["(st.stdout | from_json).version == 'ansible'", "(st.stdout | from_json).hostname == inventory_hostname"]}
    - systemd: {name: app, state: stopped}
      register: stopped
    - assert: {that: [stopped.changed, "stopped.status.ActiveState == 'active'"]}
    - command: systemctl is-active app
      register: after
      failed_when: after.stdout != 'inactive'
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ansible-playbook", "-i", l.Inventory, play)
	cmd.Env = append(os.Environ(), "ANSIBLE_HOST_KEY_CHECKING=True", "ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", err, out)
	}
}

// BenchmarkStart measures bringing a five-host lab up and down.
func BenchmarkStart(b *testing.B) {
	if err := Available(); err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		l, err := Start(context.Background(), Options{Hosts: 5})
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

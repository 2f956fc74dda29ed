package ssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// StrictHostKeyChecking no in ssh_config turns checking off, like the off
// policy, and then it says so (once per host, on every run).
func TestSSHConfigStrictNoWarnsEveryRun(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "config")
	os.WriteFile(conf, []byte("Host app*\n  StrictHostKeyChecking no\n"), 0o600)
	sc, err := loadSSHConfig([]string{conf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := sc.resolve("app1", "10.1.2.3", 22, "deploy", "")
	for run := 0; run < 2; run++ {
		var warned []string
		cfg := &Config{KnownHostsFiles: []string{filepath.Join(dir, "kh")}, Policy: AcceptNew, Warn: func(m string) { warned = append(warned, m) }}
		hk := newHostKeys(cfg)
		for i := 0; i < 3; i++ { // several connections to the host in one run
			if _, err := hk.callback("app1", e); err != nil {
				t.Fatal(err)
			}
		}
		if len(warned) != 1 || !strings.Contains(warned[0], "OFF") || !strings.Contains(warned[0], "StrictHostKeyChecking no") {
			t.Fatalf("run %d: warnings %q, want one saying checking is off because of StrictHostKeyChecking no", run, warned)
		}
	}
	// A flag decides alone: no ssh_config warning then.
	var warned []string
	cfg := &Config{KnownHostsFiles: []string{filepath.Join(dir, "kh")}, Policy: Strict, PolicySet: true, Warn: func(m string) { warned = append(warned, m) }}
	if _, err := newHostKeys(cfg).callback("app1", e); err != nil || len(warned) != 0 {
		t.Fatalf("flag policy: err %v, warnings %q", err, warned)
	}
}

// Keys pinned in the global known_hosts (GlobalKnownHostsFile, by default
// /etc/ssh/ssh_known_hosts) are honoured, @cert-authority included, and
// accept-new never records a host that is pinned there with another key.
func TestGlobalKnownHostsHonoured(t *testing.T) {
	dir := t.TempDir()
	global := filepath.Join(dir, "ssh_known_hosts")
	user := filepath.Join(dir, "known_hosts")
	conf := filepath.Join(dir, "config")
	os.WriteFile(conf, []byte("Host *\n  GlobalKnownHostsFile "+global+"\n"), 0o600)
	sc, err := loadSSHConfig([]string{conf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pinned, other := newKey(t), newKey(t)
	caPub, caPriv := newSigner(t)
	os.WriteFile(global, []byte("10.1.2.3 "+string(ssh.MarshalAuthorizedKey(pinned))+
		"@cert-authority 10.9.* "+string(ssh.MarshalAuthorizedKey(caPub))), 0o644)
	addr := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 22} }
	cfg := &Config{KnownHostsFiles: []string{user}, Policy: AcceptNew}

	e := sc.resolve("app1", "10.1.2.3", 22, "deploy", "")
	cb, err := newHostKeys(cfg).callback("app1", e)
	if err != nil {
		t.Fatal(err)
	}
	if err := cb("10.1.2.3:22", addr("10.1.2.3"), pinned); err != nil {
		t.Fatalf("key pinned in the global file refused: %v", err)
	}
	err = cb("10.1.2.3:22", addr("10.1.2.3"), other)
	var se *Error
	if !errors.As(err, &se) || se.Kind != KindHostKeyChanged || !strings.Contains(err.Error(), global) {
		t.Fatalf("another key than the globally pinned one: %v", err)
	}
	if b, _ := os.ReadFile(user); len(b) != 0 {
		t.Fatalf("accept-new recorded a host pinned globally: %q", b)
	}

	// A host certificate signed by the global CA is accepted without recording.
	hostKey := newKey(t)
	cert := &ssh.Certificate{Key: hostKey, CertType: ssh.HostCert, ValidPrincipals: []string{"10.9.0.7"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, caPriv); err != nil {
		t.Fatal(err)
	}
	e2 := sc.resolve("app2", "10.9.0.7", 22, "deploy", "")
	cb, _ = newHostKeys(&Config{KnownHostsFiles: []string{user}, Policy: Strict}).callback("app2", e2)
	if err := cb("10.9.0.7:22", addr("10.9.0.7"), cert); err != nil {
		t.Fatalf("certificate from the global CA refused: %v", err)
	}
	if b, _ := os.ReadFile(user); len(b) != 0 {
		t.Fatalf("user known_hosts written: %q", b)
	}

	// GlobalKnownHostsFile none turns it off; the default is OpenSSH's.
	if e := (&sshConfig{}).resolve("x", "10.0.0.1", 22, "u", ""); len(e.globalHosts) == 0 || e.globalHosts[0] != "/etc/ssh/ssh_known_hosts" {
		t.Fatalf("default global files = %v", e.globalHosts)
	}
}

func newSigner(t *testing.T) (ssh.PublicKey, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s.PublicKey(), s
}

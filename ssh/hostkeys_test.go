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
	"golang.org/x/crypto/ssh/knownhosts"
)

func newKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHostKeyPolicies(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "known_hosts")
	e := endpoint{addr: "10.1.2.3", port: 22, user: "deploy"}
	addr := &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 22}
	key1, key2 := newKey(t), newKey(t)

	// accept-new records the unknown key, then accepts it again from a fresh run.
	var warned []string
	cfg := &Config{KnownHostsFiles: []string{file}, Policy: AcceptNew, Warn: func(m string) { warned = append(warned, m) }}
	cb, err := newHostKeys(cfg).callback("app1", e)
	if err != nil {
		t.Fatal(err)
	}
	if err := cb("10.1.2.3:22", addr, key1); err != nil {
		t.Fatalf("accept-new refused an unknown key: %v", err)
	}
	b, _ := os.ReadFile(file)
	if !strings.HasPrefix(string(b), "10.1.2.3 ssh-ed25519 ") || len(warned) != 1 {
		t.Fatalf("known_hosts = %q, warnings %v", b, warned)
	}
	cb, _ = newHostKeys(cfg).callback("app1", e)
	if err := cb("10.1.2.3:22", addr, key1); err != nil {
		t.Fatalf("recorded key refused: %v", err)
	}
	// A changed key is refused, naming file and line.
	err = cb("10.1.2.3:22", addr, key2)
	var se *Error
	if !errors.As(err, &se) || se.Kind != KindHostKeyChanged || se.Retryable() {
		t.Fatalf("changed key: %v", err)
	}
	if !strings.Contains(se.Error(), file+":1") || !strings.Contains(se.Error(), "ssh-keygen -R 10.1.2.3") {
		t.Fatalf("message does not say what to fix: %v", se)
	}
	// strict refuses unknown hosts.
	strict := &Config{KnownHostsFiles: []string{file}, Policy: Strict}
	cb, _ = newHostKeys(strict).callback("app2", endpoint{addr: "10.1.2.4", port: 22})
	err = cb("10.1.2.4:22", &net.TCPAddr{IP: net.ParseIP("10.1.2.4"), Port: 22}, key1)
	if !errors.As(err, &se) || se.Kind != KindHostKeyUnknown {
		t.Fatalf("strict accepted an unknown key: %v", err)
	}
	// Known key types steer the negotiated host key algorithm.
	if algos := newHostKeys(cfg).algorithms(e); len(algos) != 1 || algos[0] != ssh.KeyAlgoED25519 {
		t.Fatalf("algorithms = %v", algos)
	}
	// Non-standard ports are recorded as [host]:port.
	e2 := endpoint{addr: "10.1.2.5", port: 2222}
	cb, _ = newHostKeys(cfg).callback("app3", e2)
	if err := cb("10.1.2.5:2222", &net.TCPAddr{IP: net.ParseIP("10.1.2.5"), Port: 2222}, key2); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(file)
	if !strings.Contains(string(b), "[10.1.2.5]:2222 ssh-ed25519") {
		t.Fatalf("known_hosts = %q", b)
	}
}

func TestHashedKnownHosts(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "known_hosts")
	key := newKey(t)
	line := knownhosts.HashHostname("10.1.2.3") + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	os.WriteFile(file, []byte(line+"\n"), 0o600)
	cb, _ := newHostKeys(&Config{KnownHostsFiles: []string{file}, Policy: Strict}).callback("h", endpoint{addr: "10.1.2.3", port: 22})
	if err := cb("10.1.2.3:22", &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 22}, key); err != nil {
		t.Fatalf("hashed entry not matched: %v", err)
	}
}

package ssh

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseJumps(t *testing.T) {
	hops, err := ParseJumps("ops@b1.example.com:2222, b2,[fe80::1]:22")
	if err != nil {
		t.Fatal(err)
	}
	want := []Hop{{User: "ops", Host: "b1.example.com", Port: 2222}, {Host: "b2"}, {Host: "fe80::1", Port: 22}}
	if len(hops) != len(want) {
		t.Fatalf("got %v", hops)
	}
	for i := range want {
		if hops[i] != want[i] {
			t.Errorf("hop %d = %+v, want %+v", i, hops[i], want[i])
		}
	}
	if h, _ := ParseJumps("none"); h != nil {
		t.Errorf("none = %v", h)
	}
	for _, bad := range []string{"a,,b", "host:0", "host:x", "[::1"} {
		if _, err := ParseJumps(bad); err == nil {
			t.Errorf("ParseJumps(%q) accepted", bad)
		}
	}
}

func TestWrapBecomePasswordOnStdinOnly(t *testing.T) {
	line, stdin := Wrap("id -u", RunOptions{Become: true, BecomePass: "s3cret", Env: map[string]string{"A": "x y"}})
	if strings.Contains(line, "s3cret") {
		t.Fatalf("password on the command line: %s", line)
	}
	if !strings.HasPrefix(line, "sudo -S -p '' -H -u root -- /bin/sh -c ") || strings.Contains(line, "x y") {
		t.Fatalf("unexpected line %s", line)
	}
	b := make([]byte, 64)
	n, _ := stdin.Read(b)
	if string(b[:n]) != "s3cret\n" {
		t.Fatalf("stdin = %q", b[:n])
	}
	line, stdin = Wrap("true", RunOptions{Become: true, BecomeUser: "app"})
	if line != "sudo -n -H -u app -- /bin/sh -c true" || stdin != nil {
		t.Fatalf("line %q stdin %v", line, stdin)
	}
}

func TestSSHConfigResolution(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte(`
Host app*
  User deploy
  ProxyJump bastion2
  IdentityFile ~/.ssh/deploy_key
Host bastion2
  HostName 10.9.0.2
  ProxyJump ops@bastion1:2200
Host bastion1
  HostName 192.0.2.1
  ServerAliveInterval 5
`), 0o600)
	// Home and user come from the Config, not the process (tests run in parallel).
	local := &Config{Home: dir, User: "me"}
	sc, err := loadSSHConfig([]string{cfg}, local)
	if err != nil {
		t.Fatal(err)
	}
	target := sc.resolve("app1", "10.9.1.5", 0, "", "")
	if target.user != "deploy" || target.port != 22 || target.addr != "10.9.1.5" {
		t.Fatalf("target %+v", target)
	}
	if len(target.identities) != 1 || target.identities[0] != filepath.Join(dir, ".ssh/deploy_key") {
		t.Fatalf("identities %v", target.identities)
	}
	chain, err := sc.chain(Target{Name: "app1"}, target)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range chain {
		got = append(got, e.String())
	}
	if strings.Join(got, ">") != "ops@192.0.2.1:2200>me@10.9.0.2:22" {
		t.Fatalf("chain %v", got)
	}
	if chain[0].keepAlive.Seconds() != 5 {
		t.Fatalf("keepalive %v", chain[0].keepAlive)
	}
	// The inventory's own settings win over ssh config.
	explicit := sc.resolve("app1", "10.9.1.5", 2222, "ci", "/keys/ci")
	if explicit.user != "ci" || explicit.port != 2222 || explicit.identities[0] != "/keys/ci" {
		t.Fatalf("explicit %+v", explicit)
	}
	// A loop in ProxyJump is an error, not a hang.
	os.WriteFile(cfg, []byte("Host a\n ProxyJump b\nHost b\n ProxyJump a\n"), 0o600)
	sc, _ = loadSSHConfig([]string{cfg}, local)
	if _, err := sc.chain(Target{Name: "a"}, sc.resolve("a", "", 0, "", "")); err == nil {
		t.Fatal("ProxyJump loop accepted")
	}
}

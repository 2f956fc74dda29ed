package lab

import (
	"os"
	"strings"
	"testing"

	"github.com/kevinburke/ssh_config"
	"gopkg.in/yaml.v3"

	"github.com/ferrydeploy/ferry/internal/shell"
)

// planned returns a lab that has been planned but not started (no root
// needed) with its client files written.
func planned(t *testing.T, hosts, jumps int) *Lab {
	t.Helper()
	l := &Lab{User: labUser, Dir: t.TempDir(), prefix: "fltest", hosts: map[string]*hostProc{}, net: &netAlloc{n: 7}}
	l.KeyFile = l.Dir + "/id_ed25519"
	l.plan(Options{Hosts: hosts, Jumps: jumps})
	for _, h := range l.order {
		h.HostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHfQfOaS5LLHqboJ49sHVNJQONS4ukNrfKEAeENQe5jv"
	}
	if err := l.writeClientFiles(); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPlan(t *testing.T) {
	l := planned(t, 3, 2)
	if got := l.names(); strings.Join(got, ",") != "bastion1,bastion2,app1,app2,app3" {
		t.Fatalf("hosts = %v", got)
	}
	if l.Bastions[0].Addr != "10.212.7.2" || l.Bastions[1].Addr != "10.212.7.6" || l.Hosts[2].Addr != "10.213.7.12" {
		t.Errorf("addresses: %+v %+v", l.Bastions, l.Hosts)
	}
	for _, h := range l.order {
		if len(h.Namespace) > 64 || !strings.HasPrefix(h.Namespace, "fltest-") {
			t.Errorf("namespace %q", h.Namespace)
		}
	}
	if len(l.rootLnk) > 15 {
		t.Errorf("link name %q is longer than 15 characters", l.rootLnk)
	}
	b1, b2 := l.netBatch(l.hosts["bastion1"]), l.netBatch(l.hosts["bastion2"])
	if !strings.Contains(b1, "dev j0") || strings.Contains(b1, "br0") {
		t.Errorf("bastion1 network:\n%s", b1)
	}
	if !strings.Contains(b2, "link set a3 master br0") || !strings.Contains(b2, "10.213.7.1/24 dev br0") {
		t.Errorf("bastion2 network:\n%s", b2)
	}
	if a := l.netBatch(l.hosts["app2"]); !strings.Contains(a, "addr add 10.213.7.11/24 dev eth0") {
		t.Errorf("app2 network:\n%s", a)
	}
	if got := l.JumpSpec(); got != "deploy@10.212.7.2,deploy@10.212.7.6" {
		t.Errorf("JumpSpec = %q", got)
	}
}

func TestSSHConfigFile(t *testing.T) {
	l := planned(t, 2, 2)
	f, err := os.Open(l.SSHConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		t.Fatalf("ssh_config does not parse: %v", err)
	}
	get := func(host, key string) string {
		v, err := cfg.Get(host, key)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct{ host, key, want string }{
		{"app2", "HostName", "10.213.7.11"},
		{"app2", "ProxyJump", "bastion2"},
		{"10.213.7.11", "ProxyJump", "bastion2"},
		{"bastion2", "ProxyJump", "bastion1"},
		{"bastion1", "ProxyJump", ""},
		{"app1", "User", "deploy"},
		{"app1", "IdentityFile", l.KeyFile},
		{"bastion1", "UserKnownHostsFile", l.KnownHosts},
		{"app1", "StrictHostKeyChecking", "yes"},
	} {
		if got := get(c.host, c.key); got != c.want {
			t.Errorf("%s %s = %q, want %q", c.host, c.key, got, c.want)
		}
	}
	kh, err := os.ReadFile(l.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(kh), "app2,10.213.7.11 ssh-ed25519 ") || strings.Count(string(kh), "\n") != 4 {
		t.Errorf("known_hosts:\n%s", kh)
	}
}

func TestInventoryFile(t *testing.T) {
	l := planned(t, 2, 1)
	b, err := os.ReadFile(l.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	var inv struct {
		All struct {
			Children map[string]struct {
				Hosts map[string]map[string]any `yaml:"hosts"`
				Vars  map[string]any            `yaml:"vars"`
			} `yaml:"children"`
		} `yaml:"all"`
	}
	if err := yaml.Unmarshal(b, &inv); err != nil {
		t.Fatalf("inventory does not parse: %v\n%s", err, b)
	}
	app, ok := inv.All.Children["app"]
	if !ok || len(app.Hosts) != 2 {
		t.Fatalf("group app: %+v", inv)
	}
	if got := app.Hosts["app2"]["ansible_host"]; got != "10.213.7.11" {
		t.Errorf("app2 ansible_host = %v", got)
	}
	if got := app.Vars["ansible_ssh_common_args"]; !strings.Contains(got.(string), "-J deploy@10.212.7.2") {
		t.Errorf("ansible_ssh_common_args = %v", got)
	}
	if got := app.Vars["ansible_ssh_private_key_file"]; got != l.KeyFile {
		t.Errorf("ansible_ssh_private_key_file = %v", got)
	}
	if got := app.Vars["ansible_user"]; got != "deploy" {
		t.Errorf("ansible_user = %v", got)
	}
}

func TestQuoting(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/lab/ssh_config": "/tmp/lab/ssh_config",
		"/tmp/my lab/x":       "'/tmp/my lab/x'",
		"it's":                `'it'\''s'`,
	} {
		if got := shell.Quote(in); got != want {
			t.Errorf("shell.Quote(%q) = %q, want %q", in, got, want)
		}
	}
	if got := configQuote("/a b/c"); got != `"/a b/c"` {
		t.Errorf("configQuote = %q", got)
	}
	for _, p := range []string{"fl1", "abc0123456"} {
		if !validPrefix(p) {
			t.Errorf("validPrefix(%q) = false", p)
		}
	}
	for _, p := range []string{"", "ABC", "a-b", "abcdefghijk"} {
		if validPrefix(p) {
			t.Errorf("validPrefix(%q) = true", p)
		}
	}
}

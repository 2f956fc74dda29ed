package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
)

// ferryKeys are the variables ferry adds to every host on top of Ansible's.
var ferryKeys = []string{"inventory_hostname", "address", "user", "port", "groups", "group_names", "identity_file", "jumps"}

func loadAnsible(t *testing.T) *Inventory {
	t.Helper()
	inv, err := Load(context.Background(), []string{"testdata/ansible"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func jsonEqual(t *testing.T, name string, got []byte, wantFile string) {
	t.Helper()
	want, err := os.ReadFile(wantFile)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s differs from %s:\n%s", name, wantFile, got)
	}
}

// The golden files were produced by ansible-inventory (ansible-core 2.14)
// from testdata/ansible, a directory holding an INI and a YAML inventory,
// group_vars/ (a file and a directory) and host_vars/.
func TestAnsibleInventoryMatchesAnsible(t *testing.T) {
	inv := loadAnsible(t)
	for _, c := range []struct{ group, file string }{
		{"", "testdata/ansible.graph.golden.txt"},
		{"webservers", "testdata/ansible.graph-webservers.golden.txt"},
	} {
		want, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if got := inv.Graph(c.group); got != string(want) {
			t.Errorf("Graph(%q):\n%s\nwant:\n%s", c.group, got, want)
		}
	}
	exp, err := inv.ExportJSON()
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, "ExportJSON", exp, "testdata/ansible.export.golden.json")

	list, err := inv.ListJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(list), "{\n    \"_meta\": {\n        \"hostvars\": {") {
		t.Errorf("ListJSON is not indented like ansible-inventory:\n%.80s", list)
	}
	var m map[string]any
	if err := json.Unmarshal(list, &m); err != nil {
		t.Fatal(err)
	}
	for _, hv := range m["_meta"].(map[string]any)["hostvars"].(map[string]any) {
		for _, k := range ferryKeys {
			delete(hv.(map[string]any), k)
		}
	}
	stripped, _ := json.Marshal(m)
	jsonEqual(t, "ListJSON without ferry's keys", stripped, "testdata/ansible.list.golden.json")
	if len(inv.Warnings) != 0 {
		t.Errorf("warnings: %q", inv.Warnings)
	}
}

func TestAnsibleInventoryHosts(t *testing.T) {
	inv := loadAnsible(t)
	type want struct {
		addr, user string
		port       int
		jumps      string
		groups     string
	}
	for name, w := range map[string]want{
		"bastion.example.com":    {"bastion.example.com", "ops", 0, "", "ungrouped"},
		"mon1.example.com":       {"10.0.9.10", "", 0, "ops@bastion.example.com jump@inner-bastion.internal:2022", "monitoring"},
		"web-canary.example.com": {"10.0.1.99", "deploy", 0, "ops@bastion.example.com", "eu prod webservers"},
		"db-legacy.example.com":  {"db-legacy.example.com", "postgres", 2200, "ops@bastion.example.com", "dbservers eu prod"},
		"db-b.example.com":       {"db-b.example.com", "deploy", 5522, "ops@bastion.example.com", "dbservers eu prod"},
		"lb1.example.com":        {"lb1.example.com", "deploy", 0, "ops@bastion.example.com:2222", "loadbalancers prod us"},
	} {
		h, ok := inv.Host(name)
		if !ok {
			t.Errorf("host %s missing", name)
			continue
		}
		var js []string
		for _, j := range h.Jumps() {
			js = append(js, j.String())
		}
		got := want{h.Address(), h.User(), h.Port(), strings.Join(js, " "), strings.Join(h.Groups, " ")}
		if got != w {
			t.Errorf("%s: got %+v, want %+v", name, got, w)
		}
		if h.Vars["inventory_hostname"] != name || h.Vars["address"] != w.addr || h.Vars["user"] != w.user {
			t.Errorf("%s: vars %v", name, h.Vars)
		}
		if !reflect.DeepEqual(h.Vars["group_names"], h.Groups) || !reflect.DeepEqual(h.Vars["groups"], h.Groups) {
			t.Errorf("%s: groups vars %v %v", name, h.Vars["groups"], h.Vars["group_names"])
		}
	}
	h, _ := inv.Host("web02.example.com")
	// host_vars/ (7070) > group_vars/webservers/ (9090) > [webservers:vars] (8080)
	if h.Vars["http_port"] != 7070 || h.Vars["weight"] != 10 || h.Vars["worker_processes"] != 4 || h.Vars["max_clients"] != 200 {
		t.Errorf("web02 vars: %v", h.Vars)
	}
	// group_vars/all beats inventory group vars, even prod's (Ansible's rule).
	if h.Vars["env"] != "from-group-vars-all" {
		t.Errorf("env = %v", h.Vars["env"])
	}
	if p := h.Vars["port"]; p != 22 {
		t.Errorf("default port var = %v", p)
	}
	if v, err := inv.HostVars("web02.example.com"); err != nil || v["http_port"] != 7070 {
		t.Errorf("HostVars: %v %v", v, err)
	}
	if _, err := inv.HostVars("web2.example.com"); err == nil || !diag.IsInvalidInput(err) || !strings.Contains(err.Error(), `did you mean "web02.example.com"`) {
		t.Errorf("HostVars unknown: %v", err)
	}
}

func TestPatternsMatchAnsible(t *testing.T) {
	inv := loadAnsible(t)
	data, err := os.ReadFile("testdata/ansible.patterns.txt")
	if err != nil {
		t.Fatal(err)
	}
	// Blocks of "== PATTERN", "  hosts (N):", then one host per line.
	for _, block := range strings.Split(string(data), "== ")[1:] {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		pattern := lines[0]
		var want []string
		for _, l := range lines[2:] {
			want = append(want, strings.TrimSpace(l))
		}
		hosts, err := inv.Match(pattern)
		if err != nil {
			t.Errorf("Match(%q): %v", pattern, err)
			continue
		}
		var got []string
		for _, h := range hosts {
			got = append(got, h.Name)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Match(%q) = %v, want %v", pattern, got, want)
		}
	}
}

func TestPatternErrors(t *testing.T) {
	inv := loadAnsible(t)
	for _, c := range []struct{ pattern, want string }{
		{"webservres", `did you mean "webservers"?`},
		{"webservers:!canaries", `"canaries" matches no group or host`},
		{"dbservers:&loadbalancers", `selects no host`},
		{"nothing*", `matches no group or host`},
		{"~(", "bad regular expression"},
		{"webservers[7]", "out of range"},
		{"", "empty host pattern"},
		{"web01.example.co", `did you mean "web01.example.com"?`},
	} {
		_, err := inv.Match(c.pattern)
		if err == nil {
			t.Errorf("Match(%q) succeeded", c.pattern)
			continue
		}
		if !diag.IsInvalidInput(err) {
			t.Errorf("Match(%q): %v is not invalid input", c.pattern, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("Match(%q) = %q, want it to contain %q", c.pattern, err, c.want)
		}
	}
	_, err := inv.Match("webservres")
	var nm *NoMatchError
	if !errors.As(err, &nm) || nm.Term != "webservres" || !reflect.DeepEqual(nm.Closest, []string{"webservers"}) {
		t.Errorf("NoMatchError: %#v", err)
	}
	if !slices.Contains(nm.Groups, "prod") || slices.Contains(nm.Groups, "all") {
		t.Errorf("known groups: %v", nm.Groups)
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadSources(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"inv/a.yml":         "web:\n  hosts:\n    w1:\n      color: blue\n",
		"inv/b":             "[web]\nw2\n[web:vars]\ncolor=red\n",
		"inv/.hidden":       "this is not parsed [[[",
		"inv/notes.txt":     "nor this [[[",
		"inv/old.retry":     "w9\n",
		"inv/sub/c.yaml":    "all:\n  hosts:\n    w3:\n",
		"inv/host_vars/w1":  "color: green\n",
		"other.ini":         "[db]\nd1 ansible_host=10.0.0.5\n",
		"group_vars/db.yml": "role: database\n",
	})
	inv, err := Load(context.Background(), []string{filepath.Join(dir, "inv"), filepath.Join(dir, "other.ini"), "x1,x2:2222,"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range inv.Hosts {
		names = append(names, h.Name)
	}
	if want := "w3 x1 x2 w1 w2 d1"; strings.Join(names, " ") != want {
		t.Errorf("hosts %q, want %q", strings.Join(names, " "), want)
	}
	get := func(n string) *Host {
		h, ok := inv.Host(n)
		if !ok {
			t.Fatalf("no host %s", n)
		}
		return h
	}
	if c := get("w1").Vars["color"]; c != "green" {
		t.Errorf("w1 color = %v (host_vars must win)", c)
	}
	if c := get("w2").Vars["color"]; c != "red" {
		t.Errorf("w2 color = %v (later source's group vars win)", c)
	}
	if r := get("d1").Vars["role"]; r != "database" || get("d1").Address() != "10.0.0.5" {
		t.Errorf("d1 = %v", get("d1").Vars)
	}
	if get("x2").Port() != 2222 || get("x1").Port() != 0 {
		t.Errorf("host list ports %d %d", get("x2").Port(), get("x1").Port())
	}
	if len(inv.Sources) != 5 {
		t.Errorf("sources %v", inv.Sources)
	}

	_, err = Load(context.Background(), []string{filepath.Join(dir, "missing")}, Options{})
	if !diag.IsInvalidInput(err) || !strings.Contains(err.Error(), "inventory source not found") {
		t.Errorf("missing source: %v", err)
	}
}

func TestGroupVarsWarnings(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"hosts":                    "[webservers]\nw1\n",
		"group_vars/webserver.yml": "a: 1\n",
		"group_vars/all/vault":     "$ANSIBLE_VAULT;1.1;AES256\n3132\n",
	})
	inv, err := Load(context.Background(), []string{filepath.Join(dir, "hosts")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(inv.Warnings, "\n")
	if !strings.Contains(all, `webserver.yml matches no group: did you mean "webservers"?`) || !strings.Contains(all, "vault-encrypted") {
		t.Errorf("warnings: %s", all)
	}
}

func TestNewAddHostMerge(t *testing.T) {
	a := New()
	a.AddHost(&Host{Name: "i-1", Vars: map[string]any{"ansible_host": "10.1.0.1", "instance_id": "i-1"}}, "tag_Service_api", "aws_ec2")
	a.AddHost(&Host{Name: "i-2", Vars: map[string]any{"ansible_host": "10.1.0.2", "user": "ec2-user"}}, "aws_ec2")
	if h, _ := a.Host("i-1"); h.Address() != "10.1.0.1" || h.Vars["address"] != "10.1.0.1" {
		t.Errorf("i-1: %v", h.Vars)
	}
	b := New()
	b.SetGroupVars("aws_ec2", map[string]any{"ansible_user": "ubuntu"})
	if err := b.AddChild("prod", "aws_ec2"); err != nil {
		t.Fatal(err)
	}
	if err := b.AddChild("aws_ec2", "prod"); err == nil {
		t.Error("loop accepted")
	}
	b.AddHost(&Host{Name: "i-1", Vars: map[string]any{"extra": 1}})
	a.Merge(b)
	h, _ := a.Host("i-1")
	if h.User() != "ubuntu" || h.Vars["extra"] != 1 || h.Vars["instance_id"] != "i-1" {
		t.Errorf("merged i-1: %v", h.Vars)
	}
	if !reflect.DeepEqual(h.Groups, []string{"aws_ec2", "prod", "tag_Service_api"}) {
		t.Errorf("groups %v", h.Groups)
	}
	if h2, _ := a.Host("i-2"); h2.User() != "ec2-user" {
		t.Errorf("host user must beat group ansible_user: %q", h2.User())
	}
	hosts, err := a.Match("prod:&tag_Service_*")
	if err != nil || len(hosts) != 1 || hosts[0].Name != "i-1" {
		t.Errorf("Match: %v %v", hosts, err)
	}
}

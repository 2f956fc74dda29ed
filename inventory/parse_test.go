package inventory

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
)

// load parses one inventory file named name with content src.
func load(t *testing.T, name, src string) (*Inventory, error) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(context.Background(), []string{p}, Options{})
}

func hostNames(inv *Inventory) string {
	var n []string
	for _, h := range inv.Hosts {
		n = append(n, h.Name)
	}
	return strings.Join(n, " ")
}

func TestINI(t *testing.T) {
	for _, c := range []struct {
		name, src string
		hosts     string
		host      string         // host whose vars are checked
		vars      map[string]any // expected subset of its vars
		groups    []string
	}{
		{
			name:  "ranges",
			src:   "[web]\nweb[01:03].example.com\nw[8:10]\ndb-[a:c]\nn[0:6:3]\n",
			hosts: "web01.example.com web02.example.com web03.example.com w8 w9 w10 db-a db-b db-c n0 n3 n6",
		},
		{
			name:  "two ranges",
			src:   "r[1:2]-[a:b]\n",
			hosts: "r1-a r1-b r2-a r2-b", host: "r1-a", groups: []string{"ungrouped"},
		},
		{
			name:  "inline vars as Python literals (checked against ansible-inventory)",
			src:   `h1 a=1 b="two words" c=True d=[1,'x'] e={'k':2} f=0755 g=1.5 h='"q"' i=None j=yes k=-3 l="[1,'x']" m="{'k': 2}"` + "\n",
			hosts: "h1", host: "h1",
			vars: map[string]any{"a": 1, "b": "two words", "c": true, "d": "[1,x]", "e": "{k:2}", "l": []any{1, "x"}, "m": map[string]any{"k": 2},
				"f": "0755", "g": 1.5, "h": "q", "i": nil, "j": "yes", "k": -3},
		},
		{
			name:  "comments, port, ipv6",
			src:   "; a comment\n# another\nh1:2222 x=1 # trailing comment\nh2 url=http://x/#frag\n[2001:db8::1]:2200\n2001:db8::2\n",
			hosts: "h1 h2 2001:db8::1 2001:db8::2", host: "h1",
			vars: map[string]any{"ansible_port": 2222, "x": 1, "port": 2222},
		},
		{
			name:  "vars section keeps inline #, children later defined",
			src:   "[prod:children]\nweb\n[web]\nw1\n[web:vars]\nmsg = hello # not a comment\nq=\"quoted\"\n[all:vars]\nmsg=all\nn = 5\n",
			hosts: "w1", host: "w1",
			vars:   map[string]any{"msg": "hello # not a comment", "q": "quoted", "n": 5},
			groups: []string{"prod", "web"},
		},
		{
			name:  "host in several groups, vars merge",
			src:   "[a]\nh1 x=1\n[b]\nh1 y=2\nh2\n",
			hosts: "h1 h2", host: "h1", vars: map[string]any{"x": 1, "y": 2}, groups: []string{"a", "b"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			inv, err := load(t, "hosts", c.src)
			if err != nil {
				t.Fatal(err)
			}
			if got := hostNames(inv); got != c.hosts {
				t.Errorf("hosts %q, want %q", got, c.hosts)
			}
			if c.host == "" {
				return
			}
			h, _ := inv.Host(c.host)
			for k, v := range c.vars {
				if !reflect.DeepEqual(h.Vars[k], v) {
					t.Errorf("%s = %#v, want %#v", k, h.Vars[k], v)
				}
			}
			if c.groups != nil && !reflect.DeepEqual(h.Groups, c.groups) {
				t.Errorf("groups %v, want %v", h.Groups, c.groups)
			}
		})
	}
}

func TestYAML(t *testing.T) {
	src := `# a real-world shaped YAML inventory
all:
  vars:
    ansible_user: ubuntu
  hosts:
    solo.example.com:
  children:
    web:
      hosts:
        web[1:2].example.com:
          http_port: 80
        web3.example.com:2222:
      vars:
        tier: front
    db:
      hosts:
        db1: &dbvars
          ansible_host: 10.0.0.1
          user: postgres
        db2:
          <<: *dbvars
          ansible_host: 10.0.0.2
    eu:
      children:
        web:
        db:
          hosts:
            web1.example.com:
    empty:
    single: {hosts: lonely}
`
	inv, err := load(t, "inv.yml", src)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hostNames(inv), "solo.example.com web1.example.com web2.example.com web3.example.com db1 db2 lonely"; got != want {
		t.Errorf("hosts %q want %q", got, want)
	}
	h, _ := inv.Host("web1.example.com")
	if !reflect.DeepEqual(h.Groups, []string{"db", "eu", "web"}) || h.Vars["http_port"] != 80 || h.User() != "ubuntu" || h.Vars["tier"] != "front" {
		t.Errorf("web1: %v %v", h.Groups, h.Vars)
	}
	h, _ = inv.Host("web3.example.com")
	if h.Port() != 2222 {
		t.Errorf("web3 port %d", h.Port())
	}
	h, _ = inv.Host("db2")
	if h.Address() != "10.0.0.2" || h.User() != "postgres" {
		t.Errorf("db2: %s %s", h.Address(), h.User())
	}
	h, _ = inv.Host("solo.example.com")
	if !reflect.DeepEqual(h.Groups, []string{"ungrouped"}) {
		t.Errorf("solo groups %v", h.Groups)
	}
	if !inv.HasGroup("empty") || inv.HasGroup("nope") {
		t.Error("HasGroup")
	}
	if g := inv.Graph("eu"); g != "@eu:\n  |--@web:\n  |  |--web1.example.com\n  |  |--web2.example.com\n  |  |--web3.example.com\n  |--@db:\n  |  |--db1\n  |  |--db2\n  |  |--web1.example.com\n" {
		t.Errorf("graph:\n%s", g)
	}
}

func TestPrecedence(t *testing.T) {
	src := `[all:vars]
v=all
only_all=1
[top]
h1
[top:vars]
v=top
[a_mid:children]
leaf
[a_mid:vars]
v=a_mid
[b_mid:children]
leaf
[b_mid:vars]
v=b_mid
[top:children]
a_mid
b_mid
[leaf]
h1
h2 v=host
[leaf:vars]
v=leaf
[prio]
h3
h1
[prio:vars]
v=prio
ansible_group_priority=10
`
	inv, err := load(t, "hosts", src)
	if err != nil {
		t.Fatal(err)
	}
	get := func(n string) map[string]any { h, _ := inv.Host(n); return h.Vars }
	// h1 is in top (depth 1), prio (depth 1, priority 10) and leaf (depth 3).
	if v := get("h1")["v"]; v != "leaf" {
		t.Errorf("h1 v = %v: deepest group wins", v)
	}
	if v := get("h2")["v"]; v != "host" {
		t.Errorf("h2 v = %v: host vars win", v)
	}
	if v := get("h3")["v"]; v != "prio" || get("h3")["only_all"] != 1 {
		t.Errorf("h3 = %v", get("h3"))
	}

	// Same depth: alphabetical, later name wins (b_mid over a_mid).
	inv, err = load(t, "hosts", "[a_mid]\nh\n[b_mid]\nh\n[a_mid:vars]\nv=a\n[b_mid:vars]\nv=b\n")
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := inv.Host("h"); h.Vars["v"] != "b" {
		t.Errorf("v = %v", h.Vars["v"])
	}

	// Aliases compete by level: a host's `user` beats a group's ansible_user,
	// and all aliases present are rewritten to the winner.
	inv, err = load(t, "inv.yml", `all:
  vars: {ansible_user: ubuntu, ansible_port: 22, ansible_ssh_private_key_file: ~/.ssh/group}
  hosts:
    h:
      user: deploy
      port: "2200"
      identity_file: /keys/h
      host: 192.0.2.7
`)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := inv.Host("h")
	if h.User() != "deploy" || h.Port() != 2200 || h.IdentityFile() != "/keys/h" || h.Address() != "192.0.2.7" {
		t.Errorf("conn %q %d %q %q", h.User(), h.Port(), h.IdentityFile(), h.Address())
	}
	if h.Vars["ansible_user"] != "deploy" || h.Vars["ansible_port"] != 2200 || h.Vars["port"] != 2200 || h.Vars["host"] != "192.0.2.7" || h.Vars["address"] != "192.0.2.7" {
		t.Errorf("normalized vars %v", h.Vars)
	}
}

func TestJumps(t *testing.T) {
	for _, c := range []struct {
		vars map[string]any
		want string // Jump.String()s joined by " "; identity files after '#'
	}{
		{map[string]any{"ansible_ssh_common_args": "-J a,b@c:2022"}, "a b@c:2022"},
		{map[string]any{"ansible_ssh_common_args": "-Jops@bastion"}, "ops@bastion"},
		{map[string]any{"ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o ProxyJump=u@b1,u@b2"}, "u@b1 u@b2"},
		{map[string]any{"ansible_ssh_common_args": "-oProxyJump ops@bastion:2200"}, "ops@bastion:2200"},
		{map[string]any{"ansible_ssh_common_args": `-o ProxyCommand="ssh -W %h:%p -q user@bastion"`}, "user@bastion"},
		{map[string]any{"ansible_ssh_common_args": `-o 'ProxyCommand=ssh -i /k/b -p 2022 -l ops -W %h:%p bastion.example.com'`}, "ops@bastion.example.com:2022#/k/b"},
		{map[string]any{"ansible_ssh_common_args": `-o ProxyCommand="ssh -J first user@second nc %h %p"`}, "first user@second"},
		{map[string]any{"ansible_ssh_extra_args": "-o ProxyJump=ssh://x@[2001:db8::1]:22"}, "x@[2001:db8::1]:22"},
		{map[string]any{"ansible_ssh_common_args": "-o ProxyCommand=none"}, ""},
		{map[string]any{"bastion": "ops@b:2222"}, "ops@b:2222"},
		{map[string]any{"bastion": "a,b"}, "a b"},
		{map[string]any{"bastion": []any{"a", map[string]any{"host": "b", "user": "u", "port": 2, "identity_file": "/k"}}}, "a u@b:2#/k"},
		{map[string]any{"bastion": map[string]any{"host": "b", "user": "u"}}, "u@b"},
		{map[string]any{"bastion": "", "ansible_ssh_common_args": "-J x"}, ""},
		{map[string]any{"bastion": "b1", "ansible_ssh_common_args": "-J x"}, "b1"},
	} {
		c2, warns := connFromLevels([]map[string]any{c.vars})
		var parts []string
		for _, j := range c2.jumps {
			s := j.String()
			if j.IdentityFile != "" {
				s += "#" + j.IdentityFile
			}
			parts = append(parts, s)
		}
		if got := strings.Join(parts, " "); got != c.want || len(warns) != 0 {
			t.Errorf("%v: got %q (warnings %q), want %q", c.vars, got, warns, c.want)
		}
	}
	// A non-ssh ProxyCommand is reported, not silently taken as direct.
	_, warns := connFromLevels([]map[string]any{{"ansible_ssh_common_args": `-o ProxyCommand="aws ssm start-session --target %h"`}})
	if len(warns) != 1 || !strings.Contains(warns[0], "not an ssh command") {
		t.Errorf("warnings %q", warns)
	}
	// Host level beats group level for the chain.
	c, _ := connFromLevels([]map[string]any{{"bastion": "group-bastion"}, {"ansible_ssh_common_args": "-J host-bastion"}})
	if len(c.jumps) != 1 || c.jumps[0].Host != "host-bastion" {
		t.Errorf("jumps %v", c.jumps)
	}
}

func TestErrors(t *testing.T) {
	for _, c := range []struct {
		name, file, src string
		pos             string // file:line:col (file is the base name)
		msg, hint       string
	}{
		{"ini unknown section type", "hosts", "[web]\nw1\n[web:var]\nx=1\n", "hosts:3:6", `section [web:var] has unknown type "var"`, `did you mean "vars"?`},
		{"ini bad key=value", "hosts", "[web]\nw1 ansible_user deploy\n", "hosts:2:4", `expected key=value host variable, got "ansible_user"`, "key=value"},
		{"ini vars without =", "hosts", "[web]\nw1\n[web:vars]\n  just_a_word\n", "hosts:4:3", `expected key=value, got "just_a_word"`, ""},
		{"ini unterminated quote", "hosts", "[web]\nw1 a='open\n", "hosts:2:6", "unterminated quote", "close the quote"},
		{"ini bad range", "hosts", "[web]\n  web[01:3].example.com\n", "hosts:2:6", "equal width (ranges look like [01:20]", ""},
		{"ini range order", "hosts", "web[9:1]\n", "hosts:1:4", "begin <= end", ""},
		{"ini range too big", "hosts", "w[0:99999999]\n", "hosts:1:2", "more than 100000 hosts", ""},
		{"ini port not a number", "hosts", "[web]\nw1 ansible_port=ssh\n", "hosts:2:17", `ansible_port: port must be a number from 1 to 65535, not "ssh"`, ""},
		{"ini undefined child", "hosts", "[web]\nw1\n[prod:children]\nwebb\n", "hosts:4:1", `names group "webb", which is not defined in this file`, `did you mean "web"?`},
		{"ini vars for undefined group", "hosts", "[web]\nw1\n[db:vars]\nx=1\n", "hosts:3:2", `section [db:vars] is for group "db", which is not defined`, ""},
		{"ini invalid header", "hosts", "[web servers]\n", "hosts:1:1", "invalid section header", "no spaces"},
		{"ini loop", "hosts", "[a:children]\nb\n[b:children]\na\n", "hosts:4:1", "makes a loop", ""},
		{"yaml syntax", "inv.yml", "all:\n  hosts:\n    w1:\n   bad: [\n", "inv.yml:4:4", "YAML: ", ""},
		{"yaml syntax no line from yaml.v3", "inv.yml", "all:\n  hosts:\n    w1: a: b\n", "inv.yml:3:5", "mapping values are not allowed", ""},
		{"yaml hosts list", "inv.yml", "all:\n  children:\n    web:\n      hosts:\n        - w1\n        - w2\n", "inv.yml:5:9", `hosts of group "web" must be a mapping of host names, not a list`, "not as a list item"},
		{"yaml vars not a map", "inv.yml", "web:\n  vars: [a, b]\n", "inv.yml:2:9", `vars of group "web" must be a mapping, not a list`, ""},
		{"yaml unknown group key", "inv.yml", "web:\n  host:\n    w1:\n", "inv.yml:2:3", `unknown key "host" in group "web"`, `did you mean "hosts"?`},
		{"yaml port not a number", "inv.yml", "web:\n  hosts:\n    w1:\n      ansible_port: twenty\n", "inv.yml:4:21", "port must be a number", ""},
		{"yaml port out of range", "inv.yml", "web:\n  vars:\n    port: 70000\n", "inv.yml:3:11", "out of range", ""},
		{"yaml host vars not a map", "inv.yml", "web:\n  hosts:\n    w1: 10.0.0.1\n", "inv.yml:3:9", `variables of host "w1" must be a mapping`, ""},
		{"yaml root not a map", "inv.yml", "- all\n", "inv.yml:1:1", "must be a mapping of group names", "all:"},
		{"yaml bad bastion", "inv.yml", "web:\n  vars:\n    bastion: {hots: b}\n", "inv.yml:3:14", `unknown bastion key "hots"`, ""},
		{"yaml bad ssh args", "inv.yml", "web:\n  vars:\n    ansible_ssh_common_args: \"-o 'ProxyJump=x\"\n", "inv.yml:3:30", "unterminated quote", ""},
		{"yaml bad range", "inv.yml", "web:\n  hosts:\n    w[1:z]:\n", "inv.yml:3:6", "needs numbers or single letters", ""},
		{"unknown plugin", "x.yml", "plugin: aws_ec3\nregions: [eu-west-1]\n", "x.yml:1:9", `unknown inventory plugin "aws_ec3"`, `did you mean "aws_ec2"?`},
		{"sniffed yaml error", "hosts", "all:\n  hosts:\n  w1: [\n", "hosts:3:", "YAML: ", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			RegisterPlugin(func(context.Context, string, []byte, Options) (*Inventory, error) { return New(), nil }, "aws_ec2", "amazon.aws.aws_ec2")
			inv, err := load(t, c.file, c.src)
			if err == nil {
				t.Fatalf("no error; hosts %q", hostNames(inv))
			}
			if inv != nil {
				t.Error("an inventory came back with the error")
			}
			if !diag.IsInvalidInput(err) {
				t.Errorf("not invalid input: %v", err)
			}
			var e *diag.Error
			var l diag.List
			if errors.As(err, &l) {
				e = l[0]
			} else if !errors.As(err, &e) {
				t.Fatalf("not a diag error: %T %v", err, err)
			}
			pos := filepath.Base(e.Pos.File) + strings.TrimPrefix(e.Pos.String(), e.Pos.File)
			if !strings.HasPrefix(pos, c.pos) {
				t.Errorf("position %s, want %s\n%v", pos, c.pos, err)
			}
			if !strings.Contains(e.Msg, c.msg) {
				t.Errorf("msg %q, want %q", e.Msg, c.msg)
			}
			if !strings.Contains(e.Hint, c.hint) {
				t.Errorf("hint %q, want %q", e.Hint, c.hint)
			}
			if e.Snippet == "" {
				t.Errorf("no snippet: %v", err)
			}
		})
	}
}

func TestPlugin(t *testing.T) {
	var gotPath string
	var gotVars map[string]any
	RegisterPlugin(func(ctx context.Context, path string, src []byte, opts Options) (*Inventory, error) {
		gotPath, gotVars = path, opts.Vars
		inv := New()
		inv.AddHost(&Host{Name: "10.0.0.1", Vars: map[string]any{"instance_id": "i-1"}}, "tag_Role_web")
		return inv, nil
	}, "test_plugin")
	dir := writeFiles(t, map[string]string{"dyn.yml": "plugin: test_plugin\n", "static": "[tag_Role_web]\nextra\n"})
	inv, err := Load(context.Background(), []string{dir}, Options{Vars: map[string]any{"env": "dev"}})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(gotPath) != "dyn.yml" || gotVars["env"] != "dev" {
		t.Errorf("plugin called with %q %v", gotPath, gotVars)
	}
	hosts, err := inv.Match("tag_Role_web")
	if err != nil || len(hosts) != 2 || hosts[0].Vars["instance_id"] != "i-1" {
		t.Errorf("hosts %v %v", hosts, err)
	}
}

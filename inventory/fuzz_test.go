package inventory

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
)

// positioned fails unless err is a diag error whose every problem has a line and column.
func positioned(t *testing.T, err error) {
	t.Helper()
	var e *diag.Error
	var l diag.List
	switch {
	case errors.As(err, &l):
	case errors.As(err, &e):
		l = diag.List{e}
	default:
		t.Fatalf("error is not positioned: %T %v", err, err)
	}
	for _, e := range l {
		if e.Pos.Line < 1 || e.Pos.Col < 1 || e.Pos.File == "" {
			t.Fatalf("error without line:col: %v", e)
		}
	}
}

// exercise runs everything a command would on a parsed inventory.
func exercise(t *testing.T, inv *Inventory) {
	t.Helper()
	if len(inv.Hosts) > 2000 {
		return // big ranges are legal; rendering them only slows the fuzzer
	}
	if _, err := inv.ListJSON(); err != nil {
		t.Fatal(err)
	}
	_ = inv.Graph("")
	for _, h := range inv.Hosts {
		_ = h.Address()
		_ = h.Jumps()
		if _, err := inv.HostVars(h.Name); err != nil {
			t.Fatal(err)
		}
	}
	if hosts, err := inv.Match("all"); err == nil && len(hosts) != len(inv.Hosts) {
		t.Fatalf("all matched %d of %d hosts", len(hosts), len(inv.Hosts))
	}
}

func FuzzINI(f *testing.F) {
	if b, err := os.ReadFile("testdata/ansible/production"); err == nil {
		f.Add(string(b))
	}
	for _, s := range []string{
		"[web]\nweb[01:03] a=1 b='x y'\n[web:vars]\nk=v\n[all:children]\nweb\n",
		"h1:22 x=[1,{'a':(2,3)}] y=\"q\\\"\" # c\n[a:children]\nb\n[b]\n",
		"[x:vars]\n=1\n[y:bad]\n[2001:db8::1]:22\nw[a:Z:2]\nw[:3]\n",
		"h ansible_ssh_common_args='-o ProxyCommand=\"ssh -W %h:%p u@b\"' bastion=a,b\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		inv, err := parseINI("fuzz.ini", []byte(src))
		if err != nil {
			if inv != nil {
				t.Fatal("inventory returned with an error")
			}
			positioned(t, err)
			return
		}
		exercise(t, inv)
	})
}

func FuzzYAML(f *testing.F) {
	if b, err := os.ReadFile("testdata/ansible/extra.yml"); err == nil {
		f.Add(string(b))
	}
	for _, s := range []string{
		"all:\n  hosts:\n    a:\n      port: 22\n  children:\n    b:\n      hosts: {c: }\n      vars: {x: 1}\n",
		"web:\n  hosts:\n    - a\n",
		"a: &x {hosts: {h: }}\nb: *x\nc:\n  <<: *x\n",
		"all:\n  vars:\n    bastion: [{host: b, port: 2}, u@c]\n",
		"plugin: nope\n",
		"all:\n  children:\n    a:\n      children:\n        b:\n          children:\n            a:\n",
		"x: [\n",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		root, doc, err := yamlRoot("fuzz.yml", []byte(src))
		var inv *Inventory
		if err == nil {
			inv, err = yamlOrPlugin(context.Background(), "fuzz.yml", []byte(src), doc, root, Options{})
		}
		if err != nil {
			if inv != nil {
				t.Fatal("inventory returned with an error")
			}
			positioned(t, err)
			return
		}
		exercise(t, inv)
	})
}

func FuzzPattern(f *testing.F) {
	for _, s := range []string{
		"all", "*", "web*:!web-canary*", "prod:&eu", "~db-[ab]", "webservers[0]", "webservers[1:]",
		"webservers[-1]", "a,b,!c", "&webservers", "web0[1:2]*", "[", "~(", "!", "x[99999999999999999999]", "::1", "h:22",
		"localhost:all", "all:127.0.0.1:!webservers", "localhost[0]", "localhost[1:]",
	} {
		f.Add(s)
	}
	inv, err := Load(context.Background(), []string{"testdata/ansible"}, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		hosts, err := inv.Match(pattern)
		if err != nil {
			if !diag.IsInvalidInput(err) {
				t.Fatalf("Match(%q): %v is not invalid input", pattern, err)
			}
			return
		}
		if len(hosts) == 0 {
			t.Fatalf("Match(%q) returned no hosts and no error", pattern)
		}
		seen := map[string]bool{}
		last := implicitIdx - 1
		for _, h := range hosts {
			i := inv.hostIdx[h.Name]
			if inv.Implicit(h) {
				i = implicitIdx // the controller, first
			}
			if seen[h.Name] || i <= last {
				t.Fatalf("Match(%q): duplicate or out of order %s", pattern, h.Name)
			}
			seen[h.Name], last = true, i
		}
	})
}

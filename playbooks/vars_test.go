package playbooks

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/template"
)

func mustPlay(t *testing.T, src string) *Play {
	t.Helper()
	pb, err := Parse("pb.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return pb.Plays[0]
}

func TestPrecedence(t *testing.T) {
	p := mustPlay(t, `- hosts: all
  vars:
    a: play
    b: play
    c: play
    d: play
`)
	inventory := Merge(
		map[string]any{"a": "all", "b": "all", "c": "all", "d": "all", "e": "all", "f": "all"}, // all vars
		map[string]any{"e": "group", "f": "group"},                                             // group vars
		map[string]any{"f": "host"},                                                            // host vars
	)
	s := &Scope{
		Inventory: inventory,
		Play:      p,
		Facts:     map[string]any{"b": "fact", "c": "fact"},
		Extra:     map[string]any{"c": "extra"},
		Builtins:  map[string]any{"env": "staging"},
	}
	vars, err := s.Vars()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "play", "b": "fact", "c": "extra", "d": "play", "e": "group", "f": "host", "env": "staging"}
	for k, w := range want {
		if vars[k] != w {
			t.Errorf("%s = %v, want %v", k, vars[k], w)
		}
	}
	if !reflect.DeepEqual(vars["extra"], map[string]any{"c": "extra"}) {
		t.Errorf("extra = %v", vars["extra"])
	}
}

func TestPlayVarsDependencies(t *testing.T) {
	p := mustPlay(t, `- hosts: all
  vars:
    url: "http://{{ host.private_ip }}:{{ port }}/{{ path }}"
    path: "v/{{ version }}"
    version: "{{ extra.version ?? 'dev' }}"
    port: 8080
    ports: "{{ [port, port + 1] }}"
`)
	base := map[string]any{"host": map[string]any{"private_ip": "10.0.0.5"}}
	vars, err := ResolveVars(p, base)
	if err != nil {
		t.Fatal(err)
	}
	if vars["url"] != "http://10.0.0.5:8080/v/dev" || vars["version"] != "dev" {
		t.Errorf("url = %v, version = %v", vars["url"], vars["version"])
	}
	if !reflect.DeepEqual(vars["ports"], []any{8080, 8081}) {
		t.Errorf("ports = %#v", vars["ports"])
	}
	// -e wins over the play var, and other play vars see the winner
	s := &Scope{Inventory: base, Play: p, Extra: map[string]any{"version": "2.0"}}
	vars, err = s.Vars()
	if err != nil {
		t.Fatal(err)
	}
	if vars["url"] != "http://10.0.0.5:8080/v/2.0" {
		t.Errorf("url with -e = %v", vars["url"])
	}
}

func TestPlayVarsCycle(t *testing.T) {
	p := mustPlay(t, `- hosts: all
  vars:
    a: "{{ b }}"
    b: "x{{ c }}"
    c: "{{ a ?? 1 }}"
`)
	_, err := ResolveVars(p, nil)
	var de *diag.Error
	if !errors.As(err, &de) || de.Pos.Line != 3 || de.Pos.Col != 5 || !strings.Contains(de.Msg, "a → b → c → a") {
		t.Fatalf("err = %v", err)
	}
	if de.Snippet != `    a: "{{ b }}"` {
		t.Errorf("snippet = %q", de.Snippet)
	}
}

func TestPlayVarsUndefined(t *testing.T) {
	p := mustPlay(t, "- hosts: all\n  vars:\n    a: \"{{ nope }}\"\n")
	_, err := ResolveVars(p, nil)
	var ee *template.EvalError
	if !errors.As(err, &ee) || ee.Name != "nope" || ee.Pos != (diag.Pos{File: "pb.yml", Line: 3, Col: 12}) {
		t.Fatalf("err = %v", err)
	}
}

func TestExtraVars(t *testing.T) {
	dir := t.TempDir()
	yml := filepath.Join(dir, "vars.yml")
	os.WriteFile(yml, []byte("replicas: 3\nversion: '1.0'\nlist: [a, b]\n"), 0o644)
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("a: 1\nenv: prod\n"), 0o644)
	broken := filepath.Join(dir, "broken.yml")
	os.WriteFile(broken, []byte("a: [1\n"), 0o644)

	got, err := ParseExtraVars([]string{"version=1.10", "@" + yml, `{"replicas": 5, "nested": {"x": true}}`, "msg=a=b c", "empty="})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"version":  "1.0", // the file came later than version=1.10
		"replicas": 5,
		"list":     []any{"a", "b"},
		"nested":   map[string]any{"x": true},
		"msg":      "a=b c",
		"empty":    "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v", got)
	}
	got, _ = ParseExtraVars([]string{"v=1.10"})
	if got["v"] != "1.10" {
		t.Errorf("KEY=VALUE must stay a string: %#v", got["v"])
	}

	for _, tc := range []struct{ arg, msg string }{
		{"novalue", "want KEY=VALUE, @FILE or a JSON object"},
		{"my-key=1", "not a variable name"},
		{"env=prod", "reserved"},
		{"@" + filepath.Join(dir, "missing.yml"), "no such file"},
		{"@" + bad, "bad.yml:2:1: extra vars: \"env\" is reserved"},
		{"@" + broken, "broken.yml:2:1: invalid YAML"},
		{`{"a": [}`, "-e {\"a\": [}"},
		{"[1, 2]", "want KEY=VALUE"},
	} {
		_, err := ParseExtraVars([]string{tc.arg})
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: err = %v, want %q", tc.arg, err, tc.msg)
		}
		if err != nil && !diag.IsInvalidInput(err) {
			t.Errorf("%q: not invalid input: %T", tc.arg, err)
		}
	}
}

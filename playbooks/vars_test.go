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

// A role's defaults are below the play's vars, though the loader lists them
// after (bmemartin's docker_compose role: the play sets
// docker_compose_file, the role defaults it).
func TestRoleDefaultBelowPlayVars(t *testing.T) {
	p := &Play{Vars: []*VarDef{{Name: "f", Value: "play.yaml"}, {Name: "f", Value: "default.yaml", Default: true}, {Name: "g", Value: "{{ f }}", Default: true}}}
	v, err := (&Scope{Play: p}).Vars()
	if err != nil {
		t.Fatal(err)
	}
	if v["f"] != "play.yaml" || v["g"] != "play.yaml" {
		t.Errorf("f=%v g=%v", v["f"], v["g"])
	}
}

// A role task's relative src is looked for in the role's files/, the role,
// then the playbook's directory, as Ansible's search path.
func TestRoleSrcSearchPath(t *testing.T) {
	t.Setenv("ANSIBLE_ROLES_PATH", "")
	t.Setenv("ANSIBLE_CONFIG", "")
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"site.yml":                  "- hosts: all\n  vars: {f: compose/app.yaml}\n  roles: [r]\n",
		"compose/app.yaml":          "services: {}\n",
		"roles/r/tasks/main.yml":    "- copy: {src: \"{{ f }}\", dest: /srv/app.yaml}\n- copy: {src: in-role.txt, dest: /srv/x}\n- copy: {src: nowhere.txt, dest: /srv/y}\n",
		"roles/r/files/in-role.txt": "x\n",
	})
	pb, err := Load(filepath.Join(dir, "site.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = pb.MissingLocalFiles(CheckVars(nil, nil), nil, nil)
	if err == nil || strings.Count(err.Error(), "does not exist") != 1 || !strings.Contains(err.Error(), "nowhere.txt") {
		t.Fatalf("missing files: %v", err)
	}
}

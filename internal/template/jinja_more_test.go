package template

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
)

func TestAnsibleFilters(t *testing.T) {
	vars := map[string]any{
		"users": []any{map[string]any{"name": "a", "keys": []any{"k1", "k2"}}, map[string]any{"name": "b"}},
		"envs":  []any{"dev", "prod"}, "apps": []any{"api", "web"},
	}
	for _, c := range []struct {
		src  string
		want any
	}{
		{"{{ envs | product(apps) | list }}", []any{[]any{"dev", "api"}, []any{"dev", "web"}, []any{"prod", "api"}, []any{"prod", "web"}}},
		{"{{ users | subelements('keys', skip_missing=True) | map('last') | list }}", []any{"k1", "k2"}},
		{"{{ [['a', 1], ['b', 2]] | dict }}", map[string]any{"a": 1, "b": 2}},
		{"{{ 'abc' | hash('sha1') }}", "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{"{{ 'abc' | hash('md5') }}", "900150983cd24fb0d6963f7d28e17f72"},
		{"{{ 'https://u:p@Example.com:8443/a/b?x=1#f' | urlsplit('hostname') }}", "example.com"},
		{"{{ 'https://example.com:8443/a' | urlsplit('port') }}", 8443},
		{"{{ ('https://example.com/a' | urlsplit).path }}", "/a"},
		{"{{ 'a\nb' | indent(2) }}", "a\n  b"},
		{"{{ 'a\nb' | indent(2, true) }}", "  a\n  b"},
		{"{{ '%s-%d' | format('v', 3) }}", "v-3"},
		{"{{ '10.1.2.3/24' | ipaddr('network') }}", "10.1.2.0"},
		{"{{ '10.1.2.3/24' | ipaddr('netmask') }}", "255.255.255.0"},
		{"{{ '10.1.2.3' | ipaddr }}", "10.1.2.3"},
		{"{{ 'nope' | ipaddr }}", false},
		{"{{ [1, 2, 3] | random(seed='x') in [1, 2, 3] }}", true},
		{"{{ ('2024-03-05 10:00:00' | to_datetime).year }}", 2024},
	} {
		tpl, err := CompileTemplate(c.src, diag.Pos{})
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		got, err := tpl.Render(vars)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %#v, %v; want %#v", c.src, got, err, c.want)
		}
	}
}

func TestLookups(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.conf": "x", "b.conf": "y"})
	pw := dir + "/secrets/db"
	// lookup('pipe') runs with the env_vars it is given, not the process's.
	t.Setenv("FERRY_BECOME_PASSWORD", "hunter2")
	vars := map[string]any{"dir": dir, "pw": pw, "env_vars": map[string]any{"GREETING": "hi"}}
	for _, c := range []struct {
		src  string
		want any
	}{
		{"{{ lookup('pipe', 'echo hi') }}", "hi"},
		{"{{ lookup('pipe', 'echo \"$GREETING-$FERRY_BECOME_PASSWORD\"') }}", "hi-"},
		{"{{ lookup('fileglob', dir ~ '/*.conf') }}", dir + "/a.conf," + dir + "/b.conf"},
		{"{{ lookup('first_found', [dir ~ '/none.conf', dir ~ '/b.conf']) }}", dir + "/b.conf"},
		{"{{ lookup('password', pw ~ ' length=12 chars=digits') | length }}", 12},
		{"{{ lookup('password', pw ~ ' length=12') == lookup('password', pw) }}", true},
	} {
		tpl, err := CompileTemplate(c.src, diag.Pos{})
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		got, err := tpl.Render(vars)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %#v, %v; want %#v", c.src, got, err, c.want)
		}
	}
	// an unknown lookup fails when the template compiles (ferry check), not when it renders
	if _, err := CompileTemplate("{{ lookup('aws_ssm', 'x') }}", diag.Pos{}); err == nil || !strings.Contains(err.Error(), `lookup("aws_ssm") is not supported`) {
		t.Errorf("unknown lookup: %v", err)
	}
}

// password_hash('sha512') is glibc's $6$ crypt (checked against openssl passwd -6).
func TestPasswordHash(t *testing.T) {
	tpl, err := CompileTemplate("{{ 'Hello' | password_hash('sha512', 'saltstring') }}", diag.Pos{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.Render(map[string]any{})
	want := "$6$saltstring$aQzKv7HhksN4CNT5HySRdxOEHxZvlWWP2je/lOgbrHx5iLYj3NJfVnC287n/dwkODYWL1.LZUdO9vX84fkCna/"
	if err != nil || got != want {
		t.Errorf("got %v, %v\nwant %s", got, err, want)
	}
}

// lookup('template') renders a file with the task's variables (the
// playbook's templates/ first).
func TestTemplateLookup(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"templates/motd.j2": "hello {{ who }}{% for x in [1, 2] %} {{ x }}{% endfor %}"})
	tpl, err := CompileTemplate("{{ lookup('template', 'motd.j2') }}", diag.Pos{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.Render(map[string]any{"who": "ops", "playbook_dir": dir})
	if err != nil || got != "hello ops 1 2" {
		t.Errorf("got %q, %v", got, err)
	}
}

// writeTree writes files (path relative to dir → content) for a test.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

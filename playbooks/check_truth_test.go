package playbooks

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/template"
)

// default's fallback is read only when the value is missing: chains of
// defaults and a fallback naming a missing variable behave as in Ansible,
// at run time and in ferry check.
func TestDefaultFallbackIsLenient(t *testing.T) {
	for _, c := range []struct {
		src  string
		vars map[string]any
		want string
	}{
		{"{{ a | default(b) | default('z') }}", map[string]any{}, "z"},
		{"{{ a | default(b) | default('z') }}", map[string]any{"b": "B"}, "B"},
		{"{{ x | default(p.region) }}", map[string]any{"x": "X"}, "X"},
		{"{{ x | default(p.region) }}", map[string]any{"p": map[string]any{"region": "eu"}}, "eu"},
	} {
		tpl, err := template.CompileTemplate(c.src, diag.Pos{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := tpl.RenderString(c.vars)
		if err != nil || got != c.want {
			t.Errorf("%s with %v = %q, %v; want %q", c.src, c.vars, got, err, c.want)
		}
	}
	pb, err := Parse("site.yml", []byte(`- hosts: all
  tasks:
    - fx_debug: {msg: "{{ a | default(b) | default('z') }} {{ x | default(p.region) }}"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Check(map[string]bool{}); err != nil {
		t.Errorf("check: %v", err)
	}
}

// An undefined variable is reported once per position, with a hint an
// Ansible playbook can take (default(), never ferry's ??).
func TestCheckUndefinedOnceAnsibleHint(t *testing.T) {
	pb, err := Parse("site.yml", []byte(`- hosts: all
  tasks:
    - fx_debug: {msg: "{{ nothere }}"}
      when: nothere2 == 1
      loop: [1, 2]
`))
	if err != nil {
		t.Fatal(err)
	}
	err = pb.Check(map[string]bool{})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if n := strings.Count(msg, `undefined variable "nothere"`); n != 1 {
		t.Errorf("nothere reported %d times:\n%s", n, msg)
	}
	if strings.Contains(msg, "??") || !strings.Contains(msg, "default(") {
		t.Errorf("hint:\n%s", msg)
	}
}

// An unsupported module is named once per playbook, whatever its spelling
// (short or FQCN), with the same line.
func TestUnsupportedModuleOnce(t *testing.T) {
	_, err := Parse("site.yml", []byte(`- hosts: all
  tasks:
    - apt: {name: nginx}
    - ansible.builtin.apt: {name: nginx}
    - apt: {name: curl}
    - ping:
    - ansible.builtin.ping:
`))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, m := range []string{"apt", "ping"} {
		if n := strings.Count(msg, "module \""); n != 2 || !strings.Contains(msg, `module "`+m+`" is not supported by ferry`) {
			t.Errorf("%s:\n%s", m, msg)
		}
	}
}

// ferry check shows load problems and undefined variables in one report.
func TestLoadCheckedShowsEverything(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"site.yml": `- hosts: all
  tasks:
    - apt: {name: nginx}
    - fx_debug: {msg: "{{ not_defined_anywhere }}"}
`})
	_, err := LoadChecked(dir+"/site.yml", map[string]bool{}, nil)
	if err == nil || !strings.Contains(err.Error(), `module "apt"`) || !strings.Contains(err.Error(), `undefined variable "not_defined_anywhere"`) {
		t.Fatalf("err = %v", err)
	}
}

// include_tasks with a loop runs the file once per item, with the loop
// variable set; ferry check knows the variable; a loop on import_tasks or a
// block is named as itself.
func TestIncludeTasksLoop(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"site.yml": `- hosts: app
  tasks:
    - include_tasks: one.yml
      loop: [a, b, c]
      loop_control: {loop_var: svc}
    - assert: {that: "seen == 'abc' and svc is not defined"}
`,
		"one.yml": "- set_fact: {seen: \"{{ seen | default('') }}{{ svc }}\"}\n",
	})
	pb, err := Load(dir+"/site.yml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Check(map[string]bool{}); err != nil {
		t.Fatalf("check: %v", err)
	}
	res := NewRunner(pb, Options{Inventory: hostsInv(t, 1), Connector: nopConnector{}}).Run(t.Context())
	if res.ExitCode != 0 {
		t.Fatalf("exit %d", res.ExitCode)
	}
	writeTree(t, dir, map[string]string{"bad.yml": "- hosts: all\n  tasks:\n    - import_tasks: one.yml\n      loop: [1]\n"})
	if _, err := Load(dir+"/bad.yml", nil); err == nil || !strings.Contains(err.Error(), "import_tasks with a loop is not supported") {
		t.Errorf("import_tasks loop: %v", err)
	}
}

// Legacy play keys (user, sudo) and vars_prompt (answered by -e or its default).
func TestVarsPromptAndLegacyKeys(t *testing.T) {
	src := `- hosts: app
  user: deploy
  sudo: yes
  vars_prompt:
    - {name: version, prompt: "Version?", private: no}
    - {name: region, prompt: "Region?", default: eu-west-1}
  tasks:
    - assert: {that: "version == 'v2' and region == 'eu-west-1'"}
      become: false
`
	pb, err := Parse("site.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if p := pb.Plays[0]; p.RemoteUser != "deploy" || !p.Become {
		t.Errorf("user %q sudo %v", p.RemoteUser, p.Become)
	}
	if err := pb.Check(map[string]bool{}); err != nil {
		t.Errorf("check: %v", err)
	}
	res, rec := runPB(t, src, 1, nil)
	if res.ExitCode != 4 {
		t.Errorf("without -e version: exit %d", res.ExitCode)
	}
	_ = rec
	res, _ = runPB(t, src, 1, func(o *Options) { o.Extra = map[string]any{"version": "v2"} })
	if res.ExitCode != 0 {
		t.Errorf("with -e version=v2: exit %d", res.ExitCode)
	}
}

// retries and delay may be templates, rendered with -e and inventory variables.
func TestTemplatedRetries(t *testing.T) {
	src := `- hosts: app
  tasks:
    - set_fact: {x: 1}
      register: out
      until: out is succeeded
      retries: "{{ tries }}"
      delay: "{{ pause }}"
`
	res, _ := runPB(t, src, 1, func(o *Options) { o.Extra = map[string]any{"tries": "2", "pause": "0"} })
	if res.ExitCode != 0 {
		t.Errorf("exit %d", res.ExitCode)
	}
	res, rec := runPB(t, src, 1, func(o *Options) { o.Extra = map[string]any{"tries": "many", "pause": "0"} })
	failed := false
	for _, e := range rec.evs {
		failed = failed || strings.Contains(e.Msg, `retries: "many"`)
	}
	if res.ExitCode == 0 || !failed {
		t.Errorf("retries: many: exit %d", res.ExitCode)
	}
}

// include_vars sets the file's variables (ferry check reads their names).
func TestIncludeVars(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"site.yml": `- hosts: app
  tasks:
    - include_vars: vars/prod.yml
    - include_vars: {file: vars/prod.yml, name: prod}
    - assert: {that: ["region == 'eu-west-1'", "url == 'http://eu-west-1.example'", "prod.region == region"]}
`,
		"vars/prod.yml": "region: eu-west-1\nurl: \"http://{{ region }}.example\"\n",
	})
	pb, err := Load(dir+"/site.yml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Check(map[string]bool{}); err != nil {
		t.Fatalf("check: %v", err)
	}
	rec := &recorder{}
	res := NewRunner(pb, Options{Inventory: hostsInv(t, 1), Connector: nopConnector{}, Sink: rec}).Run(t.Context())
	for _, e := range rec.evs {
		if e.Msg != "" {
			t.Log(e.Task, e.Msg)
		}
	}
	if res.ExitCode != 0 {
		t.Fatalf("exit %d", res.ExitCode)
	}
}

// A task guarded by `when: x is defined` (alone, and-ed, or one of a list)
// may use x in its name and arguments; `or`, `is not defined` and other
// conditions guard nothing, and x stays unknown to the next task.
func TestCheckDefinedGuardForms(t *testing.T) {
	pb, err := Parse("site.yml", []byte(`- hosts: all
  tasks:
    - name: Install composer {{ version }}
      fx_shell: get {{ version }} {{ channel }}
      when: version is defined and channel is defined
    - fx_shell: echo {{ a }}
      when: [a is defined, a != '']
    - fx_shell: echo {{ b }}
      when: b is defined or true
    - fx_shell: echo {{ c }}
      when: c is not defined
    - fx_shell: echo {{ version }}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = pb.Check(map[string]bool{})
	var got []string
	var list diag.List
	if errors.As(err, &list) {
		for _, e := range list {
			got = append(got, fmt.Sprintf("%d:%s", e.Pos.Line, e.Msg))
		}
	}
	want := `8:undefined variable "b",10:undefined variable "c",12:undefined variable "version"`
	if strings.Join(got, ",") != want {
		t.Errorf("got %v\nwant %s", got, want)
	}
}

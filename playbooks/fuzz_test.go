package playbooks

import (
	"errors"
	"os"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
)

func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("testdata/deploy.yml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example))
	for _, s := range []string{
		"",
		"- hosts: all\n",
		"- hosts: all\n  serial: [1, \"50%\"]\n  tasks:\n    - fx_shell: echo {{ x }}\n      when: a == 1\n",
		"- hosts: all\n  vars: &v {a: 1}\n  tasks:\n    - fx_svc: {<<: *v, name: x}\n",
		"- hosts: all\n  tasks:\n    - fx_shell: \"{{ {a: 1} }}\"\n      loop: \"{{ [1,2] }}\"\n",
		"- hosts: all\n  tasks:\n    - fx_assert: {that: [\"{{ a }}\", 'b ?? c']}\n",
		"- hosts: all\n  tasks:\n    - fx_shell: |\n        echo {{ a\n",
		"- &a [*a]\n",
		"{a: [}",
		"- hosts: all\n\ttasks:\n",
		// Ansible's forms
		"- hosts: all\n  tasks:\n    - shell: echo hi chdir=/tmp\n      with_items: \"{{ xs }}\"\n      notify: h\n  handlers:\n    - name: h\n      debug: var=x\n",
		"- hosts: all\n  tasks:\n    - block:\n        - local_action: command true\n      rescue:\n        - action: debug msg='a b'\n      always:\n        - ansible.builtin.uri: url=http://x status_code=200\n          until: r.content | default('') | regex_replace('a', '\\\\1') == 'b'\n",
		"- import_playbook: missing.yml\n  vars: {a: 1}\n  tags: [x]\n- import_playbook: '{{ f }}'\n- include: [x]\n  when: y\n",
		"- hosts: all\n  tasks:\n    - command: ls\n      args: {warn: no}\n      when: x is defined and (y is defined or z)\n",
		"- hosts: all\n  tasks:\n    - service: name=a state=started\n      delegate_to: '{{ item }}'\n      run_once: yes\n      loop_control: {loop_var: h}\n    - nagios: action=x\n    - include_tasks: '{{ f }}'\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		pb, err := Parse("f.yml", []byte(src))
		if err != nil {
			var list diag.List
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is %T, want a non-empty diag.List: %v", err, err)
			}
			for _, e := range list {
				if e.Pos.File != "f.yml" || e.Pos.Line <= 0 {
					t.Fatalf("unpositioned error: %v", e)
				}
			}
			return
		}
		_ = pb.Check(map[string]bool{})
		for _, p := range pb.Plays {
			_, _ = ResolveVars(p, nil)
			for _, task := range p.HostTasks() {
				_, _ = task.RenderArgs(map[string]any{})
				_, _ = task.LoopItems(map[string]any{})
				_, _ = task.When.True(map[string]any{})
			}
		}
	})
}

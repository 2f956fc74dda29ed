package playbooks

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/events"
)

// A task file name with {{ }} is rendered when the playbook loads from the
// play's vars, role defaults and default() (ansistrano's hooks and
// strategies); a name that needs a variable known only at run time is an
// error that says so.
func TestIncludeTasksTemplatedName(t *testing.T) {
	t.Setenv("ANSIBLE_ROLES_PATH", "")
	t.Setenv("ANSIBLE_CONFIG", "")
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"site.yml": `- hosts: all
  vars:
    deploy_via: copy
    kind: "{{ deploy_via }}_unarchive"
  roles: [deploy]
  tasks:
    - include_tasks: "steps/{{ kind }}.yml"
`,
		"steps/copy_unarchive.yml":         "- {name: play step, fx_shell: 'true'}\n",
		"roles/deploy/defaults/main.yml":   "deploy_via: rsync\nhook: ''\n",
		"roles/deploy/tasks/main.yml":      "- include_tasks: \"{{ before_hook | default('empty.yml') }}\"\n- include_tasks: \"via/{{ deploy_via | default('rsync') }}.yml\"\n",
		"roles/deploy/tasks/empty.yml":     "---\n",
		"roles/deploy/tasks/via/copy.yml":  "- {name: copy step, fx_shell: 'true'}\n",
		"roles/deploy/tasks/via/rsync.yml": "- {name: rsync step, fx_shell: 'true'}\n",
		"bad.yml":                          "- hosts: all\n  tasks:\n    - include_tasks: \"{{ inventory_hostname }}.yml\"\n",
		"missing.yml":                      "- hosts: all\n  vars: {via: nope}\n  tasks:\n    - include_tasks: \"{{ via }}.yml\"\n",
	})
	pb, err := Load(filepath.Join(dir, "site.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// play vars win over the role's defaults; default() covers an unset hook
	if got := taskNames(pb.Plays[0].Tasks); !strings.Contains(got, "copy step") || strings.Contains(got, "rsync step") || !strings.Contains(got, "play step") {
		t.Errorf("tasks: %s", got)
	}

	_, err = Load(filepath.Join(dir, "bad.yml"), nil)
	var list diag.List
	if !errors.As(err, &list) || len(list) != 1 || !strings.Contains(list[0].Msg, `"inventory_hostname" is not known when the playbook loads`) || list[0].Pos.Line != 3 {
		t.Fatalf("run-time variable: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yml"), nil); err == nil || !strings.Contains(err.Error(), "nope.yml") {
		t.Fatalf("missing rendered file: %v", err)
	}
}

// `include_tasks: "{{ hook }}"` with `when: hook is defined` (the
// f500.project_deploy hooks): skipped while the hook is unset; if it is set
// only at run time, the task fails naming the variable instead of skipping
// the file Ansible would have read.
func TestIncludeTasksTemplatedNameGuarded(t *testing.T) {
	src := `
- hosts: app
  tasks:
    - include_tasks: "{{ hook_on_build }}"
      when: hook_on_build is defined
    - fx_shell: echo built
`
	res, rec := runPB(t, src, 1, nil)
	if res.ExitCode != 0 {
		t.Fatalf("unset hook: exit %d", res.ExitCode)
	}
	if n := len(rec.kinds(events.TaskEnd)); n == 0 {
		t.Fatal("no task ran")
	}
	res, rec = runPB(t, "\n- hosts: app\n  tasks:\n    - set_fact: {hook_on_build: build.yml}"+src[len("\n- hosts: app\n  tasks:"):], 1, nil)
	var msgs []string
	for _, e := range rec.evs {
		msgs = append(msgs, e.Msg)
	}
	if res.ExitCode == 0 || !strings.Contains(strings.Join(msgs, "\n"), `include_tasks: the file name needs "hook_on_build", which was not known when the playbook loaded`) {
		t.Fatalf("hook set at run time: exit %d, %q", res.ExitCode, msgs)
	}
}

// A name rendered at load time is checked again when the include runs: an
// -e that makes it another file fails the host instead of running the file
// ferry read.
func TestIncludeTasksTemplatedNameGuard(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"site.yml":      "- hosts: app\n  vars: {via: copy}\n  tasks:\n    - include_tasks: \"via/{{ via }}.yml\"\n",
		"via/copy.yml":  "- {name: copy step, fx_shell: 'true'}\n",
		"via/rsync.yml": "- {name: rsync step, fx_shell: 'true'}\n",
	})
	run := func(extra map[string]any) (Result, *recorder) {
		pb, err := Load(filepath.Join(dir, "site.yml"), nil)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		opts := Options{Inventory: hostsInv(t, 1), Connector: nopConnector{}, Sink: rec, RunID: "t", Extra: extra}
		return NewRunner(pb, opts).Run(t.Context()), rec
	}
	if res, rec := run(nil); res.ExitCode != 0 || len(rec.kinds(events.TaskEnd)) == 0 {
		t.Fatalf("as loaded: exit %d", res.ExitCode)
	}
	res, rec := run(map[string]any{"via": "rsync"})
	var msgs []string
	for _, e := range rec.evs {
		msgs = append(msgs, e.Msg)
	}
	if res.ExitCode == 0 || !strings.Contains(strings.Join(msgs, "\n"), "renders to another file at run time than via/copy.yml") {
		t.Fatalf("-e via=rsync: exit %d, %q", res.ExitCode, msgs)
	}
}

// A role's vars name the hook files of the role it depends on
// (cbrunnkvist.ansistrano-symfony-deploy over ansistrano.deploy): they are
// known when the dependency's includes are read.
func TestIncludeTasksNameFromDependentRole(t *testing.T) {
	t.Setenv("ANSIBLE_ROLES_PATH", "")
	t.Setenv("ANSIBLE_CONFIG", "")
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"site.yml":                       "- hosts: all\n  roles: [app]\n",
		"roles/app/meta/main.yml":        "dependencies: [deploy]\n",
		"roles/app/vars/main.yml":        "after_hook: ../../app/hooks/after.yml\n",
		"roles/app/hooks/after.yml":      "- {name: app hook, fx_shell: 'true'}\n",
		"roles/deploy/tasks/main.yml":    "- {name: deploy step, fx_shell: 'true'}\n- include_tasks: \"{{ after_hook | default('empty.yml') }}\"\n",
		"roles/deploy/tasks/empty.yml":   "---\n",
		"roles/deploy/defaults/main.yml": "after_hook: empty.yml\n",
	})
	pb, err := Load(filepath.Join(dir, "site.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := taskNames(pb.Plays[0].Tasks); !strings.Contains(got, "deploy step") || !strings.Contains(got, "app hook") {
		t.Errorf("tasks: %s", got)
	}
}

// Rendering a name at load time runs no lookup: a variable whose value
// calls one is not known then.
func TestIncludeTasksNameRunsNoLookup(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	writeTree(t, dir, map[string]string{
		"site.yml": "- hosts: all\n  vars:\n    via: \"{{ lookup('pipe', 'touch " + marker + " && echo copy') }}\"\n  tasks:\n    - include_tasks: \"{{ via }}.yml\"\n",
		"copy.yml": "- {name: copy step, fx_shell: 'true'}\n",
	})
	_, err := Load(filepath.Join(dir, "site.yml"), nil)
	if err == nil || !strings.Contains(err.Error(), `"via" is not known when the playbook loads`) {
		t.Errorf("load: %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the lookup ran while the playbook loaded")
	}
}

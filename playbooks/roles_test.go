package playbooks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree writes files (path → content) under dir.
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

func taskNames(list []*Task) string {
	var out []string
	for _, t := range flattenTasks(list) {
		out = append(out, t.Name)
	}
	return strings.Join(out, ",")
}

// include_role/import_role (tasks_from, vars, when, apply, FQCN), role
// dependencies from meta/main.yml (once per play), role defaults and handlers.
func TestIncludeRole(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"site.yml": `- hosts: all
  roles: [common]
  tasks:
    - name: app deploy
      include_role:
        name: app
        tasks_from: deploy
        apply: {tags: [deploy], become: true}
      vars: {port: 8080}
      when: do_deploy | default(true)
    - ansible.builtin.import_role: {name: app}
    - fx_shell: echo {{ app_dir }}
      notify: restart app
`,
		"roles/common/tasks/main.yml": "- {name: common task, fx_shell: 'true'}\n",
		"roles/app/meta/main.yml":     "galaxy_info: {author: x}\ndependencies:\n  - common\n  - role: base\n    base_flag: 1\n",
		"roles/app/defaults/main.yml": "app_dir: /opt/app\n",
		"roles/app/tasks/main.yml":    "- {name: app main, fx_shell: 'true'}\n",
		"roles/app/tasks/deploy.yml":  "- {name: app deploy task, fx_shell: 'echo {{ port }}'}\n",
		"roles/app/handlers/main.yml": "- {name: restart app, fx_svc: {name: app, state: restarted}}\n",
		"roles/base/tasks/main.yml":   "- {name: base task, fx_shell: 'echo {{ base_flag }}'}\n",
	})
	pb, err := Load(filepath.Join(dir, "site.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := pb.Plays[0]
	// common runs once (roles:), not again as app's dependency; base does (it has parameters).
	want := "common task,base task,app deploy task,base task,app main,"
	if got := taskNames(p.HostTasks()); got != want {
		t.Fatalf("tasks %s\nwant  %s", got, want)
	}
	deploy := flattenTasks(p.HostTasks())[2]
	if strings.Join(deploy.Tags, ",") != "deploy" || deploy.Become == nil || !*deploy.Become || deploy.Vars["port"] != 8080 || len(deploy.When) != 1 {
		t.Errorf("include_role task: tags %v become %v vars %v when %d", deploy.Tags, deploy.Become, deploy.Vars, len(deploy.When))
	}
	if !strings.HasSuffix(deploy.Dir, filepath.Join("roles", "app")) {
		t.Errorf("role task dir %q", deploy.Dir)
	}
	if got := taskNames(p.Handlers); got != "restart app" { // once, though app is included twice
		t.Errorf("handlers: %s", got)
	}
	found := false
	for _, d := range p.Vars {
		found = found || d.Name == "app_dir" && d.Default
	}
	if !found {
		t.Error("the role's defaults are not among the play's vars")
	}
	if err := pb.Check(map[string]bool{}); err != nil {
		t.Errorf("check: %v", err)
	}
}

// A role that depends on a role nobody has fails to load, at the line of
// the dependency; so does a missing tasks_from file.
func TestRoleMissingDependency(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"site.yml":                 "- hosts: all\n  roles: [app]\n  tasks:\n    - include_role: {name: app, tasks_from: nope}\n",
		"roles/app/meta/main.yml":  "dependencies:\n  - role: missing\n",
		"roles/app/tasks/main.yml": "- fx_shell: 'true'\n",
	})
	_, err := Load(filepath.Join(dir, "site.yml"), nil)
	if err == nil {
		t.Fatal("a missing dependency loaded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "main.yml:2:5: role \"missing\" not found") {
		t.Errorf("missing dependency: %v", msg)
	}
	if !strings.Contains(msg, `tasks_from: "nope" not found`) {
		t.Errorf("missing tasks_from: %v", msg)
	}
}

// Roles are found through roles_path in ansible.cfg (relative to it), or
// ANSIBLE_ROLES_PATH, as Ansible finds them; those variables (and HOME)
// come from the environment Load is given, never the process's.
func TestRolesPath(t *testing.T) {
	// The process's own environment points elsewhere: it must not count.
	t.Setenv("ANSIBLE_ROLES_PATH", filepath.Join(t.TempDir(), "nowhere"))
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"play/site.yml":                      "- hosts: all\n  roles: [shared]\n",
		"play/ansible.cfg":                   "[defaults]\nhost_key_checking = False\nroles_path = ../galaxy:../lib/roles\n",
		"lib/roles/shared/tasks/main.yml":    "- {name: shared task, fx_shell: 'true'}\n",
		"other/roles/envrole/tasks/main.yml": "- {name: env task, fx_shell: 'true'}\n",
	})
	pb, err := Load(filepath.Join(dir, "play", "site.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := taskNames(pb.Plays[0].HostTasks()); got != "shared task" {
		t.Errorf("roles_path: %s", got)
	}
	writeTree(t, dir, map[string]string{"play/env.yml": "- hosts: all\n  roles: [envrole]\n"})
	if _, err := Load(filepath.Join(dir, "play", "env.yml"), nil); err == nil {
		t.Error("a role outside roles_path was found")
	}
	pb, err = Load(filepath.Join(dir, "play", "env.yml"), []string{"ANSIBLE_ROLES_PATH=" + filepath.Join(dir, "other", "roles")})
	if err != nil {
		t.Fatal(err)
	}
	if got := taskNames(pb.Plays[0].HostTasks()); got != "env task" {
		t.Errorf("ANSIBLE_ROLES_PATH: %s", got)
	}
	// ANSIBLE_CONFIG names the ansible.cfg to read, and HOME expands ~/.
	writeTree(t, dir, map[string]string{"cfg/ansible.cfg": "[defaults]\nroles_path = ~/other/roles\n"})
	pb, err = Load(filepath.Join(dir, "play", "env.yml"), []string{"ANSIBLE_CONFIG=" + filepath.Join(dir, "cfg", "ansible.cfg"), "HOME=" + dir})
	if err != nil {
		t.Fatal(err)
	}
	if got := taskNames(pb.Plays[0].HostTasks()); got != "env task" {
		t.Errorf("ANSIBLE_CONFIG: %s", got)
	}
}

package playbooks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
)

// import_playbook entries are replaced by the imported playbook's plays, in
// order, with the entry's vars and tags; imports nest; the imported
// playbook's task files are found beside it.
func TestImportPlaybook(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"site.yml": `
- name: prepare
  hosts: all
  tasks:
    - fx_shell: echo prepare
- name: health
  import_playbook: sub/health.yml
  vars: {port: 443}
  tags: [health]
- ansible.builtin.import_playbook: sub/last.yml
`,
		"sub/health.yml": `
- hosts: app
  vars: {port: 80, path: /ping}
  tasks:
    - include_tasks: tasks/check.yml
- import_playbook: last.yml
`,
		"sub/tasks/check.yml": "- fx_shell: curl localhost:{{ port }}{{ path }}\n",
		"sub/last.yml":        "- hosts: db\n  tasks:\n    - fx_shell: echo last\n",
	})
	pb, err := Load(filepath.Join(dir, "site.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, p := range pb.Plays {
		hosts = append(hosts, p.Hosts)
	}
	if got := strings.Join(hosts, ","); got != "all,app,db,db" {
		t.Fatalf("plays on %s, want all,app,db,db", got)
	}
	app := pb.Plays[1]
	var vars []string
	for _, v := range app.Vars {
		vars = append(vars, v.Name)
	}
	// the entry's vars come first: the play's own vars of the same name win
	if got := strings.Join(vars, ","); got != "port,port,path" {
		t.Errorf("vars %s, want port,port,path", got)
	}
	if strings.Join(app.Tags, ",") != "health" || strings.Join(pb.Plays[2].Tags, ",") != "health" || len(pb.Plays[3].Tags) != 0 {
		t.Errorf("tags %v %v %v", app.Tags, pb.Plays[2].Tags, pb.Plays[3].Tags)
	}
	if len(app.Tasks) != 1 || app.Tasks[0].Include != "include_tasks" {
		t.Errorf("tasks of the imported play: %+v", app.Tasks)
	}
	if err := pb.Check(map[string]bool{}); err != nil {
		t.Errorf("check: %v", err)
	}
}

func TestImportPlaybookErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"site.yml": `
- import_playbook: missing.yml
- import_playbook: "{{ which }}.yml"
- import_playbook: ok.yml
  when: deploy
  serial: 2
- import_playbook: loop.yml
- hosts: all
  tasks:
    - import_playbook: ok.yml
`,
		"ok.yml":   "- hosts: all\n",
		"loop.yml": "- import_playbook: loop.yml\n",
	})
	_, err := Load(filepath.Join(dir, "site.yml"), nil)
	var list diag.List
	if !errors.As(err, &list) {
		t.Fatalf("err = %v", err)
	}
	var got []string
	for _, e := range list {
		got = append(got, filepath.Base(e.Pos.File)+":"+strings.TrimPrefix(e.Pos.String(), e.Pos.File+":")+" "+e.Msg)
	}
	want := []string{
		`loop.yml:1:20 import_playbook: playbooks import each other too deeply`, // problems come in file order
		`site.yml:2:20 import_playbook: open ` + filepath.Join(dir, "missing.yml") + `: no such file or directory`,
		`site.yml:3:20 import_playbook: {{ }} in a file name is not supported`,
		`site.yml:5:3 when: on import_playbook is not supported`,
		`site.yml:6:3 unknown import_playbook key "serial"`,
		`site.yml:10:7 module "import_playbook" is not supported by ferry`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A task file not beside the file that includes it is looked for in the
// playbook's directory (Ansible's search path), and a problem in a file
// included twice is reported once.
func TestIncludeFromPlaybookDirOnce(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"site.yml": `
- hosts: db
  tasks:
    - include_tasks: tasks/update.yml
- hosts: app
  tasks:
    - include_tasks: tasks/update.yml
`,
		"tasks/update.yml": "- import_tasks: tasks/stop.yml\n- fx_shell: echo\n  bogus: 1\n",
		"tasks/stop.yml":   "- fx_shell: echo stop\n",
	})
	_, err := Load(filepath.Join(dir, "site.yml"), nil)
	var list diag.List
	if !errors.As(err, &list) {
		t.Fatalf("err = %v", err)
	}
	if len(list) != 1 || !strings.Contains(list[0].Msg, `"bogus"`) || list[0].Pos.Line != 3 {
		t.Errorf("want one error for bogus at update.yml:3, got %v", err)
	}
}

// command/shell accept Ansible's old warn: and ignore it; parameters that
// ferry accepts and ignores are dropped for the short name as for the FQCN.
func TestCommandWarnIgnored(t *testing.T) {
	pb, err := Parse("pb.yml", []byte(`- hosts: all
  tasks:
    - command: yum check-update
      args:
        warn: no
    - shell: "ls | wc -l"
      args: {warn: false, chdir: /tmp}
    - ansible.builtin.command:
        cmd: uptime
        warn: true
    - lineinfile: {path: /etc/a, line: x, unsafe_writes: yes}
    - systemd: {name: api, state: restarted, no_block: yes}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range pb.Plays[0].Tasks {
		for _, k := range []string{"warn", "unsafe_writes", "no_block"} {
			if _, ok := task.Args[k]; ok {
				t.Errorf("%s: %s kept: %v", task.Module, k, task.Args)
			}
		}
	}
	if pb.Plays[0].Tasks[1].Args["chdir"] != "/tmp" {
		t.Errorf("shell args: %v", pb.Plays[0].Tasks[1].Args)
	}
}

// The imported plays run in order, on their own hosts, with the entry's vars;
// a task file of the imported playbook reads a file beside it (template src).
func TestImportPlaybookRuns(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"site.yml": `
- hosts: h1
  tasks:
    - shell: echo first >> {{ outdir }}/order
      delegate_to: localhost
- import_playbook: sub/deploy.yml
  vars: {colour: blue}
`,
		"sub/deploy.yml": `
- hosts: app
  serial: 2
  tasks:
    - include_tasks: tasks/mark.yml
`,
		"sub/tasks/mark.yml":    "- template: {src: note.j2, dest: \"{{ outdir }}/{{ inventory_hostname }}\"}\n  delegate_to: localhost\n- shell: echo {{ inventory_hostname }} >> {{ outdir }}/order\n  delegate_to: localhost\n",
		"sub/templates/note.j2": "{{ colour }} {{ inventory_hostname }}\n",
	})
	out := t.TempDir()
	pb, err := Load(filepath.Join(dir, "site.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	res := NewRunner(pb, Options{Inventory: hostsInv(t, 3), Connector: nopConnector{}, Sink: rec, RunID: "t",
		Extra: map[string]any{"outdir": out}}).Run(context.Background())
	if res.ExitCode != exitcode.OK {
		for _, e := range rec.kinds(events.TaskEnd) {
			t.Logf("%s %s %s: %s", e.Host, e.Task, e.Status, e.Msg)
		}
		t.Fatalf("exit %d", res.ExitCode)
	}
	b, _ := os.ReadFile(filepath.Join(out, "order"))
	lines := strings.Fields(string(b))
	if len(lines) != 4 || lines[0] != "first" {
		t.Errorf("order %q: want the first play, then the imported one on h1..h3", lines)
	}
	for _, h := range []string{"h1", "h2", "h3"} {
		b, err := os.ReadFile(filepath.Join(out, h))
		if err != nil || strings.TrimSpace(string(b)) != "blue "+h {
			t.Errorf("%s: %q, %v", h, b, err)
		}
	}
}

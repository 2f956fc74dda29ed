package playbooks

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/tasks"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// An Ansible-style playbook: roles with defaults and handlers, include_tasks,
// block/rescue/always, notify + handlers (once, at the end), run_once,
// local_action, with_items, loop_control, task vars and key=value strings.
func TestRunnerAnsibleFlow(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"site.yml": `
- hosts: app
  serial: 2
  vars_files: [vars/common.yml]
  roles:
    - role: web
      port: 9090
  tasks:
    - include_tasks: more.yml
    - name: block with rescue
      block:
        - debug: msg="in block"
        - fail: msg=boom
        - name: never
          debug: msg=never
      rescue:
        - set_fact: rescued=yes
      always:
        - set_fact:
            always_ran: true
    - name: once
      set_fact: {picked: "{{ inventory_hostname }}"}
      run_once: true
      register: once_result
    - name: on the controller
      local_action: shell echo "{{ greeting }} from {{ inventory_hostname }}" > {{ outdir }}/{{ inventory_hostname }}.txt chdir=/tmp
    - name: loop with items
      debug: msg="{{ svc }}"
      with_items: "{{ services }}"
      loop_control: {loop_var: svc}
    - name: task vars
      assert:
        that: "local_x ~ '' == 'lx' and rescued == 'yes' and always_ran and role_default == 'dflt' and web_port == 9090"
      vars: {local_x: lx}
    - name: changed
      debug: var=greeting
      changed_when: true
      notify: [restart app, log]
    - name: changed again
      debug: var=greeting
      changed_when: true
      notify: restart app
  handlers:
    - name: restart app
      set_fact: {restarts: "{{ (restarts | default(0)) + 1 }}"}
    - name: log handler
      listen: log
      shell: echo handled >> {{ outdir }}/{{ inventory_hostname }}.handled
      delegate_to: localhost
`,
		"vars/common.yml":             "greeting: hello\nservices: [api, worker]\n",
		"more.yml":                    "- name: included\n  set_fact: {included: true}\n",
		"roles/web/defaults/main.yml": "role_default: dflt\nweb_port: 80\n",
		"roles/web/tasks/main.yml":    "- name: role task\n  set_fact: {web_port: \"{{ port }}\"}\n  notify: role handler\n  changed_when: true\n",
		"roles/web/handlers/main.yml": "- name: role handler\n  set_fact: {role_handled: true}\n",
	})
	out := t.TempDir()
	pb, err := Load(filepath.Join(dir, "site.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	opts := Options{Inventory: hostsInv(t, 3), Connector: nopConnector{}, Sink: rec, RunID: "t",
		Extra: map[string]any{"outdir": out}}
	res := NewRunner(pb, opts).Run(context.Background())
	if res.ExitCode != exitcode.OK {
		for _, e := range rec.kinds(events.TaskEnd) {
			if e.Status == events.StatusFailed {
				t.Logf("%s %s: %s", e.Host, e.Task, e.Msg)
			}
		}
		t.Fatalf("exit %d", res.ExitCode)
	}
	ran := map[string]int{}
	var onceHosts []string
	for _, e := range rec.kinds(events.TaskEnd) {
		ran[e.Task]++
		if e.Task == "once" && e.Status != events.StatusSkipped {
			onceHosts = append(onceHosts, e.Host)
		}
	}
	if ran["never"] != 0 {
		t.Error("a task after the failing one in the block ran")
	}
	if ran["restart app"] != 3 || ran["log handler"] != 3 || ran["role handler"] != 3 {
		t.Errorf("handlers ran %d/%d/%d times, want once per host (3)", ran["restart app"], ran["log handler"], ran["role handler"])
	}
	if len(onceHosts) != 2 { // serial 2: batches of 2 and 1, once per batch
		t.Errorf("run_once ran on %v, want one host per batch", onceHosts)
	}
	for _, h := range []string{"h1", "h2", "h3"} {
		b, err := os.ReadFile(filepath.Join(out, h+".txt"))
		if err != nil || strings.TrimSpace(string(b)) != "hello from "+h {
			t.Errorf("local_action on %s: %q, %v", h, b, err)
		}
		b, err = os.ReadFile(filepath.Join(out, h+".handled"))
		if err != nil || strings.Count(string(b), "handled") != 1 {
			t.Errorf("listen handler for %s: %q, %v", h, b, err)
		}
	}
}

func TestLoadAnsibleArgStrings(t *testing.T) {
	pb, err := Parse("pb.yml", []byte(`
- hosts: all
  tasks:
    - shell: echo hi chdir=/tmp creates=/x
    - command: echo a=b
    - debug: var=result
    - debug: msg="hello {{ name }}"
    - ansible.builtin.service: name=api state=restarted
    - action: copy src=a dest=/b mode=0644
    - ansible.builtin.uri:
        url: http://127.0.0.1:8080/
        return_content: yes
        status_code: 200
    - copy:
      args: {content: x, dest: /y}
    - notify: {webhook: "https://hooks.example/x", text: deployed}
    - ansible.builtin.lineinfile: path=/etc/app.conf regexp=^port= line=port=8080 backup=yes unsafe_writes=yes
`))
	if err != nil {
		t.Fatal(err)
	}
	ts := pb.Plays[0].Tasks
	check := func(i int, mod string, want map[string]any) {
		t.Helper()
		if ts[i].Module != mod {
			t.Errorf("task %d: module %s, want %s", i, ts[i].Module, mod)
		}
		for k, v := range want {
			if ts[i].Args[k] != v {
				t.Errorf("task %d: %s = %#v, want %#v (args %v)", i, k, ts[i].Args[k], v, ts[i].Args)
			}
		}
	}
	check(0, "shell", map[string]any{"cmd": "echo hi", "chdir": "/tmp", "creates": "/x"})
	check(1, "command", map[string]any{"cmd": "echo a=b"})
	check(2, "debug", map[string]any{"var": "result"})
	check(3, "debug", map[string]any{"msg": "hello {{ name }}"})
	check(4, "systemd", map[string]any{"name": "api", "state": "restarted"})
	check(5, "copy", map[string]any{"src": "a", "dest": "/b", "mode": "0644"})
	check(6, "http", map[string]any{"url": "http://127.0.0.1:8080/", "status": 200})
	check(7, "copy", map[string]any{"content": "x", "dest": "/y"})
	// ferry's former Slack module keeps working, with a warning
	check(8, "webhook", map[string]any{"url": "https://hooks.example/x", "text": "deployed"})
	check(9, "lineinfile", map[string]any{"path": "/etc/app.conf", "regexp": "^port=", "line": "port=8080", "backup": "yes"})
	if _, ok := ts[9].Args["unsafe_writes"]; ok {
		t.Errorf("unsafe_writes kept: %v", ts[9].Args)
	}
	if len(pb.Warnings) != 1 || !strings.Contains(pb.Warnings[0].Msg, "now called webhook") {
		t.Errorf("warnings: %v", pb.Warnings)
	}
}

func FuzzSplitKV(f *testing.F) {
	for _, s := range []string{`a=b c="d e" {{ x }}`, `msg='it''s'`, `"unterminated`, `k={{ a | default("x y") }} z`, `a=\"b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks, err := splitKV(s)
		if err != nil {
			return
		}
		for _, tok := range toks {
			if tok.raw == "" || tok.off < 0 || tok.off+len(tok.raw) > len(s) || s[tok.off:tok.off+len(tok.raw)] != tok.raw {
				t.Fatalf("token %+v does not match the input %q", tok, s)
			}
			_, _, _ = tok.kv()
		}
	})
}

type userConnector struct {
	mu    sync.Mutex
	users map[string]string
}

func (c *userConnector) Connect(_ context.Context, h *inventory.Host) (tasks.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users[h.Name] = h.User()
	return nopConn{}, nil
}

// remote_user is the login of hosts whose inventory names none.
func TestRunnerRemoteUser(t *testing.T) {
	inv := inventory.New()
	inv.AddHost(&inventory.Host{Name: "h1", Vars: map[string]any{}}, "app")
	pb, err := Parse("pb.yml", []byte("- hosts: app\n  remote_user: ops\n  tasks:\n    - debug: msg=hi\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := &userConnector{users: map[string]string{}}
	res := NewRunner(pb, Options{Inventory: inv, Connector: c, Sink: &recorder{}, RunID: "t"}).Run(context.Background())
	if res.ExitCode != exitcode.OK || c.users["h1"] != "ops" {
		t.Fatalf("exit %d, login %q, want ops", res.ExitCode, c.users["h1"])
	}
}

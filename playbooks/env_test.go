package playbooks

import (
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
)

// environment: names are exported in a shell on the host, so anything but a
// variable name is refused at load time, with its position.
func TestEnvironmentKeysValidated(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"- hosts: all\n  environment: {\"A;id\": x}\n  tasks: []\n", `pb.yml:2:17: environment: "A;id" is not a variable name`},
		{"- hosts: all\n  tasks:\n    - fx_shell: echo\n      environment:\n        1X: y\n", `pb.yml:5:9: environment: "1X" is not a variable name`},
		{"- hosts: all\n  tasks:\n    - fx_shell: echo\n      environment: {\"$(id)\": y}\n", `pb.yml:4:21: environment: "$(id)" is not a variable name`},
	} {
		_, err := Parse("pb.yml", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %s", tc.src, err, tc.want)
		}
	}
	if _, err := Parse("pb.yml", []byte("- hosts: all\n  environment: {DB_PASSWORD: x, _a1: y}\n  tasks: []\n")); err != nil {
		t.Fatal(err)
	}
}

// A command on the controller (delegate_to: localhost) runs with the
// environment the runner was given, without ferry's own secrets, never with
// the process's.
func TestLocalCommandsSeeTheGivenEnvironment(t *testing.T) {
	t.Setenv("FROM_PROCESS", "leaked")
	res, rec := runPB(t, `
- hosts: app
  tasks:
    - shell: echo "${GREETING:-}-${FERRY_BECOME_PASSWORD:-}-${FROM_PROCESS:-}"
      delegate_to: localhost
      register: out
    - fail: {msg: "the local command saw {{ out.stdout }}"}
      when: out.stdout != 'hi--'
`, 1, func(o *Options) {
		o.Environ = []string{"PATH=/usr/bin:/bin", "GREETING=hi", "FERRY_BECOME_PASSWORD=hunter2"}
	})
	if res.ExitCode != exitcode.OK {
		for _, e := range rec.kinds(events.TaskEnd) {
			t.Log(e.Task, e.Status, e.Msg)
		}
		t.Fatalf("exit %d", res.ExitCode)
	}
}

// environment: "{{ app_env }}" takes the whole mapping from a variable (the
// f500.project_deploy role's `environment: "{{ project_environment }}"`),
// with a task's own names over its block's; a value that is not a mapping,
// or a name that is not a variable name, fails the task.
func TestEnvironmentFromVariable(t *testing.T) {
	res, rec := runPB(t, `
- hosts: app
  vars:
    app_env: {RAILS_ENV: production, PORT: 8080}
    bad_env: {"A;id": x}
  environment: {FROM_PLAY: p}
  tasks:
    - fx_env:
      environment: "{{ app_env }}"
      register: one
    - block:
        - fx_env:
          environment: {PORT: "9090"}
          register: two
      environment: "{{ app_env }}"
    - assert:
        that:
          - "one.env == {'RAILS_ENV': 'production', 'PORT': '8080', 'FROM_PLAY': 'p'}"
          - two.env.PORT == '9090' and two.env.RAILS_ENV == 'production'
    - fx_env:
      environment: "{{ 'not a map' }}"
      ignore_errors: true
      register: notmap
    - fx_env:
      environment: "{{ bad_env }}"
      ignore_errors: true
      register: badname
`, 1, nil)
	if res.ExitCode != 0 {
		for _, e := range rec.evs {
			if e.Msg != "" {
				t.Log(e.Host, e.Task, e.Msg)
			}
		}
		t.Fatalf("exit %d", res.ExitCode)
	}
	var msgs []string
	for _, e := range rec.evs {
		msgs = append(msgs, e.Msg)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"environment: want a mapping, not string", `environment: "A;id" is not a variable name`} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in %s", want, all)
		}
	}
	if _, err := Parse("pb.yml", []byte("- hosts: all\n  tasks:\n    - fx_env:\n      environment: \"{{ nope }}\"\n")); err != nil {
		t.Fatalf("parse: %v", err)
	}
}

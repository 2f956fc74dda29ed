package playbooks

import (
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
)

const rescuePB = `
- hosts: app
  tasks:
    - block:
        - name: Break
          fail: {msg: boom}
      rescue:
        - name: Report
          assert:
            that:
              - ansible_failed_task.name == 'Break'
              - ansible_failed_task.action == 'fail'
              - ansible_failed_result.msg == 'boom'
              - ansible_failed_result.failed
        - name: Jinja too
          debug: {msg: "{{ ansible_failed_task.name }} failed: {{ ansible_failed_result.msg }}"}
`

// Ansible's ansible_failed_task and ansible_failed_result exist in a
// rescue: section: at run time, and for check.
func TestRescueSeesFailedTask(t *testing.T) {
	res, rec := runPB(t, rescuePB, 1, nil)
	if res.ExitCode != exitcode.OK {
		for _, e := range rec.kinds(events.TaskEnd) {
			t.Logf("%s %s: %s %s", e.Host, e.Task, e.Status, e.Msg)
		}
		t.Fatalf("exit %d, want 0 (rescued)", res.ExitCode)
	}
	var msg string
	for _, e := range rec.kinds(events.TaskEnd) {
		if e.Task == "Jinja too" {
			msg = e.Msg
		}
	}
	if !strings.Contains(msg, "Break failed: boom") {
		t.Errorf("debug in rescue said %q", msg)
	}

	pb, err := Parse("test.yml", []byte(rescuePB))
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Check(map[string]bool{}); err != nil {
		t.Errorf("check: %v", err)
	}
	// Outside a rescue they are still undefined.
	pb, err = Parse("test.yml", []byte("- hosts: app\n  tasks:\n    - debug: {msg: \"{{ ansible_failed_task.name }}\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Check(map[string]bool{}); err == nil || !strings.Contains(err.Error(), `undefined variable "ansible_failed_task"`) {
		t.Errorf("check outside rescue: %v, want undefined variable", err)
	}
}

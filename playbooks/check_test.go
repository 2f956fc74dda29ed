package playbooks

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
)

func TestCheck(t *testing.T) {
	src := `- hosts: all
  vars:
    version: "{{ extra.version ?? 'dev' }}"
    url: "http://{{ host.address }}/{{ versoin }}"
  tasks:
    - fx_shell: echo {{ verison }}
    - fx_shell: echo {{ item }}
    - fx_shell: echo {{ out.stdout }}
    - fx_shell: echo {{ unknown_var ?? 'x' }} {{ region }}
      register: out
      until: out.rc == 0
    - fx_shell: echo {{ item }} {{ out.rc }} {{ fact }}
      loop: [1, 2]
      when: out.rc == 0 and missing_in_when
    - set_fact: {fact: 1}
    - fx_assert:
        that: [fact == 1, "outt.rc == 0"]
  after:
    - fx_debug: {msg: "{{ out.rc }}"}
`
	pb, err := Parse("pb.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Check(nil); err != nil {
		t.Errorf("Check(nil) must not guess about inventory variables: %v", err)
	}
	err = pb.Check(map[string]bool{"region": true})
	var list diag.List
	if !errors.As(err, &list) {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		`4:40: undefined variable "versoin" | did you mean "version"?`,
		`6:25: undefined variable "verison" | did you mean "version"?`,
		`7:25: undefined variable "item" | exists only in a task with`,
		`8:25: undefined variable "out" | set by a task that runs later (line 9)`,
		`12:49: undefined variable "fact" | set by a task that runs later (line 15)`,
		`14:29: undefined variable "missing_in_when" | define it in vars`,
		`17:28: undefined variable "outt" | did you mean "out"?`,
		`19:27: undefined variable "out" | before/after run once on the controller`,
	}
	if len(list) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i, w := range want {
		pos, rest, _ := strings.Cut(w, ": ")
		msg, hint, _ := strings.Cut(rest, " | ")
		e := list[i]
		got := strings.TrimPrefix(e.Pos.String(), "pb.yml:")
		if got != pos || e.Msg != msg || !strings.Contains(e.Hint, hint) || e.Snippet == "" {
			t.Errorf("error %d = %s: %s | %s\nwant %s", i, got, e.Msg, e.Hint, w)
		}
	}
}

// A task guarded by `when: x is defined` may read x: Ansible skips it when x
// is missing. The guard covers that task only.
func TestCheckDefinedGuard(t *testing.T) {
	src := `- hosts: all
  tasks:
    - fx_shell: "yum update --releasever={{ releasever }}"
      when: releasever is defined
    - fx_shell: "echo {{ repos }} {{ other }}"
      when: repos is defined and repos | length > 0
    - block:
        - fx_shell: "echo {{ key }}"
      when: key is defined
    - fx_shell: "echo {{ releasever }}"
    - fx_shell: "echo {{ either }}"
      when: either is defined or releasever is defined
`
	pb, err := Parse("pb.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var list diag.List
	if !errors.As(pb.Check(map[string]bool{}), &list) {
		t.Fatal("no errors")
	}
	var got []string
	for _, e := range list {
		got = append(got, strings.TrimPrefix(e.Pos.String(), "pb.yml:")+" "+e.Msg)
	}
	want := []string{`5:38 undefined variable "other"`, `10:26 undefined variable "releasever"`, `11:26 undefined variable "either"`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

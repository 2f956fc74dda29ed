package playbooks

import (
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
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
		tpl, err := CompileTemplate(c.src, diag.Pos{})
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

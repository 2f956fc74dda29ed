package playbooks

import (
	"strings"
	"testing"
)

// with_nested and with_subelements, through a whole run.
func TestWithNestedAndSubelements(t *testing.T) {
	res, rec := runPB(t, `- hosts: app
  vars:
    envs: [dev, prod]
    users: [{name: a, keys: [k1, k2]}, {name: b}]
  tasks:
    - set_fact: {p: "{{ item[0] ~ '-' ~ item[1] }}"}
      with_nested: ["{{ envs }}", [x, y]]
      register: pairs
    - set_fact: {k: "{{ item.0.name ~ ':' ~ item.1 }}"}
      with_subelements: ["{{ users }}", keys, {skip_missing: true}]
      register: keys
    - assert:
        that:
          - "pairs.results | map(attribute='ansible_facts') | map(attribute='p') | list == ['dev-x', 'dev-y', 'prod-x', 'prod-y']"
          - "keys.results | map(attribute='ansible_facts') | map(attribute='k') | list == ['a:k1', 'a:k2']"
`, 1, nil)
	if res.ExitCode != 0 {
		for _, e := range rec.evs {
			if e.Msg != "" {
				t.Log(e.Task, e.Msg)
			}
		}
		t.Fatalf("exit %d", res.ExitCode)
	}
}

// An unknown lookup fails when the playbook loads (ferry check), at its
// position, not when the task runs.
func TestUnknownLookupAtLoad(t *testing.T) {
	_, err := Parse("site.yml", []byte("- hosts: all\n  tasks:\n    - fx_debug: {msg: \"{{ lookup('aws_ssm', 'x') }}\"}\n"))
	if err == nil || !strings.Contains(err.Error(), `lookup("aws_ssm") is not supported`) || !strings.Contains(err.Error(), "site.yml:3:") {
		t.Errorf("unknown lookup: %v", err)
	}
}

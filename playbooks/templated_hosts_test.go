package playbooks

import "testing"

// hosts: may be a template, rendered with -e (and the group all's variables).

func TestTemplatedHosts(t *testing.T) {
	res, rec := runPB(t, "- hosts: \"{{ target | default('app') }}\"\n  tasks:\n    - assert: {that: \"inventory_hostname == 'h1'\"}\n", 2, func(o *Options) { o.Extra = map[string]any{"target": "h1"} })
	if res.ExitCode != 0 || len(res.Recap) != 1 {
		t.Fatalf("exit %d recap %v %v", res.ExitCode, res.Recap, rec.evs)
	}
}

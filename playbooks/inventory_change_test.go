package playbooks

import (
	"slices"
	"sort"
	"testing"

	"github.com/ferrydeploy/ferry/inventory"
)

// group_by and add_host change the run's inventory: a later play's hosts:
// pattern selects the group made by group_by and the host made by add_host
// (with its variables), and add_host runs once per batch as in Ansible.
func TestRunnerGroupByAddHost(t *testing.T) {
	pb, err := Parse("test.yml", []byte(`
- name: sort
  hosts: app
  serial: 2
  tasks:
    - name: by role
      group_by: {key: "role_{{ role }}", parents: [roles]}
    - name: new host
      add_host: {name: extra, groups: late, ansible_host: 10.0.0.9, color: blue}
- name: later
  hosts: role_web:late
  tasks:
    - name: see
      assert: {that: "inventory_hostname == 'h1' or (ansible_host == '10.0.0.9' and color == 'blue')"}
- name: parents
  hosts: roles:!role_web
  tasks:
    - name: db
      debug: msg=db
`))
	if err != nil {
		t.Fatal(err)
	}
	inv := inventory.New()
	for _, h := range []struct{ name, role string }{{"h1", "web"}, {"h2", "db"}, {"h3", "db"}} {
		inv.AddHost(&inventory.Host{Name: h.name, Vars: map[string]any{"role": h.role}}, "app")
	}
	ran := runOK(t, pb, Options{Inventory: inv, Connector: nopConnector{}, RunID: "t"})
	for task, want := range map[string][]string{
		"by role": {"h1", "h2", "h3"},
		"see":     {"extra", "h1"},
		"db":      {"h2", "h3"},
	} {
		got := ran[task]
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s ran on %v, want %v", task, got, want)
		}
	}
	// once per batch (batches [h1 h2] and [h3]), on whichever host comes first
	if got := ran["new host"]; len(got) != 2 || !slices.Contains(got, "h3") {
		t.Errorf("add_host ran on %v, want one host of each batch", got)
	}
}

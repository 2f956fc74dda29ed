package playbooks

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/tasks"
)

// localConnector records which hosts it was asked to reach as the controller.
type localConnector struct{ local []string }

func (c *localConnector) Connect(_ context.Context, h *inventory.Host) (tasks.Conn, error) {
	if h.Local() {
		c.local = append(c.local, h.Name)
	}
	return nopConn{}, nil
}

// The usual shape of an AWS playbook: a first play on localhost (absent
// from the inventory: Ansible's implicit localhost) finds hosts and adds
// them with add_host, then a play deploys to them and to the inventory's
// hosts. localhost runs on the controller, sees group all's variables, and
// its facts reach later plays through hostvars['localhost'].
func TestRunnerImplicitLocalhostPlay(t *testing.T) {
	pb, err := Parse("test.yml", []byte(`
- name: find
  hosts: localhost
  gather_facts: false
  tasks:
    - name: look up
      set_fact: {found: [new0, new1]}
    - name: add
      add_host: {name: "{{ item }}", groups: launched}
      loop: "{{ found }}"
    - name: where
      assert: {that: ["inventory_hostname == 'localhost'", "region == 'eu-west-1'", "group_names == []"]}
- name: deploy
  hosts: app:launched
  gather_facts: false
  tasks:
    - name: see
      assert: {that: "hostvars['localhost'].found | length == 2"}
- name: everyone
  hosts: all
  gather_facts: false
  tasks:
    - name: all
      debug: msg=hi
`))
	if err != nil {
		t.Fatal(err)
	}
	inv := inventory.New()
	inv.SetGroupVars("all", map[string]any{"region": "eu-west-1"})
	inv.AddHost(&inventory.Host{Name: "app1"}, "app")
	conn := &localConnector{}
	ran := runOK(t, pb, Options{Inventory: inv, Connector: conn, RunID: "t"})
	for task, want := range map[string][]string{
		"look up": {"localhost"},
		"where":   {"localhost"},
		"see":     {"app1", "new0", "new1"},
		"all":     {"app1", "new0", "new1"}, // all never includes the implicit localhost
	} {
		got := ran[task]
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s ran on %v, want %v", task, got, want)
		}
	}
	if !slices.Equal(conn.local, []string{"localhost"}) {
		t.Errorf("reached as the controller: %v, want [localhost]", conn.local)
	}
}

// `connection: local` on a play on localhost (how most AWS playbooks open)
// is taken: the play runs on the controller. On other hosts it is refused
// at load, and a listed localhost that connects over SSH is refused before
// anything runs.
func TestConnectionLocalPlay(t *testing.T) {
	pb, err := Parse("test.yml", []byte("- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n    - debug: {msg: hi}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !pb.Plays[0].Local {
		t.Errorf("connection: local on localhost: Local = false")
	}
	inv := inventory.New()
	inv.AddHost(&inventory.Host{Name: "app1"}, "app")
	conn := &localConnector{}
	if res := NewRunner(pb, Options{Inventory: inv, Connector: conn, Sink: &recorder{}, RunID: "t"}).Run(context.Background()); res.ExitCode != exitcode.OK || len(conn.local) != 1 {
		t.Errorf("implicit localhost with connection: local: exit %d, local connections %v", res.ExitCode, conn.local)
	}

	if _, err := Parse("test.yml", []byte("- hosts: app\n  connection: local\n  tasks:\n    - debug: {msg: hi}\n")); err == nil || !strings.Contains(err.Error(), "test.yml:2:15") {
		t.Errorf("connection: local on app: %v, want refused at its position", err)
	}

	listed := inventory.New()
	listed.AddHost(&inventory.Host{Name: "localhost", Vars: map[string]any{"ansible_host": "10.0.0.5"}}, "ctl")
	rec := &recorder{}
	res := NewRunner(pb, Options{Inventory: listed, Connector: &localConnector{}, Sink: rec, RunID: "t"}).Run(context.Background())
	if res.ExitCode != exitcode.Invalid {
		t.Errorf("listed localhost over SSH under connection: local: exit %d, want %d", res.ExitCode, exitcode.Invalid)
	}
	if ends := rec.kinds(events.RunEnd); len(ends) != 1 || !strings.Contains(ends[0].Msg, "set ansible_connection=local") {
		t.Errorf("run end %+v, want the fix named", ends)
	}
}

package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
)

// The shape of most AWS playbooks: a first play on localhost, which the
// inventory does not list (Ansible's implicit localhost), runs a command on
// the controller, keeps what it found with set_fact and adds the hosts with
// add_host; the next play deploys to them over SSH and reads the finding
// through hostvars['localhost']. check passes, the localhost play runs on
// the controller (no SSH: nothing listens there), and the deploy lock is
// on the environment's hosts, never on the implicit localhost (no root is
// needed on the controller).
func TestLabImplicitLocalhostPlay(t *testing.T) {
	t.Parallel()
	l := lab.StartT(t, lab.Options{Hosts: 2})
	isolate(t)
	dir := t.TempDir()
	app := fmt.Sprintf("ferry-test-localhost-%d", os.Getpid()) // its own state file on this shared machine
	found := filepath.Join(dir, "found.txt")
	os.WriteFile(found, []byte(l.Hosts[0].Name+"\n"+l.Hosts[1].Name+"\n"), 0o600)
	marker := filepath.Join(dir, "ran-on-the-controller")
	pb := filepath.Join(dir, "site.yml")
	os.WriteFile(pb, []byte(fmt.Sprintf(`- name: find the hosts
  hosts: localhost
  gather_facts: false
  vars: {app: %[1]s}
  tasks:
    - name: ask
      command: cat %[2]s
      register: listing
    - name: keep
      set_fact: {targets: "{{ listing.stdout_lines }}"}
    - name: add
      add_host: {name: "{{ item }}", groups: targets}
      loop: "{{ targets }}"
    - name: mark
      command: touch %[3]s
- name: deploy
  hosts: targets
  gather_facts: false
  vars: {app: %[1]s}
  tasks:
    - name: write
      shell: echo "{{ hostvars['localhost'].targets | join(',') }}" > /tmp/%[1]s
`, app, found, marker)), 0o600)
	state := filepath.Join("/var/lib/ferry", app+".json")
	if _, err := os.Stat(state); err == nil {
		t.Fatalf("%s exists before the run", state)
	}
	env := []string{"FERRY_KNOWN_HOSTS=" + l.KnownHosts}

	r := ferry(t, env, "check", "-i", l.Inventory, pb)
	if r.code != 0 || !strings.Contains(r.stdout, `play "find the hosts": 1 hosts`) {
		t.Fatalf("check: exit %d, want 0 with localhost as the first play's host", r.code)
	}
	t.Cleanup(func() { os.Remove("/tmp/" + app) }) // in case the lab's /tmp is the machine's
	// -l localhost: the controller's play alone (the hosts it adds are
	// outside the limit, as with Ansible's --limit).
	r = ferry(t, env, "run", pb, "-i", l.Inventory, "-l", "localhost", "--output", "plain")
	if r.code != 0 || !strings.Contains(r.stdout, "localhost | mark: changed") {
		t.Fatalf("-l localhost: exit %d, want 0 with the localhost play run", r.code)
	}
	if !strings.Contains(r.stdout, `play "deploy" (hosts: targets): no host matched within the limit "localhost": skipped`) {
		t.Errorf("-l localhost: the skipped deploy play is not reported")
	}
	for _, h := range l.Hosts {
		if out, _ := l.Exec(context.Background(), h.Name, "cat /tmp/"+app+" 2>/dev/null; true"); strings.TrimSpace(out) != "" {
			t.Errorf("-l localhost deployed to %s", h.Name)
		}
	}
	r = ferry(t, env, "run", pb, "-i", l.Inventory, "--output", "plain")
	if r.code != 0 {
		t.Fatalf("run: exit %d", r.code)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the localhost play did not run on the controller: %v", err)
	}
	if !strings.Contains(r.stdout, "locked on 2 hosts") {
		t.Errorf("want the lock on the run's two lab hosts (no play names one before add_host), never on the controller")
	}
	want := l.Hosts[0].Name + "," + l.Hosts[1].Name
	for _, h := range l.Hosts {
		out, err := l.Exec(context.Background(), h.Name, "cat /tmp/"+app)
		if err != nil || strings.TrimSpace(out) != want {
			t.Errorf("%s: wrote %q (%v), want %q from hostvars['localhost']", h.Name, out, err, want)
		}
	}
	if _, err := os.Stat(state); err == nil {
		t.Errorf("%s: release state written on the controller, which no play of the environment deployed", state)
	}
	for _, h := range l.Hosts {
		if out, err := l.Exec(context.Background(), h.Name, "cat "+state); err != nil || !strings.Contains(out, app) {
			t.Errorf("%s: release state %q (%v), want the deploy recorded", h.Name, out, err)
		}
	}
}

package playbooks

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ferrydeploy/ferry/internal/exitcode"
)

// Ansible's magic variables hold what Ansible gives, per play and batch.
func TestMagicVariables(t *testing.T) {
	res, rec := runPB(t, `
- hosts: app
  name: deploy
  serial: 1
  tasks:
    - assert:
        that:
          - ansible_play_hosts_all == ['h1', 'h2']
          - ansible_play_batch == [inventory_hostname]
          - play_hosts == ansible_play_batch
          - inventory_hostname in ansible_play_hosts
          - ansible_play_name == 'deploy'
          - playbook_dir is match('/')
          - ansible_version.full is version('2.9', '>=')
          - not ansible_check_mode
          - ansible_run_tags == ['all']
          - inventory_hostname_short == inventory_hostname
          - ansible_playbook_python is string
    - set_fact:
        kept: 1
        dropped: "{{ omit }}"
    - assert: {that: [kept == 1, dropped is not defined]}
`, 2, nil)
	if res.ExitCode != exitcode.OK {
		for _, e := range rec.evs {
			if e.Msg != "" {
				t.Log(e.Host, e.Task, e.Msg)
			}
		}
		t.Fatalf("exit %d", res.ExitCode)
	}
}

// A role's tasks see role_path (its directory) and role_name.
func TestMagicRolePath(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"site.yml":                 "- hosts: app\n  roles: [web]\n",
		"roles/web/tasks/main.yml": "- assert: {that: \"role_path == '" + filepath.Join(dir, "roles", "web") + "' and role_name == 'web'\"}\n",
	})
	pb, err := Load(filepath.Join(dir, "site.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Check(map[string]bool{}); err != nil {
		t.Fatalf("check: %v", err)
	}
	res := NewRunner(pb, Options{Inventory: hostsInv(t, 1), Connector: nopConnector{}}).Run(context.Background())
	if res.ExitCode != exitcode.OK {
		t.Fatalf("exit %d", res.ExitCode)
	}
}

package inventory

import (
	"context"
	"os"
	"os/exec"
	"testing"
)

// testdata/ansible-compat: YAML 1.1 booleans (quoted and not), an INI
// inventory whose ansible_ssh_common_args hold -F FILE, -o User= and a -J
// alias known only to that file, and group_vars/all.yml next to
// group_vars/all/ (Ansible reads the directory only). The golden file is
// `ansible-inventory -i hosts.yml -i bastioned --list` (ansible-core 2.14),
// run in that directory.
func TestAnsibleCompatInventoryGolden(t *testing.T) {
	inv, err := Load(context.Background(), []string{"testdata/ansible-compat/hosts.yml", "testdata/ansible-compat/bastioned"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := inv.ListJSONAnsible()
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, "ListJSONAnsible", got, "testdata/ansible-compat.list.golden.json")

	h, _ := inv.Host("app2")
	if h.SSHConfigFile() != "inventory/testdata/ansible-compat/ssh_config" || h.User() != "deploy" || h.Port() != 2222 {
		t.Errorf("app2: -F %q, user %q, port %d", h.SSHConfigFile(), h.User(), h.Port())
	}
	if j := h.Jumps(); len(j) != 1 || j[0].Host != "jumpbox" {
		t.Errorf("app2 jumps %v, want the jumpbox alias (resolved by ssh from the -F file)", j)
	}
	if v := inv.Groups["all"].Vars["deploy_enabled"]; v != true {
		t.Errorf("deploy_enabled = %#v, want true (YAML 1.1 yes)", v)
	}

	// When ansible-inventory is installed (scripts/deps.sh ansible), compare live too.
	ai, err := exec.LookPath("ansible-inventory")
	if err != nil {
		t.Log("ansible-inventory not installed: compared with the golden file only")
		return
	}
	cmd := exec.Command(ai, "-i", "hosts.yml", "-i", "bastioned", "--list")
	cmd.Dir = "testdata/ansible-compat"
	cmd.Env = append(os.Environ(), "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCAL_TEMP="+t.TempDir())
	live, err := cmd.Output()
	if err != nil {
		t.Fatalf("ansible-inventory: %v", err)
	}
	f := t.TempDir() + "/live.json"
	os.WriteFile(f, live, 0o600)
	jsonEqual(t, "ListJSONAnsible vs live ansible-inventory", got, f)
}

package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
)

// An Ansible inventory whose bastion alias exists only in the ssh_config
// named by `-F FILE` in ansible_ssh_common_args, with the login user given
// as `-o User=...`: ferry reaches the hosts through it, as ssh -F would.
func TestLabSSHArgsConfigFile(t *testing.T) {
	t.Parallel()
	l := lab.StartT(t, lab.Options{Hosts: 2})
	isolate(t) // ~/.ssh is empty: only the -F file knows "jumpbox"
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ssh_config")
	fmt.Fprintf(mustCreate(t, cfg), "Host jumpbox\n  HostName %s\n  User %s\n  IdentityFile %s\n", l.Bastions[0].Addr, l.User, l.KeyFile)
	var inv strings.Builder
	inv.WriteString("[app]\n")
	for _, h := range l.Hosts {
		fmt.Fprintf(&inv, "%s ansible_host=%s ansible_ssh_private_key_file=%s ansible_ssh_common_args='-F %s -o User=%s -J jumpbox' enabled=yes\n",
			h.Name, h.Addr, l.KeyFile, cfg, l.User)
	}
	invPath := filepath.Join(dir, "hosts")
	if err := os.WriteFile(invPath, []byte(inv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r := ferry(t, []string{"FERRY_KNOWN_HOSTS=" + l.KnownHosts}, "exec", "-i", invPath, "--", "id", "-un")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	for _, h := range l.Hosts {
		if !strings.Contains(r.stdout, h.Name+" | "+l.User) {
			t.Errorf("%s: no `id -un` answer as %s", h.Name, l.User)
		}
	}
	// ansible_connection: local runs on the controller
	local := filepath.Join(dir, "local.yml")
	os.WriteFile(local, []byte("all:\n  hosts:\n    ctl: {ansible_connection: local}\n"), 0o600)
	marker := filepath.Join(dir, "ran-here")
	r = ferry(t, nil, "exec", "-i", local, "--", "touch", marker)
	if _, err := os.Stat(marker); r.code != 0 || err != nil {
		t.Errorf("ansible_connection=local: exit %d, %v", r.code, err)
	}
}

func mustCreate(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

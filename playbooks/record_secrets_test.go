package playbooks

import (
	"strings"
	"testing"
)

// What is written down of -e (the run record, the hosts' release records)
// leaves out a secret even when only a later play declares it.
func TestPublicExtraLeavesOutEverySecret(t *testing.T) {
	pb, err := Parse("deploy.yml", []byte(`- hosts: app
  tasks:
    - debug: {msg: hi}
- hosts: db
  secrets: [db_password]
  tasks:
    - debug: {msg: hi}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := PublicExtra(pb, map[string]any{"version": "v2", "dist": "/d", "db_password": "hunter22", "API_TOKEN": "t0ken"})
	if len(got) != 1 || got["dist"] != "/d" {
		t.Errorf("PublicExtra = %v, want only dist", got)
	}
}

// lookup('env') follows env_vars' rule: the controller's credentials,
// ferry's own become password first, are not for playbooks to read.
func TestLookupEnvRefusesCredentials(t *testing.T) {
	t.Setenv("FERRY_BECOME_PASSWORD", "s3cr3t-become")
	t.Setenv("DEPLOY_API_TOKEN", "s3cr3t-token")
	t.Setenv("APP_COLOUR", "blue")
	for _, name := range []string{"FERRY_BECOME_PASSWORD", "DEPLOY_API_TOKEN", "FERRY_SSH_KEY"} {
		v, err := RenderValue("{{ lookup('env', '"+name+"') }}", nil)
		if err == nil || !strings.Contains(err.Error(), "secrets:") || strings.Contains(Text(v), "s3cr3t") {
			t.Errorf("lookup('env', %s) = %v, %v; want refused", name, v, err)
		}
	}
	if v, err := RenderValue("{{ lookup('env', 'APP_COLOUR') }}", nil); err != nil || v != "blue" {
		t.Errorf("lookup('env', 'APP_COLOUR') = %v, %v", v, err)
	}
}

package playbooks

import (
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

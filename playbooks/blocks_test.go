package playbooks

import (
	"os"
	"path/filepath"
	"testing"
)

// A role task's relative src resolves in the role directory its module's
// Spec names (RoleDir), as in Ansible: templates/ for template, files/ else.
func TestSrcDirFromSpec(t *testing.T) {
	role := t.TempDir()
	for _, d := range []string{"files", "templates"} {
		if err := os.Mkdir(filepath.Join(role, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for module, want := range map[string]string{"template": "templates", "copy": "files", "script": "files"} {
		task := &Task{Module: module, Spec: spec(t, module), Dir: role}
		if got := task.srcDir("/pb"); got != filepath.Join(role, want) {
			t.Errorf("%s: %s, want %s/", module, got, want)
		}
	}
	if got := (&Task{Module: "template", Spec: spec(t, "template")}).srcDir("/pb"); got != "/pb" {
		t.Errorf("outside a role: %s, want the playbook's directory", got)
	}
}

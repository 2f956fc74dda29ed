package inventory

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// group_vars/ and host_vars/ next to the playbook apply after the
// inventory's, as Ansible's do.
func TestPlaybookDirVars(t *testing.T) {
	dir := t.TempDir()
	for p, c := range map[string]string{
		"inv/hosts":                 "[web]\nweb1\n",
		"inv/group_vars/all.yml":    "port: 80\nregion: eu\n",
		"play/group_vars/web.yml":   "port: 8080\n",
		"play/host_vars/web1.yml":   "weight: 3\n",
		"play/group_vars/all/x.yml": "app: api\n",
	} {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := Load(context.Background(), []string{filepath.Join(dir, "inv", "hosts")}, Options{PlaybookDir: filepath.Join(dir, "play")})
	if err != nil {
		t.Fatal(err)
	}
	h := inv.Hosts[0]
	for k, want := range map[string]any{"port": 8080, "region": "eu", "weight": 3, "app": "api"} {
		if h.Vars[k] != want {
			t.Errorf("%s = %v, want %v", k, h.Vars[k], want)
		}
	}
	inv, err = Load(context.Background(), []string{filepath.Join(dir, "inv", "hosts")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Hosts[0].Vars["port"] != 80 || inv.Hosts[0].Vars["app"] != nil {
		t.Errorf("without the playbook's directory: %v", inv.Hosts[0].Vars)
	}
}

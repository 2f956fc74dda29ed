package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A command reads its environment from what it is given, never the
// process's: flags' env tags included (kong would read os.LookupEnv).
func TestCommandEnvironmentIsItsOwn(t *testing.T) {
	dir := t.TempDir()
	inv := filepath.Join(dir, "hosts.ini")
	if err := os.WriteFile(inv, []byte("[app]\nweb1 ansible_host=192.0.2.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FERRY_INVENTORY", filepath.Join(dir, "nope.ini"))
	t.Setenv("FERRY_KNOWN_HOSTS_POLICY", "bogus")
	cmd := func(env []string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := runEnv(context.Background(), args, environOf(env), strings.NewReader(""), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := cmd([]string{"FERRY_INVENTORY=" + inv}, "inventory", "--list"); code != 0 || !strings.Contains(out, "web1") {
		t.Fatalf("FERRY_INVENTORY from the command's environment: exit %d\n%s", code, out)
	}
	if code, out := cmd(nil, "inventory", "--list"); code == 0 || strings.Contains(out, "nope.ini") {
		t.Fatalf("no FERRY_INVENTORY given: exit %d, want a refusal that does not name the process's\n%s", code, out)
	}
	if code, out := cmd([]string{"FERRY_INVENTORY=" + inv, "FERRY_KNOWN_HOSTS_POLICY=bogus"}, "inventory", "--list"); code == 0 {
		t.Fatalf("a bad FERRY_KNOWN_HOSTS_POLICY in the command's environment was accepted\n%s", out)
	}
	// A flag on the command line wins over the environment.
	if code, out := cmd([]string{"FERRY_INVENTORY=" + filepath.Join(dir, "nope.ini")}, "inventory", "-i", inv, "--list"); code != 0 {
		t.Fatalf("-i over FERRY_INVENTORY: exit %d\n%s", code, out)
	}
	// Help still names the variables.
	if _, out := cmd(nil, "run", "--help"); !strings.Contains(out, "$FERRY_INVENTORY") || !strings.Contains(out, "$FERRY_KNOWN_HOSTS") {
		t.Errorf("run --help does not name the environment variables:\n%s", out)
	}
}

package tasks

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/tasks/hostfs"
)

// The finalize command refuses a temp directory that is not private any
// more (another user's, or widened), naming it without running anything
// its name holds.
func TestEnterPrivateRefusesForeignDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "x $(touch pwned) y")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func() (string, error) {
		out, err := exec.Command("/bin/sh", "-c", hostfs.Lib+enterStage(filepath.Dir(dir), dir)+"echo inside").CombinedOutput()
		return string(out), err
	}
	out, err := run()
	if err == nil || strings.Contains(out, "inside") || !strings.Contains(out, "not private any more") || !strings.Contains(out, dir) {
		t.Fatalf("widened dir accepted: %v %q", err, out)
	}
	if _, err := os.Stat("pwned"); err == nil {
		os.Remove("pwned")
		t.Fatal("the directory's name was run as a command")
	}
	os.Chmod(dir, 0o700)
	if out, err := run(); err != nil || !strings.Contains(out, "inside") {
		t.Fatalf("private dir refused: %v %q", err, out)
	}
}

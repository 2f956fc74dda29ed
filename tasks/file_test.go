package tasks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileDirectoryModeIdempotent(t *testing.T) {
	h, _, _ := testHost(t)
	d := filepath.Join(t.TempDir(), "a", "b")
	out := runModule(t, h, "file", map[string]any{"path": d, "state": "directory", "mode": "0750"})
	if !out.Changed || out.Failed {
		t.Fatalf("%+v", out)
	}
	if st, err := os.Stat(d); err != nil || !st.IsDir() || st.Mode().Perm() != 0o750 {
		t.Fatalf("dir: %v %v", st, err)
	}
	out = runModule(t, h, "file", map[string]any{"path": d, "state": "directory", "mode": 488}) // YAML's 0750
	if out.Changed || out.Failed {
		t.Fatalf("second run: %+v", out)
	}
}

func TestFileLinkSwap(t *testing.T) {
	h, _, _ := testHost(t)
	base := t.TempDir()
	link := filepath.Join(base, "current")
	for _, v := range []string{"v1", "v2"} {
		os.Mkdir(filepath.Join(base, v), 0o755)
	}
	out := runModule(t, h, "file", map[string]any{"path": link, "state": "link", "src": filepath.Join(base, "v1")})
	if !out.Changed {
		t.Fatalf("%+v", out)
	}
	out = runModule(t, h, "file", map[string]any{"path": link, "state": "link", "src": filepath.Join(base, "v2")})
	if !out.Changed || !strings.Contains(out.Msg, "was ->") {
		t.Fatalf("%+v", out)
	}
	if got, _ := os.Readlink(link); got != filepath.Join(base, "v2") {
		t.Fatalf("link -> %q", got)
	}
	out = runModule(t, h, "file", map[string]any{"path": link, "state": "link", "src": filepath.Join(base, "v2")})
	if out.Changed {
		t.Fatalf("unchanged link reported changed: %+v", out)
	}
	entries, _ := os.ReadDir(base)
	if len(entries) != 3 {
		t.Fatalf("leftovers: %v", entries)
	}
	// A real file in the way is not replaced without force.
	f := filepath.Join(base, "file")
	mustWrite(t, f, "data", 0o644)
	out = runModule(t, h, "file", map[string]any{"path": f, "state": "link", "src": "v1"})
	if !out.Failed || mustRead(t, f) != "data" {
		t.Fatalf("%+v", out)
	}
}

func TestFileAbsentTouchAndState(t *testing.T) {
	h, _, _ := testHost(t)
	d := t.TempDir()
	f := filepath.Join(d, "x")
	out := runModule(t, h, "file", map[string]any{"path": f, "state": "file"})
	if !out.Failed || !strings.Contains(out.Msg, "does not exist") {
		t.Fatalf("%+v", out)
	}
	if out = runModule(t, h, "file", map[string]any{"path": f, "state": "touch", "mode": "0600"}); !out.Changed {
		t.Fatalf("%+v", out)
	}
	if fileMode(t, f) != 0o600 {
		t.Fatalf("mode %o", fileMode(t, f))
	}
	if out = runModule(t, h, "file", map[string]any{"path": f, "state": "absent"}); !out.Changed {
		t.Fatalf("%+v", out)
	}
	if _, err := os.Stat(f); !os.IsNotExist(err) {
		t.Fatal("not removed")
	}
	if out = runModule(t, h, "file", map[string]any{"path": f, "state": "absent"}); out.Changed {
		t.Fatalf("absent twice: %+v", out)
	}
}

func TestFileRecurseAndCheckMode(t *testing.T) {
	h, _, _ := testHost(t)
	d := t.TempDir()
	os.MkdirAll(filepath.Join(d, "s"), 0o755)
	mustWrite(t, filepath.Join(d, "s", "f"), "", 0o644)
	h.Check = true
	out := runModule(t, h, "file", map[string]any{"path": d, "state": "directory", "mode": "0700", "recurse": true})
	if !out.Changed || fileMode(t, filepath.Join(d, "s", "f")) != 0o644 {
		t.Fatalf("check mode: %+v", out)
	}
	out = runModule(t, h, "file", map[string]any{"path": filepath.Join(d, "new"), "state": "directory"})
	if _, err := os.Stat(filepath.Join(d, "new")); !out.Changed || !os.IsNotExist(err) {
		t.Fatalf("check mode created a directory: %+v", out)
	}
	h.Check = false
	out = runModule(t, h, "file", map[string]any{"path": d, "state": "directory", "mode": "0700", "recurse": true})
	if !out.Changed || fileMode(t, filepath.Join(d, "s", "f")) != 0o700 {
		t.Fatalf("recurse: %+v", out)
	}
	out = runModule(t, h, "file", map[string]any{"path": d, "state": "directory", "mode": "0700", "recurse": true, "owner": "root"})
	if out.Changed {
		t.Fatalf("recurse twice: %+v", out)
	}
}

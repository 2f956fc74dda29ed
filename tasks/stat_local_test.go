package tasks

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStatLocal(t *testing.T) {
	h, _, _ := testHost(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "a b")
	if err := os.WriteFile(f, []byte("hi\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Symlink(f, filepath.Join(dir, "link"))
	st := func(args map[string]any) map[string]any {
		out := runModule(t, h, "stat", args)
		if out.Failed || out.Changed {
			t.Fatalf("stat %v: %+v", args, out)
		}
		return out.Result["stat"].(map[string]any)
	}
	s := st(map[string]any{"path": f})
	if s["exists"] != true || s["isreg"] != true || s["mode"] != "0640" || s["size"] != int64(3) ||
		s["checksum"] != "55ca6286e3e4f4fba5d0448333fa99fc5a404a73" { // sha1 of "hi\n"
		t.Errorf("file: %v", s)
	}
	if s := st(map[string]any{"path": dir, "get_checksum": false}); s["isdir"] != true || s["checksum"] != nil {
		t.Errorf("dir: %v", s)
	}
	if s := st(map[string]any{"path": filepath.Join(dir, "link")}); s["islnk"] != true || s["lnk_target"] != f {
		t.Errorf("link: %v", s)
	}
	if s := st(map[string]any{"path": filepath.Join(dir, "nope")}); s["exists"] != false {
		t.Errorf("missing: %v", s)
	}
	if out := runModule(t, h, "wait_for_connection", map[string]any{}); out.Failed {
		t.Errorf("wait_for_connection: %+v", out)
	}
}

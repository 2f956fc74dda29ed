package tasks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Staging files where no path can be redirected costs no round trip where
// it can be avoided: a changed single file and a tree with missing files
// take the probe and the finalize command; a tree that only changes files
// that exist adds one command that makes its staging directory; an
// unchanged copy is the probe alone. Nothing is left behind.
func TestCopyRoundTripsWithHostfs(t *testing.T) {
	h, c, _ := testHost(t)
	src := filepath.Join(h.Dir, "tree")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(src, "a.conf"), "a", 0o644)
	mustWrite(t, filepath.Join(src, "sub", "b.conf"), "b", 0o644)
	if err := os.MkdirAll(filepath.Join(src, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "site")
	count := func(what string, want int, args map[string]any, changed bool) {
		t.Helper()
		before := len(c.commands())
		out := runModule(t, h, "copy", args)
		if out.Failed || out.Changed != changed {
			t.Fatalf("%s: %+v", what, out)
		}
		if n := len(c.commands()) - before; n != want {
			t.Errorf("%s took %d commands, want %d: %q", what, n, want, c.commands()[before:])
		}
		left, _ := listTree(dest)
		if strings.Contains(left, "ferry-tmp") {
			t.Errorf("%s left temp entries: %s", what, left)
		}
	}
	count("tree into new directories", 2, map[string]any{"src": "tree/", "dest": dest}, true)
	count("unchanged tree", 1, map[string]any{"src": "tree/", "dest": dest}, false)
	mustWrite(t, filepath.Join(src, "sub", "b.conf"), "b2", 0o644)
	count("tree changing a file", 3, map[string]any{"src": "tree/", "dest": dest}, true)
	count("single changed file", 2, map[string]any{"content": "x", "dest": dest + "/one"}, true)
	count("single unchanged file", 1, map[string]any{"content": "x", "dest": dest + "/one"}, false)
	if got := mustRead(t, filepath.Join(dest, "sub", "b.conf")); got != "b2" {
		t.Fatalf("b.conf = %q", got)
	}
}

// listTree lists every path under dir.
func listTree(dir string) (string, error) {
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		b.WriteString(p + "\n")
		return err
	})
	return b.String(), err
}

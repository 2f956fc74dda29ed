package tasks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func fileMode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func noTemps(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".ferry-tmp-") {
			t.Errorf("temp file left behind: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCopyFileThenSkipByChecksum(t *testing.T) {
	h, c, _ := testHost(t)
	remote := t.TempDir()
	mustWrite(t, filepath.Join(h.Dir, "app"), "binary v1", 0o644)
	dest := filepath.Join(remote, "bin", "app")

	out := runModule(t, h, "copy", map[string]any{"src": "app", "dest": dest, "mode": "0755"})
	if !out.Changed || out.Failed {
		t.Fatalf("first copy: %+v", out)
	}
	if got := mustRead(t, dest); got != "binary v1" {
		t.Fatalf("dest holds %q", got)
	}
	if m := fileMode(t, dest); m != 0o755 {
		t.Fatalf("mode %o, want 755", m)
	}
	if out.Result["checksum"] == "" || out.Result["dest"] != dest {
		t.Fatalf("result %v", out.Result)
	}
	noTemps(t, remote)

	before := len(c.commands())
	out = runModule(t, h, "copy", map[string]any{"src": "app", "dest": dest, "mode": 493}) // YAML's 0755
	if out.Changed || out.Failed {
		t.Fatalf("second copy should be ok/unchanged: %+v", out)
	}
	if n := len(c.commands()) - before; n != 1 {
		t.Fatalf("unchanged copy took %d commands, want 1", n)
	}

	// Same content, other mode: only the mode changes.
	out = runModule(t, h, "copy", map[string]any{"src": "app", "dest": dest, "mode": "0640"})
	if !out.Changed || fileMode(t, dest) != 0o640 {
		t.Fatalf("mode change: %+v mode %o", out, fileMode(t, dest))
	}
}

func TestCopyContentBackupAndKeepsMode(t *testing.T) {
	h, _, _ := testHost(t)
	remote := t.TempDir()
	dest := filepath.Join(remote, "app.conf")
	mustWrite(t, dest, "old", 0o600)
	out := runModule(t, h, "copy", map[string]any{"content": "new\n", "dest": dest, "backup": true})
	if !out.Changed {
		t.Fatalf("%+v", out)
	}
	if got := mustRead(t, dest); got != "new\n" {
		t.Fatalf("dest %q", got)
	}
	if m := fileMode(t, dest); m != 0o600 {
		t.Fatalf("replacing a file should keep its mode: got %o", m)
	}
	bak, _ := out.Result["backup_file"].(string)
	if bak == "" || mustRead(t, bak) != "old" || !strings.HasSuffix(bak, "~") {
		t.Fatalf("backup %q", bak)
	}
}

func TestCopyIntoExistingDirectory(t *testing.T) {
	h, _, _ := testHost(t)
	remote := t.TempDir()
	mustWrite(t, filepath.Join(h.Dir, "tool"), "x", 0o644)
	out := runModule(t, h, "copy", map[string]any{"src": "tool", "dest": remote})
	if !out.Changed {
		t.Fatalf("%+v", out)
	}
	if mustRead(t, filepath.Join(remote, "tool")) != "x" {
		t.Fatal("file not copied into the directory")
	}
}

func TestCopyDirectoryTrees(t *testing.T) {
	h, _, _ := testHost(t)
	src := filepath.Join(h.Dir, "site")
	os.MkdirAll(filepath.Join(src, "css", "empty"), 0o755)
	mustWrite(t, filepath.Join(src, "index.html"), "<h1>hi</h1>", 0o644)
	mustWrite(t, filepath.Join(src, "css", "a b's $x.css"), "body{}", 0o644)
	mustWrite(t, filepath.Join(src, "weird\nname"), "nl", 0o644)

	remote := t.TempDir()
	// Without a trailing slash: the directory itself goes inside dest.
	out := runModule(t, h, "copy", map[string]any{"src": "site", "dest": remote})
	if !out.Changed || out.Failed {
		t.Fatalf("%+v", out)
	}
	for rel, want := range map[string]string{"site/index.html": "<h1>hi</h1>", "site/css/a b's $x.css": "body{}", "site/weird\nname": "nl"} {
		if got := mustRead(t, filepath.Join(remote, rel)); got != want {
			t.Fatalf("%s: %q", rel, got)
		}
	}
	if st, err := os.Stat(filepath.Join(remote, "site/css/empty")); err != nil || !st.IsDir() {
		t.Fatalf("empty dir not created: %v", err)
	}
	out = runModule(t, h, "copy", map[string]any{"src": "site", "dest": remote})
	if out.Changed {
		t.Fatalf("second dir copy changed: %+v", out)
	}
	// With a trailing slash: only the contents.
	remote2 := t.TempDir()
	mustWrite(t, filepath.Join(src, "index.html"), "<h1>v2</h1>", 0o644)
	out = runModule(t, h, "copy", map[string]any{"src": "site/", "dest": remote2})
	if !out.Changed || mustRead(t, filepath.Join(remote2, "index.html")) != "<h1>v2</h1>" {
		t.Fatalf("contents copy: %+v", out)
	}
	noTemps(t, remote)
	noTemps(t, remote2)
}

func TestCopyCheckModeChangesNothing(t *testing.T) {
	h, _, _ := testHost(t)
	h.Check = true
	remote := t.TempDir()
	dest := filepath.Join(remote, "sub", "f")
	out := runModule(t, h, "copy", map[string]any{"content": "x", "dest": dest})
	if !out.Changed || !strings.Contains(out.Diff, dest) {
		t.Fatalf("check: %+v", out)
	}
	if _, err := os.Stat(filepath.Join(remote, "sub")); !os.IsNotExist(err) {
		t.Fatalf("check mode created something: %v", err)
	}
}

// breakAfter fails the SFTP connection after n bytes: a transfer dies midway.
type breakAfter struct {
	w io.WriteCloser
	n atomic.Int64
}

func (b *breakAfter) Write(p []byte) (int, error) {
	if b.n.Add(-int64(len(p))) < 0 {
		b.w.Close()
		return 0, errors.New("link down")
	}
	return b.w.Write(p)
}
func (b *breakAfter) Close() error { return b.w.Close() }

func TestCopyInterruptedLeavesDestIntactAndNoTemp(t *testing.T) {
	h, c, _ := testHost(t)
	c.wrapSFTP = func(w io.WriteCloser) io.WriteCloser {
		b := &breakAfter{w: w}
		b.n.Store(1 << 20)
		return b
	}
	remote := t.TempDir()
	dest := filepath.Join(remote, "big")
	mustWrite(t, dest, "the old release", 0o644)
	big := strings.Repeat("0123456789abcdef", 1<<18) // 4 MiB
	mustWrite(t, filepath.Join(h.Dir, "big"), big, 0o644)
	m, _ := Lookup("copy")
	out, err := m.Run(context.Background(), h, map[string]any{"src": "big", "dest": dest})
	if err == nil && !out.Failed {
		t.Fatalf("broken transfer reported success: %+v", out)
	}
	if got := mustRead(t, dest); got != "the old release" {
		t.Fatalf("dest was touched: %d bytes", len(got))
	}
	noTemps(t, remote)
}

func TestCopyCancelledLeavesNoTemp(t *testing.T) {
	h, c, _ := testHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.wrapSFTP = func(w io.WriteCloser) io.WriteCloser { return &cancelAfter{w: w, n: 1 << 20, cancel: cancel} }
	remote := t.TempDir()
	dest := filepath.Join(remote, "big")
	mustWrite(t, filepath.Join(h.Dir, "big"), strings.Repeat("z", 8<<20), 0o644)
	m, _ := Lookup("copy")
	out, err := m.Run(ctx, h, map[string]any{"src": "big", "dest": dest})
	if err == nil && !out.Failed {
		t.Fatalf("cancelled copy reported success: %+v", out)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("dest exists after a cancelled copy: %v", err)
	}
	noTemps(t, remote)
}

// cancelAfter cancels the task's context once n bytes went out.
type cancelAfter struct {
	w      io.WriteCloser
	n      int64
	cancel func()
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	c.n -= int64(len(p))
	if c.n < 0 {
		c.cancel()
	}
	return c.w.Write(p)
}
func (c *cancelAfter) Close() error { return c.w.Close() }

func TestCopyChecksumMismatchFails(t *testing.T) {
	const zeros = "0000000000000000000000000000000000000000000000000000000000000000"
	// The landed file is hashed with openssl when it gives a digest, else
	// with sha256sum: make whichever is used lie, so what landed is "not"
	// what was sent.
	for _, tc := range []struct{ name, openssl string }{
		{"openssl", "#!/bin/sh\necho '" + zeros + " *stdin'\n"},
		{"sha256sum", "#!/bin/sh\nexit 127\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, c, _ := testHost(t)
			c.fakeBin(t, "openssl", tc.openssl)
			c.fakeBin(t, "sha256sum", "#!/bin/sh\nif [ $# -eq 0 ]; then echo "+zeros+"  -; else exec /usr/bin/sha256sum \"$@\"; fi\n")
			remote := t.TempDir()
			dest := filepath.Join(remote, "f")
			mustWrite(t, dest, "keep me", 0o644)
			out := runModule(t, h, "copy", map[string]any{"content": "new", "dest": dest})
			if !out.Failed || !strings.Contains(out.Msg, "checksum mismatch") {
				t.Fatalf("%+v", out)
			}
			if mustRead(t, dest) != "keep me" {
				t.Fatal("dest replaced despite a bad checksum")
			}
			noTemps(t, remote)
		})
	}
}

func TestTemplateRenders(t *testing.T) {
	h, _, _ := testHost(t)
	mustWrite(t, filepath.Join(h.Dir, "app.conf.tmpl"), "version={{ version }}\n", 0o644)
	remote := t.TempDir()
	out := runModule(t, h, "template", map[string]any{"src": "app.conf.tmpl", "dest": remote + "/"})
	if !out.Changed {
		t.Fatalf("%+v", out)
	}
	if got := mustRead(t, filepath.Join(remote, "app.conf")); got != "version=1.2.3\n" {
		t.Fatalf("rendered %q", got)
	}
}

func BenchmarkCopy64MiB(b *testing.B) {
	h, _, _ := testHost(b)
	mustWrite(b, filepath.Join(h.Dir, "big"), strings.Repeat("x", 64<<20), 0o644)
	remote := b.TempDir()
	m, _ := Lookup("copy")
	b.SetBytes(64 << 20)
	for i := 0; b.Loop(); i++ {
		dest := filepath.Join(remote, fmt.Sprint("big", i))
		out, err := m.Run(context.Background(), h, map[string]any{"src": "big", "dest": dest})
		if err != nil || out.Failed {
			b.Fatalf("%v %+v", err, out)
		}
	}
}

func TestCopyLargeFileAsBecomeUserInTwoCommands(t *testing.T) {
	h, c, _ := testHost(t)
	h.Become = RunOptions{Become: true}
	big := strings.Repeat("payload-", 3<<20) // 24 MiB: many SFTP packets in flight
	mustWrite(t, filepath.Join(h.Dir, "big"), big, 0o644)
	dest := filepath.Join(t.TempDir(), "big")
	out := runModule(t, h, "copy", map[string]any{"src": "big", "dest": dest, "owner": "root", "group": "0"})
	if out.Failed || !out.Changed {
		t.Fatalf("%+v", out)
	}
	if got := mustRead(t, dest); got != big {
		t.Fatalf("content differs: %d bytes", len(got))
	}
	if _, ok := c.clients["root"]; !ok {
		t.Fatalf("copy with become did not use the become user's sftp: %v", c.clients)
	}
	if n := len(c.commands()); n != 2 {
		t.Fatalf("copy took %d commands, want 2 (probe, finalize): %q", n, c.commands())
	}
}

func FuzzParseProbe(f *testing.F) {
	f.Add([]byte("f 644 root 0 root 0 /a b\x00d 755 u 1 g 1 /d\x00\x01SUMS\x00" + strings.Repeat("a", 64) + "  /a b\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for p, rf := range parseProbe(b) {
			if rf == nil || p == "" && rf.typ == 0 {
				t.Fatal("bad entry")
			}
		}
	})
}

func TestCopySkipByChecksumOddNamesBothHashers(t *testing.T) {
	// The probe hashes a single dest with openssl when it answers, else with
	// sha256sum; both must recognise the unchanged file, whatever its name.
	for _, hasher := range []string{"openssl", "sha256sum"} {
		t.Run(hasher, func(t *testing.T) {
			h := hasherHost(t, hasher)
			dest := filepath.Join(t.TempDir(), "it's a \"file\" $(x)\nwith a newline")
			args := map[string]any{"content": "same", "dest": dest}
			if out := runModule(t, h, "copy", args); !out.Changed || out.Failed {
				t.Fatalf("first copy: %+v", out)
			}
			if out := runModule(t, h, "copy", args); out.Changed || out.Failed {
				t.Fatalf("second copy should be unchanged: %+v", out)
			}
			args["content"] = "other"
			if out := runModule(t, h, "copy", args); !out.Changed || out.Failed || mustRead(t, dest) != "other" {
				t.Fatalf("changed content: %+v", out)
			}
		})
	}
}

func TestCopySweepsStaleTemps(t *testing.T) {
	// A copy whose connection was cut leaves its temp file; the next copy to
	// the same dest removes it once it is old, and leaves fresh ones alone
	// (they may belong to a copy in progress).
	h, _, _ := testHost(t)
	dir := t.TempDir()
	dest := filepath.Join(dir, "app")
	stale := filepath.Join(dir, ".app.ferry-tmp-old")
	fresh := filepath.Join(dir, ".app.ferry-tmp-new")
	other := filepath.Join(dir, ".api.ferry-tmp-old")
	for _, f := range []string{stale, fresh, other} {
		if err := os.WriteFile(f, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(stale, old, old)
	os.Chtimes(other, old, old)
	if out := runModule(t, h, "copy", map[string]any{"content": "v2", "dest": dest}); !out.Changed || out.Failed {
		t.Fatalf("copy: %+v", out)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("stale temp file of dest was not removed")
	}
	for _, f := range []string{fresh, other} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s removed: only old temps of this dest may go", filepath.Base(f))
		}
	}
}

// A tree of a few files at its top (a release: a binary and its config) is
// hashed file by file, with openssl when it answers, else sha256sum: both
// recognise the unchanged tree, whatever the names, and see a changed file.
func TestCopyFewFilesTreeBothHashers(t *testing.T) {
	for _, hasher := range []string{"openssl", "sha256sum"} {
		t.Run(hasher, func(t *testing.T) {
			h := hasherHost(t, hasher)
			src := filepath.Join(h.Dir, "rel")
			os.MkdirAll(src, 0o755)
			mustWrite(t, filepath.Join(src, "app"), "binary v1", 0o755)
			mustWrite(t, filepath.Join(src, "it's $(x)\nodd"), "config", 0o644)
			dest := t.TempDir()
			args := map[string]any{"src": "rel/", "dest": dest}
			if out := runModule(t, h, "copy", args); !out.Changed || out.Failed {
				t.Fatalf("first copy: %+v", out)
			}
			if out := runModule(t, h, "copy", args); out.Changed || out.Failed {
				t.Fatalf("second copy should be unchanged: %+v", out)
			}
			mustWrite(t, filepath.Join(src, "app"), "binary v2", 0o755)
			if out := runModule(t, h, "copy", args); !out.Changed || out.Failed || mustRead(t, filepath.Join(dest, "app")) != "binary v2" {
				t.Fatalf("changed file: %+v", out)
			}
			// A file changed on the host is seen too (same size, other bytes).
			mustWrite(t, filepath.Join(dest, "it's $(x)\nodd"), "CONFIG", 0o644)
			if out := runModule(t, h, "copy", args); !out.Changed || out.Failed || mustRead(t, filepath.Join(dest, "it's $(x)\nodd")) != "config" {
				t.Fatalf("file changed on the host: %+v", out)
			}
			noTemps(t, dest)
		})
	}
}

// hasherHost is a test host whose probe hashes with hasher: "openssl"
// (skipped where there is none) or "sha256sum" (openssl made to fail).
func hasherHost(t *testing.T, hasher string) *Host {
	t.Helper()
	h, c, _ := testHost(t)
	if hasher == "sha256sum" {
		c.fakeBin(t, "openssl", "#!/bin/sh\nexit 127\n")
	} else if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("needs openssl")
	}
	return h
}

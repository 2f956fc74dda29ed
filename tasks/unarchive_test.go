package tasks

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func writeTarGz(t *testing.T, p string, files map[string]string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.HasSuffix(n, "/") {
			tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Typeflag: tar.TypeDir})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[n]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	f.Close()
}

func TestUnarchiveTarIdempotentAndRepairs(t *testing.T) {
	h, _, _ := testHost(t)
	arc := filepath.Join(h.Dir, "app.tar.gz")
	writeTarGz(t, arc, map[string]string{"app/": "", "app/bin": "binary v1\n", "app/conf/": "", "app/conf/app.yml": "port: 8080\n", "README": "hi\n"})
	dest := t.TempDir()

	out := runModule(t, h, "unarchive", map[string]any{"src": "app.tar.gz", "dest": dest})
	if !out.Changed || out.Failed || len(out.Result["files"].([]any)) != 5 {
		t.Fatalf("%+v", out)
	}
	if mustRead(t, filepath.Join(dest, "app/conf/app.yml")) != "port: 8080\n" || mustRead(t, filepath.Join(dest, "README")) != "hi\n" {
		t.Fatal("content not unpacked")
	}
	if out = runModule(t, h, "unarchive", map[string]any{"src": "app.tar.gz", "dest": dest}); out.Changed || out.Failed {
		t.Fatalf("second run: %+v", out)
	}

	// A file changed on the host: check mode reports it, a run puts it back.
	mustWrite(t, filepath.Join(dest, "app/bin"), "tampered\n", 0o644)
	h.Check = true
	out = runModule(t, h, "unarchive", map[string]any{"src": "app.tar.gz", "dest": dest})
	if !out.Changed || len(out.Result["files"].([]any)) != 1 || out.Result["files"].([]any)[0] != "app/bin" || mustRead(t, filepath.Join(dest, "app/bin")) != "tampered\n" {
		t.Fatalf("check: %+v", out)
	}
	h.Check = false
	out = runModule(t, h, "unarchive", map[string]any{"src": "app.tar.gz", "dest": dest})
	if !out.Changed || mustRead(t, filepath.Join(dest, "app/bin")) != "binary v1\n" {
		t.Fatalf("%+v", out)
	}
	entries, _ := os.ReadDir(dest)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".ferry") {
			t.Fatalf("leftover %s", e.Name())
		}
	}
	// creates
	if out = runModule(t, h, "unarchive", map[string]any{"src": "app.tar.gz", "dest": dest, "creates": filepath.Join(dest, "README")}); out.Changed || !strings.Contains(out.Msg, "exists") {
		t.Fatalf("%+v", out)
	}
	// Not an archive, and a missing dest: clear failures.
	mustWrite(t, filepath.Join(h.Dir, "bad.tgz"), "not an archive", 0o644)
	if out = runModule(t, h, "unarchive", map[string]any{"src": "bad.tgz", "dest": dest}); !out.Failed || !strings.Contains(out.Msg, "tar -xf") {
		t.Fatalf("%+v", out)
	}
	if out = runModule(t, h, "unarchive", map[string]any{"src": arc, "dest": filepath.Join(dest, "none"), "remote_src": true}); !out.Failed || !strings.Contains(out.Msg, "not a directory") {
		t.Fatalf("%+v", out)
	}
}

func TestUnarchiveRemoteZipStrip(t *testing.T) {
	if _, err := exec.LookPath("unzip"); err != nil {
		t.Skip("no unzip on this machine")
	}
	h, _, _ := testHost(t)
	arc := filepath.Join(t.TempDir(), "site.zip")
	f, _ := os.Create(arc)
	zw := zip.NewWriter(f)
	w, _ := zw.Create("index.html")
	w.Write([]byte("<h1>v2</h1>\n"))
	zw.Close()
	f.Close()
	dest := t.TempDir()
	out := runModule(t, h, "unarchive", map[string]any{"src": arc, "dest": dest, "remote_src": true})
	if !out.Changed || out.Failed || mustRead(t, filepath.Join(dest, "index.html")) != "<h1>v2</h1>\n" {
		t.Fatalf("%+v", out)
	}
	if out = runModule(t, h, "unarchive", map[string]any{"src": arc, "dest": dest, "remote_src": true}); out.Changed {
		t.Fatalf("%+v", out)
	}
}

func TestUnarchiveRemoteTarExtraOpts(t *testing.T) {
	h, _, _ := testHost(t)
	arc := filepath.Join(t.TempDir(), "r.tar.gz")
	writeTarGz(t, arc, map[string]string{"pkg-1.0/": "", "pkg-1.0/run": "x\n"})
	dest := t.TempDir()
	out := runModule(t, h, "unarchive", map[string]any{"src": arc, "dest": dest, "remote_src": true, "extra_opts": []any{"--strip-components=1"}})
	if !out.Changed || out.Failed || mustRead(t, filepath.Join(dest, "run")) != "x\n" {
		t.Fatalf("%+v", out)
	}
}

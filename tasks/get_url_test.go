package tasks

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func TestGetURLDownloadChecksumIdempotent(t *testing.T) {
	body := "release 1.2.3\n"
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()
	h, _, _ := testHost(t)
	dir := t.TempDir()
	sum := sha256.Sum256([]byte(body))
	good := "sha256:" + hex.EncodeToString(sum[:])

	// Into a directory: the URL's file name.
	out := runModule(t, h, "get_url", map[string]any{"url": srv.URL + "/app-1.2.3.tar.gz", "dest": dir + "/", "mode": "0640", "checksum": good})
	f := filepath.Join(dir, "app-1.2.3.tar.gz")
	if !out.Changed || out.Failed || out.Result["dest"] != f || out.Result["checksum_dest"] != good[len("sha256:"):] {
		t.Fatalf("%+v", out)
	}
	if mustRead(t, f) != body || fileMode(t, f) != 0o640 {
		t.Fatalf("content %q mode %o", mustRead(t, f), fileMode(t, f))
	}
	// The checksum matches dest: no download.
	n := hits.Load()
	if out = runModule(t, h, "get_url", map[string]any{"url": srv.URL + "/app-1.2.3.tar.gz", "dest": f, "checksum": good}); out.Changed || out.Failed || hits.Load() != n {
		t.Fatalf("second run: %+v, %d requests", out, hits.Load()-n)
	}
	// force downloads, but the same content is no change.
	if out = runModule(t, h, "get_url", map[string]any{"url": srv.URL + "/app-1.2.3.tar.gz", "dest": f, "force": true}); out.Changed || out.Failed || hits.Load() != n+1 {
		t.Fatalf("force: %+v", out)
	}
	// A checksum mismatch leaves dest alone and no temp files behind.
	mustWrite(t, f, "old\n", 0o644)
	out = runModule(t, h, "get_url", map[string]any{"url": srv.URL + "/x", "dest": f, "checksum": "sha256:" + strings.Repeat("0", 64)})
	if !out.Failed || !strings.Contains(out.Msg, "checksum mismatch") || mustRead(t, f) != "old\n" {
		t.Fatalf("%+v", out)
	}
	// An HTTP error fails the task.
	out = runModule(t, h, "get_url", map[string]any{"url": srv.URL + "/missing", "dest": filepath.Join(dir, "m")})
	if !out.Failed || !strings.Contains(out.Msg, "download") {
		t.Fatalf("%+v", out)
	}
	// Check mode downloads nothing.
	h.Check = true
	n = hits.Load()
	if out = runModule(t, h, "get_url", map[string]any{"url": srv.URL + "/y", "dest": filepath.Join(dir, "y")}); !out.Changed || hits.Load() != n {
		t.Fatalf("check: %+v", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "y")); !os.IsNotExist(err) {
		t.Fatal("check mode wrote dest")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("leftovers: %v", entries)
	}
}

func TestGetURLRejects(t *testing.T) {
	h, c, _ := testHost(t)
	m, _ := Lookup("get_url")
	for _, args := range []map[string]any{
		{"url": "file:///etc/passwd", "dest": "/tmp/x"},
		{"url": "https://user:secret@example.com/a", "dest": "/tmp/x"},
		{"url": "https://example.com/a", "dest": "/tmp/x", "checksum": "sha256"},
	} {
		if _, err := m.Run(t.Context(), h, args); err == nil {
			t.Fatalf("%v: no error", args)
		} else if strings.Contains(err.Error(), "secret") {
			t.Fatalf("password in the error: %v", err)
		}
	}
	if len(c.commands()) != 0 {
		t.Fatal("rejected arguments ran commands")
	}
}

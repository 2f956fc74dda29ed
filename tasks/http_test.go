package tasks

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHTTPStatusJSONAndRetries(t *testing.T) {
	h, _, lines := testHost(t)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/status":
			if hits.Add(1) < 3 {
				http.Error(w, "warming up", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"version":"1.2.3","build":{"n":42,"ok":true},"items":[{"id":"a"},{"id":"b"}]}`)
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.WriteHeader(201)
			w.Write([]byte(r.Method + " " + r.Header.Get("X-Token") + " " + string(b)))
		}
	}))
	defer srv.Close()

	out := runModule(t, h, "http", map[string]any{"url": srv.URL + "/status", "status": 200, "retries": 5, "delay": "10ms",
		"json": map[string]any{"version": "1.2.3", "build.n": 42, "build.ok": "true", "items.1.id": "b"}})
	if out.Failed || out.Result["attempts"] != 3 || out.Result["status"] != 200 {
		t.Fatalf("%+v", out)
	}
	if len(*lines) != 2 || !strings.Contains((*lines)[0], "status 503, want 200") {
		t.Fatalf("retry lines %q", *lines)
	}
	doc := out.Result["json"].(map[string]any)
	if doc["version"] != "1.2.3" {
		t.Fatalf("json %v", doc)
	}

	out = runModule(t, h, "http", map[string]any{"url": srv.URL + "/status", "json": map[string]any{"version": "9.9.9"}})
	if !out.Failed || !strings.Contains(out.Msg, `json version is "1.2.3", want 9.9.9`) {
		t.Fatalf("json mismatch: %+v", out)
	}
	out = runModule(t, h, "http", map[string]any{"url": srv.URL + "/echo", "method": "post", "status": []any{200, 201},
		"headers": map[string]any{"X-Token": "t"}, "body": map[string]any{"a": 1}, "body_contains": `POST t {"a":1}`})
	if out.Failed {
		t.Fatalf("post: %+v", out)
	}
	out = runModule(t, h, "http", map[string]any{"url": srv.URL + "/echo", "body_contains": "absent text"})
	if !out.Failed || !strings.Contains(out.Msg, "status 201, want 200") {
		t.Fatalf("status: %+v", out)
	}
}

func TestHTTPConnectionRefusedFails(t *testing.T) {
	h, _, _ := testHost(t)
	addr := closedPort(t)
	out := runModule(t, h, "http", map[string]any{"url": "http://" + addr + "/", "retries": 1, "delay": "1ms"})
	if !out.Failed || !strings.Contains(out.Msg, "request failed") || out.Result["attempts"] != 2 {
		t.Fatalf("%+v", out)
	}
	h.Check = true
	if out = runModule(t, h, "http", map[string]any{"url": "http://" + addr + "/"}); !out.Skipped {
		t.Fatalf("check mode: %+v", out)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestWaitForPortAndPath(t *testing.T) {
	h, _, _ := testHost(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	out := runModule(t, h, "wait_for", map[string]any{"port": port, "timeout": "5s"})
	if out.Failed {
		t.Fatalf("open port: %+v", out)
	}
	_, p, _ := net.SplitHostPort(closedPort(t))
	out = runModule(t, h, "wait_for", map[string]any{"port": p, "state": "stopped", "timeout": "5s"})
	if out.Failed {
		t.Fatalf("closed port stopped: %+v", out)
	}
	out = runModule(t, h, "wait_for", map[string]any{"port": p, "timeout": "300ms", "sleep": "100ms"})
	if !out.Failed || !strings.Contains(out.Msg, "is not started after 300ms") {
		t.Fatalf("closed port started: %+v", out)
	}

	f := filepath.Join(t.TempDir(), "ready")
	os.WriteFile(f, nil, 0o644)
	if out = runModule(t, h, "wait_for", map[string]any{"path": f}); out.Failed {
		t.Fatalf("present: %+v", out)
	}
	out = runModule(t, h, "wait_for", map[string]any{"path": f, "state": "absent", "timeout": "0.3", "sleep": 0.1})
	if !out.Failed {
		t.Fatalf("absent: %+v", out)
	}
	start := time.Now()
	out = runModule(t, h, "wait_for", map[string]any{"path": f + ".nope", "state": "absent"})
	if out.Failed || time.Since(start) > 30*time.Second {
		t.Fatalf("absent path: %+v", out)
	}
}

func FuzzJSONPath(f *testing.F) {
	f.Add(`{"a":{"b":[1,{"c":"x"}]}}`, "a.b.1.c")
	f.Fuzz(func(t *testing.T, doc, p string) {
		var v any
		if json.Unmarshal([]byte(doc), &v) != nil {
			return
		}
		if got, ok := JSONPath(v, p); ok && p == "" && !reflect.DeepEqual(got, v) {
			t.Fatal("empty path is not the document")
		}
	})
}

package tasks

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// A URL's query is often its credential (?token=, a presigned signature):
// get_url hands it to the host off the command line (the host's ps, sudo's
// log) and neither get_url nor http shows it in messages or results.
func TestURLTokensStayOffCommandLinesAndOutput(t *testing.T) {
	const token = "s3cr3t-tok3n"
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Query().Get("token"))
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	h, c, _ := testHost(t)
	dir := t.TempDir()
	leak := func(what string, out Outcome) {
		t.Helper()
		b, _ := json.Marshal(out)
		if strings.Contains(string(b), token) {
			t.Errorf("%s shows the token: %s", what, b)
		}
	}
	out := runModule(t, h, "get_url", map[string]any{"url": srv.URL + "/app.tgz?token=" + token + "&x=1", "dest": filepath.Join(dir, "app.tgz")})
	if out.Failed || !out.Changed || len(got) != 1 || got[0] != token {
		t.Fatalf("download with a token: %+v (server saw %q)", out, got)
	}
	leak("get_url", out)
	leak("get_url's failure", runModule(t, h, "get_url", map[string]any{"url": srv.URL + "/missing?token=" + token, "dest": filepath.Join(dir, "m")}))
	h.Check = true
	leak("get_url in check mode", runModule(t, h, "get_url", map[string]any{"url": srv.URL + "/y?token=" + token, "dest": filepath.Join(dir, "y")}))
	h.Check = false
	c.mu.Lock()
	for _, cmd := range c.cmds {
		if strings.Contains(cmd, token) {
			t.Errorf("a command line holds the token: %s", cmd)
		}
	}
	c.mu.Unlock()

	out = runModule(t, h, "http", map[string]any{"url": srv.URL + "/health?token=" + token})
	if out.Failed {
		t.Fatalf("http: %+v", out)
	}
	leak("http", out)
	leak("http's failure", runModule(t, h, "http", map[string]any{"url": srv.URL + "/missing?token=" + token}))
}

package tasks

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// url_username/url_password (Ansible's uri) send basic authentication.
func TestHTTPBasicAuth(t *testing.T) {
	h, _, _ := testHost(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "ops" || p != "s3cret" {
			http.Error(w, "who are you", http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	if out := runModule(t, h, "http", map[string]any{"url": srv.URL, "url_username": "ops", "url_password": "s3cret", "force_basic_auth": true}); out.Failed {
		t.Fatalf("with credentials: %+v", out)
	}
	if out := runModule(t, h, "http", map[string]any{"url": srv.URL}); !out.Failed {
		t.Fatalf("without credentials: %+v", out)
	}
}

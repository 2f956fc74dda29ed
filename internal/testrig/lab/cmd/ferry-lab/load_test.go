package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/internal/testrig/lab/load"
)

// load runs a constant load while its command runs, reports it (stderr
// and --report) and exits with the command's status.
func TestLoadVerb(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("delay") != "20ms" {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	report := filepath.Join(t.TempDir(), "load.json")
	var out, errb bytes.Buffer
	code := run([]string{"load", "--rate", "50", "--url", srv.URL, "--report", report, "--", "bash", "-c", "sleep 1; exit 3"}, &out, &errb)
	if code != 3 {
		t.Fatalf("exit %d, want the command's 3; stderr: %s", code, errb.String())
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep load.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Requests == 0 || rep.Failures != 0 || rep.Status[200] != rep.Requests {
		t.Errorf("report: %s %v", rep.Summary(), rep.Status)
	}
	if !strings.Contains(errb.String(), "requests, 0 failed") {
		t.Errorf("stderr does not say how many failed: %s", errb.String())
	}
	t.Setenv("FERRY_LAB_ALB_URL", "")
	t.Setenv("FERRY_LAB_ELB_URL", "")
	if code := run([]string{"load", "--", "true"}, &out, &errb); code != 2 {
		t.Errorf("load with no load balancer: exit %d, want 2", code)
	}
}

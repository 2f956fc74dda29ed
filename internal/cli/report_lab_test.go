package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/report/reporttest"
)

// TestLabReport renders the record of a real failed canary (the AWS lab,
// the example deploy with a verify gate after the canary, a build that
// passes its smoke test but fails 20% of its requests, stopped by the
// gate and rolled back) and checks the page in headless chromium.
// FERRY_REPORT_SCREENSHOT=FILE also saves a screenshot of it
// (docs/images/report.png is made that way).
func TestLabReport(t *testing.T) {
	t.Parallel()
	d := startAWSDeployLab(t, 4)
	addBuild(t, d.dist, "v4-flaky")
	pb := gated(t, gateSpec("5s", "200ms", httpGate))
	r := d.run(t, "run", pb, "-e", "version=v4-flaky", "--report", "--requested-by", "alice")
	if r.code != exitcode.Failed {
		t.Fatalf("deploy v4-flaky: exit %d, want %d", r.code, exitcode.Failed)
	}
	files, _ := filepath.Glob(filepath.Join(d.records, "*.jsonl"))
	var record string
	for _, f := range files {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), "v4-flaky") {
			record = f
		}
	}
	if record == "" {
		t.Fatal("no record of the v4-flaky run")
	}
	runID := strings.TrimSuffix(filepath.Base(record), ".jsonl")
	// --report wrote the page next to the record.
	if _, err := os.Stat(strings.TrimSuffix(record, ".jsonl") + ".html"); err != nil {
		t.Errorf("run --report: %v", err)
	}

	// ferry report RUN_ID (a prefix is enough) and ferry report PATH -O FILE.
	out := filepath.Join(t.TempDir(), "page.html")
	rr := ferry(t, d.env, "report", runID[:len(runID)-2], "-O", out)
	if rr.code != 0 || strings.TrimSpace(rr.stdout) != out {
		t.Fatalf("ferry report: exit %d, stdout %q, stderr %q", rr.code, rr.stdout, rr.stderr)
	}
	// --open hands the page to xdg-open (here a stand-in that says what it got).
	bin := t.TempDir()
	opened := filepath.Join(bin, "opened")
	os.WriteFile(filepath.Join(bin, "xdg-open"), []byte("#!/bin/sh\necho \"$1\" > "+opened+".tmp && mv "+opened+".tmp "+opened+"\n"), 0o755)
	second := filepath.Join(t.TempDir(), "b.html")
	if rr := ferry(t, append(d.env, "PATH="+bin+":"+os.Getenv("PATH")), "report", record, "--open", "-O", second); rr.code != 0 {
		t.Fatalf("ferry report PATH --open: exit %d: %s", rr.code, rr.stderr)
	}
	if !eventually(10*time.Second, func() bool {
		b, err := os.ReadFile(opened)
		return err == nil && strings.TrimSpace(string(b)) == second
	}) {
		t.Error("--open did not run xdg-open with the page")
	}
	if rr := ferry(t, d.env, "report", "nosuchrun"); rr.code != exitcode.Invalid || !strings.Contains(rr.stderr, "ferry history") {
		t.Errorf("unknown run: exit %d, %q", rr.code, rr.stderr)
	}

	page, _ := os.ReadFile(out)
	for _, want := range []string{"alice", "v4-flaky", "AWS calls", "Drain", "verify gate after batch 1", "pages (http) failed", "stage: Stage release"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page does not mention %q", want)
		}
	}
	reporttest.CheckPage(t, out, map[string]string{"app1": "rolled_back", "app2": "untouched", "app3": "untouched", "app4": "untouched"}, "app1")
}

package ec2

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
)

// endpoint_url from a file: plain http only to loopback, a warning for any
// non-AWS endpoint, and the operator's AWS_ENDPOINT_URL wins.
func TestEndpointURLFromFile(t *testing.T) {
	_, err := parseConfig("inv.aws_ec2.yml", []byte("plugin: aws_ec2\nendpoint_url: http://collector.example.com/\n"), nil)
	if err == nil || !diag.IsInvalidInput(err) || !strings.Contains(err.Error(), "inv.aws_ec2.yml:2:15: endpoint_url: plain http") {
		t.Errorf("plain http to another host: %v", err)
	}
	_, err = parseConfig("inv.aws_ec2.yml", []byte("plugin: aws_ec2\nendpoint_url: ftp://x\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Errorf("ftp: %v", err)
	}
	for src, warn := range map[string]bool{
		"https://ec2.eu-west-1.amazonaws.com":     false,
		"https://ec2.cn-north-1.amazonaws.com.cn": false,
		"https://ec2.example.com":                 true,
		"https://ec2.amazonaws.com.evil.net":      true,
		"http://127.0.0.1:4566":                   true,
		"http://localhost:4566":                   true,
	} {
		cfg, err := parseConfig("inv.aws_ec2.yml", []byte("plugin: aws_ec2\nendpoint_url: "+src+"\n"), nil)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		got := len(cfg.Warnings) == 1 && strings.Contains(cfg.Warnings[0], "inv.aws_ec2.yml:2: endpoint_url") && strings.Contains(cfg.Warnings[0], "not an AWS endpoint")
		if got != warn || (!warn && len(cfg.Warnings) > 0) {
			t.Errorf("%s: warnings %q, want a warning: %v", src, cfg.Warnings, warn)
		}
	}

	// The emulator is set through AWS_ENDPOINT_URL; a file pointing
	// elsewhere is ignored, with a warning, and gets no request.
	s := emulator(t, awsemu.Options{})
	s.AddInstances(base, "us-east-1", 2, nil)
	var hits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer other.Close()
	res, err := build(t, "plugin: aws_ec2\nregions: [us-east-1]\nendpoint_url: "+other.URL+"\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hosts) != 2 || hits.Load() != 0 {
		t.Fatalf("%d hosts, %d requests to the file's endpoint; want 2 hosts from AWS_ENDPOINT_URL and none", len(res.Hosts), hits.Load())
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "endpoint_url is ignored: AWS_ENDPOINT_URL is set") {
		t.Errorf("warnings: %q", res.Warnings)
	}
}

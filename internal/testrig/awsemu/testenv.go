package awsemu

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
)

// TB is what StartTest needs from a test or benchmark.
type TB interface {
	Setenv(k, v string)
	TempDir() string
	Cleanup(func())
}

// StartTest serves a new emulator for the length of a test and points the
// AWS SDK at it through the environment, as a user would: AWS_ENDPOINT_URL,
// static keys, no region, profile, shared config files or IMDS.
func StartTest(t TB, opts Options) *Server {
	s, env := StartEnv(t, opts)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return s
}

// EnvTB is what StartEnv needs from a test.
type EnvTB interface {
	TempDir() string
	Cleanup(func())
}

// StartEnv serves a new emulator for the length of a test and returns the
// environment (KEY=VALUE) that points the AWS SDK at it, as StartTest
// sets it, for a command's own environment: it sets nothing in the
// process, so the test may run in parallel.
func StartEnv(t EnvTB, opts Options) (*Server, []string) {
	s := New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	none := filepath.Join(t.TempDir(), "none")
	return s, []string{
		"AWS_ENDPOINT_URL=" + srv.URL,
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY=secret",
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_REGION=",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + none,
		"AWS_SHARED_CREDENTIALS_FILE=" + none,
	}
}

package cli

import (
	"os"
	"testing"
)

// TestMain lets tests run this test binary as the ferry command (with
// FERRY_TEST_AS_CLI=1), so tests that need a real process — signals, a
// terminal — do not pay for linking a second binary.
func TestMain(m *testing.M) {
	if os.Getenv("FERRY_TEST_AS_CLI") == "1" {
		os.Exit(Main(os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr))
	}
	code := m.Run()
	removeAppBuilds()
	os.Exit(code)
}

// ferryBinary returns the path and environment that run ferry as a process:
// the environment is what the test gave its ferry commands (isolate, ferry's
// env), to go after os.Environ().
func ferryBinary(t *testing.T) (string, []string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return self, append(ownEnv(t), "FERRY_TEST_AS_CLI=1")
}

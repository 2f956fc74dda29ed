package main

// CLI tests for everything that needs no host (check, inventory, doc,
// history, flags, errors), as txtar scripts in testdata/script run by
// testscript against cli.Main. They need no root and no lab: make test
// also runs them as an unprivileged user (FERRY_TEST_NONROOT=1), which
// proves it.

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ferrydeploy/ferry/internal/cli"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ferry": func() { os.Exit(cli.Main(os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr)) },
		// ferry-exit N ARGS...: runs ferry ARGS and succeeds when it exits with N.
		"ferry-exit": func() {
			if len(os.Args) < 2 {
				fmt.Fprintln(os.Stderr, "usage: ferry-exit CODE ARGS...")
				os.Exit(2)
			}
			want, err := strconv.Atoi(os.Args[1])
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			if got := cli.Main(os.Args[2:], os.Environ(), os.Stdin, os.Stdout, os.Stderr); got != want {
				fmt.Fprintf(os.Stderr, "ferry exited %d, want %d\n", got, want)
				os.Exit(1)
			}
			os.Exit(0)
		},
	})
}

func TestScripts(t *testing.T) {
	if os.Getenv("FERRY_TEST_NONROOT") == "1" && os.Geteuid() == 0 {
		t.Fatal("FERRY_TEST_NONROOT=1 but running as root")
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			// No ambient configuration leaks in.
			for _, k := range []string{"FERRY_INVENTORY", "FERRY_ENV", "AWS_PROFILE", "AWS_ENDPOINT_URL", "NO_COLOR", "CI", "GITHUB_ACTIONS"} {
				env.Setenv(k, "")
			}
			env.Setenv("USER", "tester")
			return nil
		},
	})
}

// Command ferry is an agentless SSH orchestrator for rolling deploys.
// Everything lives in internal/cli; main only wires the process to it.
package main

import (
	"os"

	"github.com/ferrydeploy/ferry/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr))
}

// Package exitcode is ferry's one table of process exit codes (SPEC:
// Output, records, exit codes), shared by the runner, which puts them in
// the run record, and the CLI, which exits with them.
package exitcode

const (
	OK          = 0   // everything went as asked
	Error       = 1   // any other error (I/O, AWS, a bug)
	Failed      = 2   // hosts failed
	Unreachable = 3   // hosts could not be reached (or a host key was refused)
	Invalid     = 4   // invalid input: flags, inventory, playbook
	Locked      = 5   // another run holds the environment's lock
	Interrupted = 130 // a signal or the operator stopped the run
)

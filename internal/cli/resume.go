package cli

import (
	"regexp"
	"syscall"
)

// runIDPattern is what newRunID makes: 20260102-150405-a1b2c3.
var runIDPattern = regexp.MustCompile(`^\d{8}-\d{6}-[0-9a-f]{6}$`)

// resumeArgs lets `--resume` take an optional value, as the SPEC writes
// it (`--resume [RUN_ID]`): kong flags need one, so a bare --resume
// becomes --resume=last unless a run ID follows it.
func resumeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if a != "--resume" {
			out = append(out, a)
			continue
		}
		if i+1 < len(args) && runIDPattern.MatchString(args[i+1]) {
			out = append(out, "--resume="+args[i+1])
			i++
			continue
		}
		out = append(out, "--resume=last")
	}
	return out
}

// raiseFileLimit lifts the soft limit on open files to the hard one: a run
// keeps a connection (and a few channels) per host, and the default soft
// limit of 1024 would cut a large fleet short.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil || l.Cur >= l.Max {
		return
	}
	l.Cur = l.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}

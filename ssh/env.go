package ssh

import (
	"crypto/rand"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
)

// Environment values (often passwords and tokens) never go on the command
// line: every user of the host sees command lines in ps, and sudo logs them.
// They travel on the command's stdin instead, as one line the remote shell
// reads and evaluates before the command runs. The line is tagged with a
// random token, so a become password that sudo did not read (NOPASSWD, a
// cached ticket) is skipped rather than taken for the environment.

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidEnvName reports whether k can name an environment variable in a
// POSIX shell; anything else could inject shell code.
func ValidEnvName(k string) bool { return envName.MatchString(k) }

// CheckEnv returns an error naming the first key that is not a variable name.
func CheckEnv(env map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !ValidEnvName(k) {
			return fmt.Errorf("environment: %q is not a variable name (letters, digits and _, not starting with a digit)", k)
		}
	}
	return nil
}

// envOnStdin returns the shell prefix that reads the environment from stdin
// and the line to send there.
func envOnStdin(env map[string]string) (prefix, line string) {
	tok := "ferry-env-" + rand.Text()
	var b strings.Builder
	b.WriteString(tok + " ")
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if !ValidEnvName(k) { // Run refuses these; never eval them
			continue
		}
		v := strings.ReplaceAll(env[k], "\x00", "") // no NUL can live in the environment
		q := shell.Quote(v)
		// One line: newlines in values come back from a variable.
		q = strings.ReplaceAll(q, "\r", `'"$__ferry_cr"'`)
		q = strings.ReplaceAll(q, "\n", `'"$__ferry_nl"'`)
		fmt.Fprintf(&b, "export %s=%s; ", k, q)
	}
	b.WriteString("\n")
	// read -r reads a pipe byte by byte, so whatever follows the line stays
	// for the command. The loop ends at EOF at the latest.
	prefix = "__ferry_nl='\n'; __ferry_cr=$(printf '\\r'); " +
		`while IFS= read -r __ferry_l; do case $__ferry_l in "` + tok + ` "*) eval "${__ferry_l#"` + tok + ` "}"; break;; esac; done; ` +
		"unset __ferry_l __ferry_nl __ferry_cr; "
	return prefix, b.String()
}

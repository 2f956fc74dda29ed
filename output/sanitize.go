package output

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ferrydeploy/ferry/events"
)

// Text in events comes from hosts (command output, stderr in failure
// messages, registered values in task names). Printed raw, an escape
// sequence can rewrite the operator's terminal or hide lines, and a line
// that starts with "::" is a command to GitHub Actions (add-mask,
// stop-commands, set-output...). Plain output therefore shows control
// characters as visible escapes, and every line after the first of a
// multi-line value starts with "  | ", so no host text begins a line.

// continuation starts the second and later lines of a multi-line value.
const continuation = "  | "

// safeText neutralises s for one plain-output line (see above).
func safeText(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f || c >= 0x80 {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\r' && i+1 < len(s) && s[i+1] == '\n':
			// CRLF: one line break
		case r == '\n' || r == '\r':
			b.WriteString("\n" + continuation)
		case r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			// C0 and C1 controls (ESC, CSI, OSC, BEL, backspace...).
			fmt.Fprintf(&b, `\x%02x`, r)
		case r == 0x2028 || r == 0x2029 || r == 0x85:
			b.WriteString("\n" + continuation)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// safeEvent returns e with every free-text field neutralised.
func safeEvent(e events.Event) events.Event {
	for _, p := range []*string{&e.Msg, &e.Line, &e.Task, &e.Host, &e.Play, &e.Playbook, &e.Env, &e.Version, &e.Module} {
		*p = safeText(*p)
	}
	e.Hosts = safeList(e.Hosts)
	e.Tasks = safeList(e.Tasks)
	if len(e.Recap) > 0 {
		recap := append([]events.HostRecap(nil), e.Recap...)
		for i := range recap {
			recap[i].Host = safeText(recap[i].Host)
		}
		e.Recap = recap
	}
	return e
}

func safeList(l []string) []string {
	var out []string
	for i, s := range l {
		if c := safeText(s); c != s {
			if out == nil {
				out = append([]string(nil), l...)
			}
			out[i] = c
		}
	}
	if out == nil {
		return l
	}
	return out
}

// ghProperty escapes an annotation property (title=...): GitHub's runner
// unescapes %25, %0D, %0A, %3A and %2C there.
func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// ghMessage escapes an annotation's message: only %, CR and LF (the runner
// shows any other %XX literally).
func ghMessage(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// safeLine neutralises control characters but keeps line breaks as they
// are, for annotations, which encode them (%0A) themselves.
func safeLine(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.ReplaceAll(safeText(l), "\n"+continuation, "\n")
	}
	return strings.Join(lines, "\n")
}

// SafeText neutralises text that a request or a record claims (who,
// origin, version, a lock's holder) for one line of output: control
// characters and line breaks show as escapes (\n, \x1b), and a leading "::"
// (a GitHub Actions command) as "\x3a:".
func SafeText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0x85:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	out := b.String()
	if strings.HasPrefix(strings.TrimLeft(out, " \t"), "::") {
		i := strings.Index(out, "::")
		out = out[:i] + `\x3a` + out[i+1:]
	}
	return out
}

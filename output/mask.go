package output

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// minLineSecret is the shortest line of a multi-line secret masked on its
// own: shorter lines ("}", "-----") are not secret and would garble output.
const minLineSecret = 6

// secretForms lists the texts under which value v can appear in output:
// as is, JSON-escaped (a command printing JSON, a registered result shown
// by debug: & becomes \u0026, a newline \n), Go-quoted (%q in messages),
// shell-quoted (a command line shown in a failure, single quotes closed,
// escaped and reopened; or double-quoted with backslashes), and, for a multi-line value such as a PEM key,
// each of its lines, since output is read line by line.
func secretForms(v string) []string {
	forms := []string{v}
	add := func(s string) {
		if s != "" && s != v {
			forms = append(forms, s)
		}
	}
	escaped := func(s string) {
		if b, err := json.Marshal(s); err == nil {
			add(string(b[1 : len(b)-1]))
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if enc.Encode(s) == nil {
			b := bytes.TrimSpace(buf.Bytes())
			add(string(b[1 : len(b)-1]))
		}
		q := strconv.Quote(s)
		add(q[1 : len(q)-1])
	}
	escaped(v)
	if strings.Contains(v, "'") {
		add(strings.ReplaceAll(v, "'", `'\''`))
		add(strings.ReplaceAll(v, "'", `'"'"'`))
	}
	if strings.ContainsAny(v, "\"\\$`") {
		add(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(v))
	}
	if strings.ContainsAny(v, "\n\r") {
		for _, line := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if len(strings.TrimSpace(line)) >= minLineSecret {
				forms = append(forms, line)
				escaped(line)
			}
		}
	}
	return forms
}

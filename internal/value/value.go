// Package value reads loosely typed values the way playbooks and
// inventories write them (YAML scalars, text from templates), so that a
// value means the same when `ferry check` reads it and when a task runs.
package value

import (
	"strings"
)

// Bool reads v as Ansible's boolean() does: true, false, and the strings
// (any case, blanks trimmed) y/yes/on/1/true/t and n/no/off/0/false/f, and
// the numbers 1 and 0. Anything else (the empty string too) is not a bool.
func Bool(v any) (b, ok bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		return ParseBool(x)
	case int:
		return x == 1, x == 0 || x == 1
	case int64:
		return x == 1, x == 0 || x == 1
	case uint64:
		return x == 1, x == 0 || x == 1
	case float64:
		return x == 1, x == 0 || x == 1
	}
	return false, false
}

// ParseBool reads the text of a bool (see Bool).
func ParseBool(s string) (b, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "y", "yes", "on", "1", "true", "t", "1.0":
		return true, true
	case "n", "no", "off", "0", "false", "f", "0.0":
		return false, true
	}
	return false, false
}

// Words are the spellings Bool accepts, for error hints.
const Words = "true/false, yes/no, on/off, y/n, t/f, 1/0"

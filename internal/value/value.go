// Package value reads loosely typed values the way playbooks and
// inventories write them (YAML scalars, text from templates), so that a
// value means the same when `ferry check` reads it and when a task runs.
package value

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
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

// Duration reads "2s", "1m30s" or a number of seconds (a number, or text
// holding one).
func Duration(v any) (time.Duration, error) {
	switch x := v.(type) {
	case string:
		s := strings.TrimSpace(x)
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return secondsDuration(f)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: write one like \"30s\" or \"2m\"", x)
		}
		if d < 0 {
			return 0, fmt.Errorf("negative duration %q", x)
		}
		return d, nil
	case float64:
		return secondsDuration(x)
	case float32:
		return secondsDuration(float64(x))
	default:
		n, ok := Int(v)
		if !ok {
			return 0, fmt.Errorf("want a duration like \"30s\" or a number of seconds, got %v", v)
		}
		return secondsDuration(float64(n))
	}
}

func secondsDuration(f float64) (time.Duration, error) {
	if f < 0 || math.IsNaN(f) || f > 1e9 {
		return 0, fmt.Errorf("%v is not a usable number of seconds", f)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// Int reads integers, whole floats and text holding an integer.
func Int(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case int32:
		return int(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int(x), true
	case uint:
		return int(x), true
	case uint32:
		return int(x), true
	case float64:
		if x != math.Trunc(x) || math.IsInf(x, 0) || math.Abs(x) > 1<<53 {
			return 0, false
		}
		return int(x), true
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		return n, err == nil
	}
	return 0, false
}

package tasks

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydeploy/ferry/internal/value"
)

// Args reads a module's arguments. Values arrive rendered but loosely typed
// (YAML scalars, strings from templates), so each getter accepts the forms a
// playbook author would write and records a clear error otherwise. Call Err
// once after reading every argument.
type Args struct {
	module string
	m      map[string]any
	errs   []error
}

// NewArgs wraps the arguments of one module call.
func NewArgs(module string, m map[string]any) *Args {
	return &Args{module: module, m: m}
}

// Has reports whether key was given (and is not null).
func (a *Args) Has(key string) bool {
	v, ok := a.m[key]
	return ok && v != nil
}

// Raw returns the value as given.
func (a *Args) Raw(key string) any { return a.m[key] }

// Err joins every problem found so far, or nil.
func (a *Args) Err() error { return errors.Join(a.errs...) }

func (a *Args) fail(key, format string, v ...any) {
	a.errs = append(a.errs, fmt.Errorf("%s: %s: %s", a.module, key, fmt.Sprintf(format, v...)))
}

// String returns key as a string; numbers and bools are formatted.
func (a *Args) String(key, def string) string {
	if !a.Has(key) {
		return def
	}
	s, ok := scalarString(a.m[key])
	if !ok {
		a.fail(key, "want a string, got %s", typeName(a.m[key]))
		return def
	}
	return s
}

// Bool accepts what Ansible takes for a bool (see value.Bool).
func (a *Args) Bool(key string, def bool) bool {
	if !a.Has(key) {
		return def
	}
	b, ok := value.Bool(a.m[key])
	if !ok {
		a.fail(key, "want true or false ("+value.Words+"), got %v", a.m[key])
		return def
	}
	return b
}

// Int accepts integers, whole floats and strings holding one.
func (a *Args) Int(key string, def int) int {
	if !a.Has(key) {
		return def
	}
	n, ok := value.Int(a.m[key])
	if !ok {
		a.fail(key, "want an integer, got %v", a.m[key])
		return def
	}
	return n
}

// Duration accepts "2s", "1m30s" or a number of seconds.
func (a *Args) Duration(key string, def time.Duration) time.Duration {
	if !a.Has(key) {
		return def
	}
	d, err := value.Duration(a.m[key])
	if err != nil {
		a.fail(key, "%v", err)
		return def
	}
	return d
}

// StringList accepts a list of scalars or a single scalar.
func (a *Args) StringList(key string) []string {
	if !a.Has(key) {
		return nil
	}
	switch v := a.m[key].(type) {
	case []any:
		out := make([]string, 0, len(v))
		for i, e := range v {
			s, ok := scalarString(e)
			if !ok {
				a.fail(key, "item %d: want a string, got %s", i, typeName(e))
				return nil
			}
			out = append(out, s)
		}
		return out
	case []string:
		return v
	default:
		s, ok := scalarString(v)
		if !ok {
			a.fail(key, "want a list, got %s", typeName(v))
			return nil
		}
		return []string{s}
	}
}

// StringMap accepts a mapping of scalars.
func (a *Args) StringMap(key string) map[string]string {
	if !a.Has(key) {
		return nil
	}
	m, ok := toMap(a.m[key])
	if !ok {
		a.fail(key, "want a mapping, got %s", typeName(a.m[key]))
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := scalarString(v)
		if !ok {
			a.fail(key, "%s: want a string, got %s", k, typeName(v))
			continue
		}
		out[k] = s
	}
	return out
}

// Map returns a mapping argument as is.
func (a *Args) Map(key string) map[string]any {
	if !a.Has(key) {
		return nil
	}
	m, ok := toMap(a.m[key])
	if !ok {
		a.fail(key, "want a mapping, got %s", typeName(a.m[key]))
	}
	return m
}

// Mode returns a file mode argument as octal digits without leading zeros
// ("755", "4755"), or "" when absent. See ParseMode for the accepted forms.
func (a *Args) Mode(key string) string {
	if !a.Has(key) {
		return ""
	}
	m, err := ParseMode(a.m[key])
	if err != nil {
		a.fail(key, "%v", err)
		return ""
	}
	return m
}

// ambiguousModes are what YAML makes of common unquoted octal modes whose
// decimal digits are also all octal: 0644 reads as 420, which could as well
// be someone's "0420". Rather than guess, ParseMode asks for quotes.
var ambiguousModes = map[int64]string{
	420: "0644", 416: "0640", 436: "0664", 256: "0400", 511: "0777",
	1023: "01777", 432: "0660", 272: "0420", 320: "0500", 64: "0100",
}

// ParseMode reads a file mode and returns its octal digits without leading
// zeros. Accepted, safest first:
//   - a string of octal digits with a leading zero or 0o: "0755", "0o755";
//   - a string or integer whose decimal digits are all octal, read as the
//     octal the author wrote: 755, "644" (mode: 755 unquoted);
//   - an integer that is not, taken as the value YAML already parsed from
//     an unquoted octal: 493 (from mode: 0755) is 0755;
//   - integers that could be either (420: 0644 parsed, or "0420"?) are
//     refused with a hint to quote the mode.
//
// Symbolic modes (u+x) are not accepted.
func ParseMode(v any) (string, error) {
	var s string
	switch x := v.(type) {
	case string:
		s = strings.TrimSpace(x)
	default:
		n, ok := value.Int(v)
		if !ok {
			return "", fmt.Errorf("want an octal mode like \"0755\", got %v", v)
		}
		s = strconv.Itoa(n)
	}
	if s == "" {
		return "", errors.New("empty mode: write an octal mode like \"0755\"")
	}
	low := strings.ToLower(s)
	if strings.HasPrefix(low, "0o") || (len(s) > 1 && s[0] == '0') {
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(low, "0o"), "0"), 8, 32)
		if err != nil || n > 0o7777 {
			return "", fmt.Errorf("%q is not an octal mode: write one like \"0755\"", s)
		}
		return strconv.FormatUint(n, 8), nil
	}
	if s == "0" {
		return "0", nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return "", fmt.Errorf("%q is not an octal mode (symbolic modes are not supported): write one like \"0755\"", s)
	}
	if want, ok := ambiguousModes[n]; ok {
		return "", fmt.Errorf("mode %d is ambiguous: YAML reads an unquoted %s as %d; quote the mode: mode: \"%s\"", n, want, n, want)
	}
	if o, err := strconv.ParseUint(s, 8, 32); err == nil && o <= 0o7777 {
		return strconv.FormatUint(o, 8), nil
	}
	if n <= 0o7777 {
		return strconv.FormatInt(n, 8), nil
	}
	return "", fmt.Errorf("%q is not a file mode: write one like \"0755\"", s)
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int32, int16, int8, uint, uint32, uint16, uint8, float32:
		return fmt.Sprint(x), true
	}
	return "", false
}

func toMap(v any) (map[string]any, bool) {
	switch x := v.(type) {
	case map[string]any:
		return x, true
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, v := range x {
			m[k] = v
		}
		return m, true
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, v := range x {
			m[fmt.Sprint(k)] = v
		}
		return m, true
	}
	return nil, false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case []any, []string:
		return "a list"
	case map[string]any, map[any]any, map[string]string:
		return "a mapping"
	}
	if _, ok := value.Int(v); ok {
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

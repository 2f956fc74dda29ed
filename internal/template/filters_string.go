// Jinja's string filters: join, split, replace, the regex family, title, b64decode, and Python's % formatting.

package template

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/ferrydeploy/ferry/internal/value"
)

// title is Jinja's: each word (after a space, '-', '(', '{', '[' or '<')
// starts upper case, the rest of it is lower case.
func title(s string) string {
	var b strings.Builder
	start := true
	for _, r := range s {
		if start {
			b.WriteRune(unicode.ToUpper(r))
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
		start = unicode.IsSpace(r) || strings.ContainsRune("-({[<", r)
	}
	return b.String()
}

func fJoin(a []any, kw kwargs) (any, error) {
	l, err := toList(arg(a, 0))
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	parts := make([]string, len(l))
	for i, x := range l {
		parts[i] = Text(x)
	}
	return strings.Join(parts, Text(opt(a, kw, 1, "d", ""))), nil
}

func fSplit(a []any, _ kwargs) (any, error) {
	s := Text(arg(a, 0))
	var parts []string
	if sep := arg(a, 1); sep == nil {
		parts = strings.Fields(s)
	} else if n, ok := toNumber(arg(a, 2)); ok {
		parts = strings.SplitN(s, Text(sep), int(n)+1)
	} else {
		parts = strings.Split(s, Text(sep))
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out, nil
}

func fReplace(a []any, _ kwargs) (any, error) {
	n := -1
	if c, ok := toNumber(arg(a, 3)); ok {
		n = int(c)
	}
	return strings.Replace(Text(arg(a, 0)), Text(arg(a, 1)), Text(arg(a, 2)), n), nil
}

var (
	regexMu    sync.Mutex
	regexCache = map[string]*regexp.Regexp{}
)

// pyRegex compiles a Python regular expression (the RE2 subset Go has).
func pyRegex(pat string, ignoreCase, multiline bool) (*regexp.Regexp, error) {
	if !multiline {
		pat = pyDollar(pat)
	}
	flags := ""
	if ignoreCase {
		flags += "i"
	}
	if multiline {
		flags += "m"
	}
	if flags != "" {
		pat = "(?" + flags + ")" + pat
	}
	regexMu.Lock()
	defer regexMu.Unlock()
	if re, ok := regexCache[pat]; ok {
		return re, nil
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %w (Go's RE2 has no lookaround or backreferences)", pat, err)
	}
	if len(regexCache) > 1000 {
		regexCache = map[string]*regexp.Regexp{}
	}
	regexCache[pat] = re
	return re, nil
}

// pyDollar gives `$` Python's meaning without MULTILINE (end of text, or
// before a newline that ends it) and turns Python's \Z into Go's \z.
func pyDollar(pat string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		switch {
		case c == '\\' && i+1 < len(pat):
			if pat[i+1] == 'Z' && !inClass {
				b.WriteString(`\z`)
			} else {
				b.WriteByte(c)
				b.WriteByte(pat[i+1])
			}
			i++
			continue
		case c == '[' && !inClass:
			inClass = true
		case c == ']' && inClass:
			inClass = false
		case c == '$' && !inClass:
			b.WriteString(`(?:\n?\z)`)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

var pyGroupRe = regexp.MustCompile(`\\(\d+)|\\g<(\w+)>`)

// pyReplacement turns Python's \1 and \g<name> into Go's ${1} and ${name}.
func pyReplacement(s string) string {
	s = strings.ReplaceAll(s, "$", "$$")
	return pyGroupRe.ReplaceAllStringFunc(s, func(m string) string {
		g := pyGroupRe.FindStringSubmatch(m)
		if g[1] != "" {
			return "${" + g[1] + "}"
		}
		return "${" + g[2] + "}"
	})
}

func fRegexReplace(a []any, kw kwargs) (any, error) {
	re, err := pyRegex(Text(arg(a, 1)), toBool(kw["ignorecase"]), toBool(kw["multiline"]))
	if err != nil {
		return nil, fmt.Errorf("regex_replace: %w", err)
	}
	return re.ReplaceAllString(Text(arg(a, 0)), pyReplacement(Text(opt(a, kw, 2, "replacement", "")))), nil
}

func fRegexSearch(a []any, kw kwargs) (any, error) {
	re, err := pyRegex(Text(arg(a, 1)), toBool(kw["ignorecase"]), toBool(kw["multiline"]))
	if err != nil {
		return nil, fmt.Errorf("regex_search: %w", err)
	}
	s := Text(arg(a, 0))
	m := re.FindStringSubmatch(s)
	if m == nil {
		return "", nil // Ansible gives None: falsy, and printable here
	}
	if len(a) <= 2 {
		return m[0], nil
	}
	var out []any
	for _, g := range a[2:] {
		ref := Text(g)
		if n, err := strconv.Atoi(strings.TrimPrefix(ref, `\`)); err == nil && n < len(m) {
			out = append(out, m[n])
		} else if name := strings.TrimSuffix(strings.TrimPrefix(ref, `\g<`), ">"); re.SubexpIndex(name) >= 0 {
			out = append(out, m[re.SubexpIndex(name)])
		}
	}
	return out, nil
}

func fRegexFindall(a []any, kw kwargs) (any, error) {
	re, err := pyRegex(Text(arg(a, 1)), toBool(kw["ignorecase"]), toBool(kw["multiline"]))
	if err != nil {
		return nil, fmt.Errorf("regex_findall: %w", err)
	}
	out := []any{}
	for _, m := range re.FindAllStringSubmatch(Text(arg(a, 0)), -1) {
		switch len(m) {
		case 1:
			out = append(out, m[0])
		case 2:
			out = append(out, m[1])
		default:
			g := make([]any, len(m)-1)
			for i, x := range m[1:] {
				g[i] = x
			}
			out = append(out, g)
		}
	}
	return out, nil
}

func fB64decode(a []any, _ kwargs) (any, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(Text(arg(a, 0))))
	if err != nil {
		return nil, fmt.Errorf("b64decode: %w", err)
	}
	return string(b), nil
}

var pyFmtRe = regexp.MustCompile(`%[-+ 0#]*\d*(?:\.\d+)?[sdifrxXoeEgG%]`)

// jMod is `%`: numbers modulo, or Python's printf-style string formatting.
func jMod(x, y any) (any, error) {
	if f, ok := x.(string); ok {
		args, err := toList(y)
		if err != nil || isString(y) {
			args = []any{y}
		}
		i := 0
		var ferr error
		out := pyFmtRe.ReplaceAllStringFunc(f, func(spec string) string {
			if spec == "%%" {
				return "%"
			}
			if i >= len(args) {
				ferr = errors.New("%: not enough arguments for format string")
				return spec
			}
			v := args[i]
			i++
			verb := spec[len(spec)-1]
			switch verb {
			case 's', 'r':
				return fmt.Sprintf(spec[:len(spec)-1]+"s", Text(v))
			case 'd', 'i':
				n, _ := toNumber(v)
				return fmt.Sprintf(spec[:len(spec)-1]+"d", int64(n))
			case 'x', 'X', 'o':
				n, _ := toNumber(v)
				return fmt.Sprintf(spec, int64(n))
			default:
				n, _ := toNumber(v)
				return fmt.Sprintf(spec, n)
			}
		})
		return out, ferr
	}
	a, ok1 := toNumber(x)
	b, ok2 := toNumber(y)
	if !ok1 || !ok2 || b == 0 {
		return nil, errors.New("%: want two numbers, the second not 0")
	}
	return numResult(a - b*math.Floor(a/b)), nil
}

// pyTimeLayout turns a strftime format into Go's layout.
func pyTimeLayout(f string) string {
	r := strings.NewReplacer("%Y", "2006", "%m", "01", "%d", "02", "%H", "15", "%M", "04", "%S", "05", "%f", "000000",
		"%y", "06", "%b", "Jan", "%B", "January", "%a", "Mon", "%A", "Monday", "%p", "PM", "%I", "03", "%z", "-0700", "%Z", "MST", "%%", "%")
	return r.Replace(f)
}

// pyPercent formats like Python's `fmt % args` for %s, %d, %i, %f, %r, %%.
func pyPercent(f string, args []any) (string, error) {
	var b strings.Builder
	n := 0
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 >= len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		verb := f[i]
		if verb == '%' {
			b.WriteByte('%')
			continue
		}
		if n >= len(args) {
			return "", errors.New("format: not enough arguments for the format string")
		}
		switch verb {
		case 's', 'r':
			b.WriteString(Text(args[n]))
		case 'd', 'i':
			x, ok := value.Int(args[n])
			if !ok {
				return "", fmt.Errorf("format: %%%c wants a number, got %s", verb, Describe(args[n]))
			}
			b.WriteString(strconv.Itoa(x))
		case 'f':
			x, ok := toNumber(args[n])
			if !ok {
				return "", fmt.Errorf("format: %%f wants a number, got %s", Describe(args[n]))
			}
			b.WriteString(strconv.FormatFloat(x, 'f', 6, 64))
		default:
			return "", fmt.Errorf("format: %%%c is not supported (use %%s, %%d, %%f)", verb)
		}
		n++
	}
	return b.String(), nil
}

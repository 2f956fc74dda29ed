package inventory

import (
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/ferrydeploy/ferry/diag"
)

// suggest is diag.Suggest, skipped for words too long to be a typo (its
// cost grows with the word's length times the candidates').
func suggest(word string, candidates []string) string {
	if len(word) > 64 {
		return ""
	}
	return diag.Suggest(word, candidates)
}

// token is one word of a shell-split line; col is the 0-based byte offset of
// its first character (an opening quote included).
type token struct {
	text string
	col  int
}

// lexError is a shell-split failure at byte offset col.
type lexError struct {
	msg string
	col int
}

func (e *lexError) Error() string { return e.msg }

// shellTokens splits s as Python's shlex.split(s, comments=comments) does,
// which is what Ansible's INI parser uses for host lines: POSIX quoting, and
// `#` starting a comment anywhere outside quotes.
func shellTokens(s string, comments bool) ([]token, error) {
	const (
		space = iota
		word
		squote
		dquote
	)
	var out []token
	var cur strings.Builder
	state, start, quoted := space, 0, false
	quoteAt := 0
	emit := func() {
		out = append(out, token{cur.String(), start})
		cur.Reset()
		quoted = false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case space, word:
			switch {
			case c == ' ' || c == '\t' || c == '\r' || c == '\n':
				if state == word {
					emit()
				}
				state = space
			case comments && c == '#':
				if state == word {
					emit()
				}
				return out, nil
			default:
				if state == space {
					start = i
					state = word
				}
				switch c {
				case '\'':
					state, quoted, quoteAt = squote, true, i
				case '"':
					state, quoted, quoteAt = dquote, true, i
				case '\\':
					if i+1 >= len(s) {
						return nil, &lexError{"no character after the backslash", i}
					}
					i++
					cur.WriteByte(s[i])
				default:
					cur.WriteByte(c)
				}
			}
		case squote:
			if c == '\'' {
				state = word
			} else {
				cur.WriteByte(c)
			}
		case dquote:
			switch {
			case c == '"':
				state = word
			case c == '\\':
				if i+1 >= len(s) {
					return nil, &lexError{"no character after the backslash", i}
				}
				if n := s[i+1]; n != '"' && n != '\\' {
					cur.WriteByte('\\')
				}
				i++
				cur.WriteByte(s[i])
			default:
				cur.WriteByte(c)
			}
		}
	}
	switch state {
	case squote, dquote:
		return nil, &lexError{"unterminated quote", quoteAt}
	case word:
		emit()
	}
	_ = quoted
	return out, nil
}

// shellSplit is shellTokens without positions.
func shellSplit(s string, comments bool) ([]string, error) {
	toks, err := shellTokens(s, comments)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = t.text
	}
	return out, nil
}

// pyValue interprets an INI value as Ansible does with ast.literal_eval:
// Python literals (numbers, True/False/None, quoted strings, lists, tuples,
// dicts) become values; anything else stays the string it is.
func pyValue(s string) any {
	p := &pyParser{s: s}
	v, err := p.value(0)
	if err != nil {
		return s
	}
	p.ws()
	if p.i != len(p.s) {
		return s
	}
	return v
}

type pyParser struct {
	s string
	i int
}

var errNotLiteral = errors.New("not a literal")

func (p *pyParser) ws() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *pyParser) value(depth int) (any, error) {
	if depth > 50 {
		return nil, errNotLiteral
	}
	p.ws()
	if p.i >= len(p.s) {
		return nil, errNotLiteral
	}
	switch c := p.s[p.i]; {
	case c == '\'' || c == '"':
		return p.str()
	case c == '[':
		p.i++
		l, err := p.seq(']', depth)
		return l, err
	case c == '(':
		p.i++
		l, err := p.seq(')', depth)
		return l, err
	case c == '{':
		p.i++
		return p.dict(depth)
	case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		j := p.i
		for j < len(p.s) && (isIdent(p.s[j])) {
			j++
		}
		switch p.s[p.i:j] {
		case "True":
			p.i = j
			return true, nil
		case "False":
			p.i = j
			return false, nil
		case "None":
			p.i = j
			return nil, nil
		}
	}
	return nil, errNotLiteral
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (p *pyParser) seq(end byte, depth int) ([]any, error) {
	out := []any{}
	for {
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == end {
			p.i++
			return out, nil
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		p.ws()
		if p.i >= len(p.s) {
			return nil, errNotLiteral
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case end:
		default:
			return nil, errNotLiteral
		}
	}
}

func (p *pyParser) dict(depth int) (map[string]any, error) {
	out := map[string]any{}
	for {
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return out, nil
		}
		k, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, errNotLiteral // a set, or not a literal
		}
		p.i++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		switch k.(type) {
		case map[string]any, []any:
			return nil, errNotLiteral
		}
		out[scalarString(k)] = v
		p.ws()
		if p.i >= len(p.s) {
			return nil, errNotLiteral
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
		default:
			return nil, errNotLiteral
		}
	}
}

func (p *pyParser) str() (string, error) {
	q := p.s[p.i]
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			return b.String(), nil
		case c == '\\' && p.i+1 < len(p.s):
			p.i++
			switch e := p.s[p.i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			case '\\', '\'', '"':
				b.WriteByte(e)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
			p.i++
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", errNotLiteral
}

func (p *pyParser) number() (any, error) {
	j := p.i
	neg := false
	if p.s[j] == '-' || p.s[j] == '+' {
		neg = p.s[j] == '-'
		j++
	}
	k := j
	for k < len(p.s) && (isIdent(p.s[k]) || p.s[k] == '.' || ((p.s[k] == '-' || p.s[k] == '+') && (p.s[k-1] == 'e' || p.s[k-1] == 'E'))) {
		k++
	}
	lit := strings.ReplaceAll(p.s[j:k], "_", "")
	if lit == "" || strings.Contains(p.s[j:k], "__") || strings.HasPrefix(p.s[j:k], "_") || strings.HasSuffix(p.s[j:k], "_") {
		return nil, errNotLiteral
	}
	p.i = k
	lower := strings.ToLower(lit)
	base := 10
	switch {
	case strings.HasPrefix(lower, "0x"):
		base, lower = 16, lower[2:]
	case strings.HasPrefix(lower, "0o"):
		base, lower = 8, lower[2:]
	case strings.HasPrefix(lower, "0b"):
		base, lower = 2, lower[2:]
	}
	if base != 10 || !strings.ContainsAny(lower, ".e") {
		if base == 10 && len(lower) > 1 && lower[0] == '0' && strings.Trim(lower, "0") != "" {
			return nil, errNotLiteral // Python 3 rejects 0755
		}
		n, err := strconv.ParseInt(lower, base, 64)
		if err != nil {
			return nil, errNotLiteral
		}
		if neg {
			n = -n
		}
		return int(n), nil
	}
	if strings.ContainsAny(lower, "abcdfghijklmnopqrstuvwxyz") {
		return nil, errNotLiteral
	}
	f, err := strconv.ParseFloat(lower, 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, errNotLiteral
	}
	if neg {
		f = -f
	}
	return f, nil
}

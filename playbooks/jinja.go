package playbooks

// Jinja → expr translation.
//
// ferry keeps one expression language inside (expr): a `{{ }}` body or a bare
// condition written in Jinja, as Ansible users write them, is translated into
// an equivalent expr program once, when it is compiled, and cached with it.
// Filters become calls of ferry functions (`x | default('d') | upper` →
// `$j_upper($j_default(x, "d"))`), tests become predicates (`x is defined`),
// `~` concatenates as text, `and`/`or`/`not` and `if/else` follow Jinja's
// truthiness. The translation is a small recursive-descent parser of Jinja's
// expression grammar that also accepts expr's own operators (`??`, `&&`, `||`,
// `!`, `? :`), so a ferry expression reads the same either way; what it cannot
// parse (closures, `let`, backquoted strings, expr-only operators) is handed
// to expr unchanged.
//
// Why translate instead of embedding a Go Jinja engine: one language keeps one
// set of semantics for undefined variables (an error unless `default`/`??`
// covers them), one cost bound (expr.MaxNodes), positioned errors, typed
// results (`{{ list }}` stays a list) and the compiled-program cache. See
// BenchmarkJinja* for the cost.

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jinjaError is a Jinja expression ferry cannot translate (unknown filter or test).
type jinjaError struct {
	msg    string
	offset int
	hint   string
}

func (e *jinjaError) Error() string { return e.msg }

// jtok is one token of a Jinja expression.
type jtok struct {
	kind byte // 'n' name, 's' string, 'd' number, 'o' operator, 0 end
	val  string
	off  int
}

func jlex(src string) ([]jtok, error) {
	var out []jtok
	ops := []string{"??", "&&", "||", "//", "**", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}",
		",", ":", ".", "|", "~", "+", "-", "*", "/", "%", "<", ">", "!", "?", "="}
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(src) && (src[j] == '_' || src[j] >= 'a' && src[j] <= 'z' || src[j] >= 'A' && src[j] <= 'Z' || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			out = append(out, jtok{'n', src[i:j], i})
			i = j
		case c >= '0' && c <= '9':
			j := i + 1
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '_') {
				j++
			}
			if j+1 < len(src) && src[j] == '.' && src[j+1] >= '0' && src[j+1] <= '9' {
				j++
				for j < len(src) && src[j] >= '0' && src[j] <= '9' {
					j++
				}
			}
			out = append(out, jtok{'d', strings.ReplaceAll(src[i:j], "_", ""), i})
			i = j
		case c == '\'' || c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(src) && src[j] != c; j++ {
				if src[j] == '\\' && j+1 < len(src) {
					j++
					switch src[j] {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case 'r':
						b.WriteByte('\r')
					case '\\', '\'', '"':
						b.WriteByte(src[j])
					default:
						// Python keeps unknown escapes (regexes: '\d', '\.') as written
						b.WriteByte('\\')
						b.WriteByte(src[j])
					}
					continue
				}
				b.WriteByte(src[j])
			}
			if j >= len(src) {
				return nil, &jinjaError{msg: "unterminated string", offset: i}
			}
			out = append(out, jtok{'s', b.String(), i})
			i = j + 1
		default:
			found := false
			for _, op := range ops {
				if strings.HasPrefix(src[i:], op) {
					out = append(out, jtok{'o', op, i})
					i += len(op)
					found = true
					break
				}
			}
			if !found {
				return nil, &jinjaError{msg: fmt.Sprintf("unexpected %q", c), offset: i}
			}
		}
	}
	return append(out, jtok{0, "", len(src)}), nil
}

// jparser turns tokens into expr source.
type jparser struct {
	toks  []jtok
	i     int
	depth int
}

const maxJinjaDepth = 200

func (p *jparser) peek() jtok { return p.toks[p.i] }
func (p *jparser) next() jtok {
	t := p.toks[p.i]
	if p.i < len(p.toks)-1 {
		p.i++
	}
	return t
}
func (p *jparser) isOp(v string) bool   { t := p.peek(); return t.kind == 'o' && t.val == v }
func (p *jparser) isName(v string) bool { t := p.peek(); return t.kind == 'n' && t.val == v }

func (p *jparser) fail(format string, a ...any) error {
	return &jinjaError{msg: fmt.Sprintf(format, a...), offset: p.peek().off}
}

func (p *jparser) expect(op string) error {
	if !p.isOp(op) {
		return p.fail("expected %q", op)
	}
	p.next()
	return nil
}

// translateJinja returns the expr program for a Jinja (or expr) expression.
func translateJinja(src string) (string, error) {
	toks, err := jlex(src)
	if err != nil {
		return "", err
	}
	p := &jparser{toks: toks}
	out, err := p.ternary()
	if err != nil {
		return "", err
	}
	if p.peek().kind != 0 {
		return "", p.fail("unexpected %q", p.peek().val)
	}
	return out, nil
}

func (p *jparser) enter() error {
	p.depth++
	if p.depth > maxJinjaDepth {
		return p.fail("expression nested too deeply")
	}
	return nil
}

// ternary: `a if c else b`, expr's `c ? a : b`, and `??`.
func (p *jparser) ternary() (string, error) {
	if err := p.enter(); err != nil {
		return "", err
	}
	defer func() { p.depth-- }()
	a, err := p.coalesce()
	if err != nil {
		return "", err
	}
	switch {
	case p.isName("if"):
		p.next()
		c, err := p.coalesce()
		if err != nil {
			return "", err
		}
		b := `""`
		if p.isName("else") {
			p.next()
			if b, err = p.ternary(); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("($j_truthy(%s) ? %s : %s)", c, a, b), nil
	case p.isOp("?"):
		p.next()
		x, err := p.ternary()
		if err != nil {
			return "", err
		}
		if err := p.expect(":"); err != nil {
			return "", err
		}
		y, err := p.ternary()
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("($j_truthy(%s) ? %s : %s)", a, x, y), nil
	}
	return a, nil
}

func (p *jparser) coalesce() (string, error) {
	a, err := p.or()
	if err != nil {
		return "", err
	}
	for p.isOp("??") {
		p.next()
		b, err := p.or()
		if err != nil {
			return "", err
		}
		a = fmt.Sprintf("(%s ?? %s)", a, b)
	}
	return a, nil
}

func (p *jparser) or() (string, error) {
	a, err := p.and()
	if err != nil {
		return "", err
	}
	for p.isName("or") || p.isOp("||") {
		p.next()
		b, err := p.and()
		if err != nil {
			return "", err
		}
		// Jinja's `or` yields an operand, not a bool (`x or 'default'`)
		a = fmt.Sprintf("($j_truthy(%s) ? %s : %s)", a, a, b)
	}
	return a, nil
}

func (p *jparser) and() (string, error) {
	a, err := p.not()
	if err != nil {
		return "", err
	}
	for p.isName("and") || p.isOp("&&") {
		p.next()
		b, err := p.not()
		if err != nil {
			return "", err
		}
		a = fmt.Sprintf("(!$j_truthy(%s) ? %s : %s)", a, a, b)
	}
	return a, nil
}

func (p *jparser) not() (string, error) {
	if p.isName("not") || p.isOp("!") {
		p.next()
		if err := p.enter(); err != nil {
			return "", err
		}
		defer func() { p.depth-- }()
		a, err := p.not()
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("!$j_truthy(%s)", a), nil
	}
	return p.compare()
}

func (p *jparser) compare() (string, error) {
	a, err := p.concat()
	if err != nil {
		return "", err
	}
	for {
		t := p.peek()
		switch {
		case t.kind == 'o' && (t.val == "==" || t.val == "!=" || t.val == "<" || t.val == ">" || t.val == "<=" || t.val == ">="):
			p.next()
			b, err := p.concat()
			if err != nil {
				return "", err
			}
			a = fmt.Sprintf("(%s %s %s)", a, t.val, b)
		case t.kind == 'n' && t.val == "in":
			p.next()
			b, err := p.concat()
			if err != nil {
				return "", err
			}
			a = fmt.Sprintf("$j_in(%s, %s)", a, b)
		case t.kind == 'n' && t.val == "not" && p.toks[p.i+1].kind == 'n' && p.toks[p.i+1].val == "in":
			p.next()
			p.next()
			b, err := p.concat()
			if err != nil {
				return "", err
			}
			a = fmt.Sprintf("!$j_in(%s, %s)", a, b)
		default:
			return a, nil
		}
	}
}

func (p *jparser) concat() (string, error) {
	a, err := p.sum()
	if err != nil {
		return "", err
	}
	for p.isOp("~") {
		p.next()
		b, err := p.sum()
		if err != nil {
			return "", err
		}
		a = fmt.Sprintf("$j_cat(%s, %s)", a, b)
	}
	return a, nil
}

func (p *jparser) sum() (string, error) {
	a, err := p.product()
	if err != nil {
		return "", err
	}
	for p.isOp("+") || p.isOp("-") {
		op := p.next().val
		b, err := p.product()
		if err != nil {
			return "", err
		}
		if op == "+" {
			a = fmt.Sprintf("$j_add(%s, %s)", a, b)
		} else {
			a = fmt.Sprintf("(%s - %s)", a, b)
		}
	}
	return a, nil
}

func (p *jparser) product() (string, error) {
	a, err := p.unary()
	if err != nil {
		return "", err
	}
	for p.isOp("*") || p.isOp("/") || p.isOp("//") || p.isOp("%") {
		op := p.next().val
		b, err := p.unary()
		if err != nil {
			return "", err
		}
		switch op {
		case "//":
			a = fmt.Sprintf("$j_floordiv(%s, %s)", a, b)
		case "%":
			a = fmt.Sprintf("$j_mod(%s, %s)", a, b)
		default:
			a = fmt.Sprintf("(%s %s %s)", a, op, b)
		}
	}
	return a, nil
}

func (p *jparser) unary() (string, error) {
	if p.isOp("-") || p.isOp("+") {
		op := p.next().val
		if err := p.enter(); err != nil {
			return "", err
		}
		defer func() { p.depth-- }()
		a, err := p.unary()
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("(%s%s)", op, a), nil
	}
	a, err := p.power()
	if err != nil {
		return "", err
	}
	return p.filters(a)
}

func (p *jparser) power() (string, error) {
	a, err := p.postfix()
	if err != nil {
		return "", err
	}
	if p.isOp("**") {
		p.next()
		b, err := p.postfix()
		if err != nil {
			return "", err
		}
		a = fmt.Sprintf("(%s ** %s)", a, b)
	}
	return a, nil
}

// filters reads `| name(args)` and `is [not] test(args)` after a value.
func (p *jparser) filters(a string) (string, error) {
	for {
		switch {
		case p.isOp("|"):
			p.next()
			t := p.next()
			if t.kind != 'n' {
				return "", p.fail("expected a filter name after |")
			}
			name := t.val
			for p.isOp(".") && p.toks[p.i+1].kind == 'n' { // ansible.builtin.to_json
				p.next()
				name = p.next().val
			}
			args := []string{a}
			if p.isOp("(") {
				more, err := p.callArgs()
				if err != nil {
					return "", err
				}
				args = append(args, more...)
			}
			f, ok := jinjaFilters[name]
			switch {
			case ok:
			case contains(funcNames, name) || isExprBuiltin(name):
				f = name // expr's own pipe: `x | upper()`
			default:
				return "", &jinjaError{msg: fmt.Sprintf("unknown filter %q", name), offset: t.off,
					hint: suggestFilter(name)}
			}
			a = fmt.Sprintf("%s(%s)", f, strings.Join(args, ", "))
		case p.isName("is"):
			p.next()
			neg := false
			if p.isName("not") {
				p.next()
				neg = true
			}
			t := p.next()
			if t.kind != 'n' {
				return "", p.fail("expected a test name after is")
			}
			f, ok := jinjaTests[t.val]
			if !ok {
				return "", &jinjaError{msg: fmt.Sprintf("unknown test %q", t.val), offset: t.off, hint: suggestTest(t.val)}
			}
			args := []string{a}
			switch nt := p.peek(); {
			case p.isOp("("):
				more, err := p.callArgs()
				if err != nil {
					return "", err
				}
				args = append(args, more...)
			case nt.kind == 's' || nt.kind == 'd' || nt.kind == 'n' && !contains([]string{"and", "or", "else", "if", "in", "not", "is"}, nt.val):
				arg, err := p.postfix()
				if err != nil {
					return "", err
				}
				args = append(args, arg)
			}
			a = fmt.Sprintf("%s(%s)", f, strings.Join(args, ", "))
			if neg {
				a = "!" + a
			}
		default:
			return a, nil
		}
	}
}

// callArgs reads `(a, b, k=v)`; keyword arguments become a trailing $j_kw({...}).
func (p *jparser) callArgs() ([]string, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	var args, kw []string
	for !p.isOp(")") {
		if p.peek().kind == 'n' && p.toks[p.i+1].kind == 'o' && p.toks[p.i+1].val == "=" {
			k := p.next().val
			p.next()
			v, err := p.ternary()
			if err != nil {
				return nil, err
			}
			kw = append(kw, fmt.Sprintf("%s: %s", strconv.Quote(k), v))
		} else {
			v, err := p.ternary()
			if err != nil {
				return nil, err
			}
			args = append(args, v)
		}
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	if len(kw) > 0 {
		args = append(args, fmt.Sprintf("$j_kw({%s})", strings.Join(kw, ", ")))
	}
	return args, nil
}

func (p *jparser) postfix() (string, error) {
	if err := p.enter(); err != nil {
		return "", err
	}
	defer func() { p.depth-- }()
	a, fn, err := p.primary()
	if err != nil {
		return "", err
	}
	for {
		switch {
		case p.isOp("."):
			p.next()
			t := p.next()
			if t.kind != 'n' && t.kind != 'd' {
				return "", p.fail("expected an attribute name after .")
			}
			if p.isOp("(") && t.kind == 'n' {
				args, err := p.callArgs()
				if err != nil {
					return "", err
				}
				a = fmt.Sprintf("$j_method(%s, %s%s)", a, strconv.Quote(t.val), joinArgs(args))
				continue
			}
			if t.kind == 'd' { // x.0 is x[0] in Jinja
				a = fmt.Sprintf("%s[%s]", a, t.val)
			} else if isPlainIdent(t.val) {
				a = fmt.Sprintf("%s.%s", a, t.val)
			} else {
				a = fmt.Sprintf("%s[%s]", a, strconv.Quote(t.val))
			}
		case p.isOp("["):
			p.next()
			var from, to string
			var err error
			if !p.isOp(":") {
				if from, err = p.ternary(); err != nil {
					return "", err
				}
			}
			if p.isOp(":") {
				p.next()
				if !p.isOp("]") {
					if to, err = p.ternary(); err != nil {
						return "", err
					}
				}
				if err := p.expect("]"); err != nil {
					return "", err
				}
				a = fmt.Sprintf("%s[%s:%s]", a, from, to)
				continue
			}
			if err := p.expect("]"); err != nil {
				return "", err
			}
			a = fmt.Sprintf("%s[%s]", a, from)
		case p.isOp("(") && fn != "":
			args, err := p.callArgs()
			if err != nil {
				return "", err
			}
			if g, ok := jinjaGlobals[fn]; ok {
				if g == "$j_lookup" || g == "$j_query" {
					args = append([]string{"$env"}, args...) // lookup('template') renders with the task's variables
				}
				a = fmt.Sprintf("%s(%s)", g, strings.Join(args, ", "))
			} else {
				a = fmt.Sprintf("%s(%s)", fn, strings.Join(args, ", "))
			}
			fn = ""
		default:
			return a, nil
		}
	}
}

func joinArgs(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return ", " + strings.Join(args, ", ")
}

// isPlainIdent: a name expr reads as an identifier (not one of its keywords).
func isPlainIdent(s string) bool {
	switch s {
	case "in", "not", "and", "or", "let", "matches", "contains", "startsWith", "endsWith", "true", "false", "nil", "if", "else":
		return false
	}
	return true
}

// primary returns the value and, for a bare name, the name (it may be called).
func (p *jparser) primary() (string, string, error) {
	t := p.next()
	switch t.kind {
	case 's':
		return strconv.Quote(t.val), "", nil
	case 'd':
		return t.val, "", nil
	case 'n':
		switch t.val {
		case "true", "True":
			return "true", "", nil
		case "false", "False":
			return "false", "", nil
		case "none", "None", "nil":
			return "nil", "", nil
		case "and", "or", "not", "in", "is", "if", "else", "let":
			return "", "", &jinjaError{msg: fmt.Sprintf("unexpected %q", t.val), offset: t.off}
		}
		if !isPlainIdent(t.val) {
			return "", "", &jinjaError{msg: fmt.Sprintf("unexpected %q", t.val), offset: t.off}
		}
		return t.val, t.val, nil
	case 'o':
		switch t.val {
		case "(":
			first, err := p.ternary()
			if err != nil {
				return "", "", err
			}
			if p.isOp(",") { // a tuple is a list
				items := []string{first}
				for p.isOp(",") {
					p.next()
					if p.isOp(")") {
						break
					}
					v, err := p.ternary()
					if err != nil {
						return "", "", err
					}
					items = append(items, v)
				}
				if err := p.expect(")"); err != nil {
					return "", "", err
				}
				return "[" + strings.Join(items, ", ") + "]", "", nil
			}
			if err := p.expect(")"); err != nil {
				return "", "", err
			}
			return "(" + first + ")", "", nil
		case "[":
			var items []string
			for !p.isOp("]") {
				v, err := p.ternary()
				if err != nil {
					return "", "", err
				}
				items = append(items, v)
				if !p.isOp(",") {
					break
				}
				p.next()
			}
			if err := p.expect("]"); err != nil {
				return "", "", err
			}
			return "[" + strings.Join(items, ", ") + "]", "", nil
		case "{":
			var pairs []string
			for !p.isOp("}") {
				var k string
				kt := p.peek()
				if kt.kind == 'n' && p.toks[p.i+1].kind == 'o' && p.toks[p.i+1].val == ":" {
					// a bare name as a key is the name itself (expr's map syntax)
					p.next()
					k = strconv.Quote(kt.val)
				} else {
					var err error
					if k, err = p.ternary(); err != nil {
						return "", "", err
					}
					if kt.kind != 's' && kt.kind != 'd' {
						k = "(" + k + ")"
					}
				}
				if err := p.expect(":"); err != nil {
					return "", "", err
				}
				v, err := p.ternary()
				if err != nil {
					return "", "", err
				}
				pairs = append(pairs, k+": "+v)
				if !p.isOp(",") {
					break
				}
				p.next()
			}
			if err := p.expect("}"); err != nil {
				return "", "", err
			}
			return "{" + strings.Join(pairs, ", ") + "}", "", nil
		}
	case 0:
		return "", "", &jinjaError{msg: "unexpected end of expression", offset: t.off}
	}
	return "", "", &jinjaError{msg: fmt.Sprintf("unexpected %q", t.val), offset: t.off}
}

// sourceOffsets maps a name read by a translated program back to where it is
// written in the Jinja source: each call returns the next unused occurrence
// (0 when the name is not found), so that errors point at the variable.
func sourceOffsets(src string) func(name string) int {
	toks, _ := jlex(src)
	used := map[int]bool{}
	return func(name string) int {
		first := -1
		for i, t := range toks {
			if t.kind != 'n' || t.val != name || (i > 0 && toks[i-1].kind == 'o' && toks[i-1].val == ".") {
				continue
			}
			if first < 0 {
				first = t.off
			}
			if !used[t.off] {
				used[t.off] = true
				return utf8.RuneCountInString(src[:t.off])
			}
		}
		if first < 0 {
			return 0
		}
		return utf8.RuneCountInString(src[:first])
	}
}

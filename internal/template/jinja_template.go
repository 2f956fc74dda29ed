package template

import (
	"fmt"
	"strings"

	"github.com/ferrydeploy/ferry/diag"
)

// Template files (the template module) may hold Jinja statements as well as
// {{ }}: `{% if %}`/`{% elif %}`/`{% else %}`/`{% endif %}`,
// `{% for x in list %}`/`{% for k, v in map.items() %}` (with `loop.index`,
// `loop.first`, `loop.last`, `{% else %}`), `{% set x = expr %}`, `{# comments #}`
// and `-` whitespace control. As in Ansible, the newline after a statement is
// dropped (trim_blocks). Expressions are compiled like every other one.

type tnode struct {
	kind     byte // 't' text, 'e' expression, 'i' if, 'f' for, 's' set
	text     string
	prog     *program
	line     int
	conds    []*program // if/elif conditions
	branches [][]*tnode // bodies of conds, plus else (one more when present)
	names    []string   // for: loop variables; set: the name
	body     []*tnode
	orelse   []*tnode
}

type ttoken struct {
	kind byte // 't' text, 'e' {{ }}, 's' {% %}
	text string
	line int
}

const maxTemplateOutput = 64 << 20

// RenderTemplateFile renders a template file's text with vars; pos names the
// file (or task) for errors, which carry the template's line.
func RenderTemplateFile(text string, pos diag.Pos, vars map[string]any) (string, error) {
	toks, err := lexTemplate(text)
	if err != nil {
		return "", fmt.Errorf("%s: %w", pos, err)
	}
	tp := &tparser{toks: toks}
	nodes, end, err := tp.parse(nil)
	if err == nil && end != "" {
		err = fmt.Errorf("line %d: {%% %s %%} without its opening statement", tp.line(), end)
	}
	if err != nil {
		return "", fmt.Errorf("%s: template: %w", pos, err)
	}
	var b strings.Builder
	steps := 0
	if err := execTemplate(nodes, copyVars(vars), &b, &steps); err != nil {
		return "", fmt.Errorf("%s: template: %w", pos, err)
	}
	return b.String(), nil
}

func copyVars(v map[string]any) map[string]any {
	out := make(map[string]any, len(v)+4)
	for k, x := range v {
		out[k] = x
	}
	return out
}

func lexTemplate(s string) ([]ttoken, error) {
	var out []ttoken
	line := 1
	trimNext := false
	i, textStart := 0, 0
	emitText := func(t string, stripRight bool) {
		if trimNext {
			t = strings.TrimLeft(t, " \t\r\n")
		}
		if stripRight {
			t = strings.TrimRight(t, " \t\r\n")
		}
		if t != "" {
			out = append(out, ttoken{kind: 't', text: t, line: line})
		}
	}
	for i+1 < len(s) {
		if s[i] != '{' || (s[i+1] != '{' && s[i+1] != '%' && s[i+1] != '#') {
			i++
			continue
		}
		kind := s[i+1]
		strip := i+2 < len(s) && s[i+2] == '-'
		emitText(s[textStart:i], strip)
		line += strings.Count(s[textStart:i], "\n")
		trimNext = false
		bodyStart := i + 2
		if strip {
			bodyStart++
		}
		var end int
		switch kind {
		case '{':
			j, err := scanExpr(s, i+2)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", line, err)
			}
			end = j
		case '%', '#':
			closer := string(kind) + "}"
			j := strings.Index(s[bodyStart:], closer)
			if j < 0 {
				return nil, fmt.Errorf("line %d: unclosed {%c", line, kind)
			}
			end = bodyStart + j
		}
		body := s[bodyStart:end]
		if strings.HasSuffix(body, "-") {
			body = body[:len(body)-1]
			trimNext = true
		}
		switch kind {
		case '{':
			out = append(out, ttoken{kind: 'e', text: body, line: line})
		case '%':
			out = append(out, ttoken{kind: 's', text: strings.TrimSpace(body), line: line})
		}
		line += strings.Count(s[i:end+2], "\n")
		i = end + 2
		if kind != '{' && i < len(s) && s[i] == '\n' && !trimNext {
			i++ // trim_blocks
			line++
		}
		textStart = i
	}
	emitText(s[textStart:], false)
	return out, nil
}

type tparser struct {
	toks []ttoken
	i    int
}

func (p *tparser) line() int {
	if p.i > 0 && p.i <= len(p.toks) {
		return p.toks[p.i-1].line
	}
	return 1
}

// parse reads nodes until one of the statements in stop; it returns which.
func (p *tparser) parse(stop []string) ([]*tnode, string, error) {
	var out []*tnode
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		p.i++
		switch t.kind {
		case 't':
			out = append(out, &tnode{kind: 't', text: t.text})
		case 'e':
			prog, err := compileProgram(t.text)
			if err != nil {
				return nil, "", fmt.Errorf("line %d: {{%s}}: %v", t.line, t.text, err)
			}
			out = append(out, &tnode{kind: 'e', prog: prog, line: t.line})
		case 's':
			word, rest, _ := strings.Cut(t.text, " ")
			rest = strings.TrimSpace(rest)
			for _, s := range stop {
				if word == s {
					p.i-- // the caller reads it
					return out, word, nil
				}
			}
			n, err := p.statement(word, rest, t.line)
			if err != nil {
				return nil, "", err
			}
			if n == nil {
				return nil, "", fmt.Errorf("line %d: unexpected {%% %s %%}", t.line, t.text)
			}
			out = append(out, n)
		}
	}
	if len(stop) > 0 {
		return nil, "", fmt.Errorf("unclosed block: expected {%% %s %%}", stop[len(stop)-1])
	}
	return out, "", nil
}

func (p *tparser) statement(word, rest string, line int) (*tnode, error) {
	compile := func(src string) (*program, error) {
		prog, err := compileProgram(src)
		if err != nil {
			return nil, fmt.Errorf("line %d: {%% %s %s %%}: %v", line, word, src, err)
		}
		return prog, nil
	}
	switch word {
	case "if":
		n := &tnode{kind: 'i', line: line}
		cond := rest
		for {
			c, err := compile(cond)
			if err != nil {
				return nil, err
			}
			body, end, err := p.parse([]string{"elif", "else", "endif"})
			if err != nil {
				return nil, err
			}
			n.conds = append(n.conds, c)
			n.branches = append(n.branches, body)
			st := p.toks[p.i]
			p.i++
			switch end {
			case "elif":
				_, cond, _ = strings.Cut(st.text, " ")
				continue
			case "else":
				body, _, err := p.parse([]string{"endif"})
				if err != nil {
					return nil, err
				}
				p.i++
				n.branches = append(n.branches, body)
			}
			return n, nil
		}
	case "for":
		lhs, iter, ok := strings.Cut(rest, " in ")
		if !ok {
			return nil, fmt.Errorf("line %d: want {%% for x in list %%}", line)
		}
		n := &tnode{kind: 'f', line: line}
		for _, name := range strings.Split(lhs, ",") {
			name = strings.TrimSpace(name)
			if !IsIdent(name) {
				return nil, fmt.Errorf("line %d: for: %q is not a variable name", line, name)
			}
			n.names = append(n.names, name)
		}
		prog, err := compile(iter)
		if err != nil {
			return nil, err
		}
		n.prog = prog
		body, end, err := p.parse([]string{"else", "endfor"})
		if err != nil {
			return nil, err
		}
		p.i++
		n.body = body
		if end == "else" {
			if n.orelse, _, err = p.parse([]string{"endfor"}); err != nil {
				return nil, err
			}
			p.i++
		}
		return n, nil
	case "set":
		name, val, ok := strings.Cut(rest, "=")
		name = strings.TrimSpace(name)
		if !ok || !IsIdent(name) {
			return nil, fmt.Errorf("line %d: want {%% set name = expression %%}", line)
		}
		prog, err := compile(val)
		if err != nil {
			return nil, err
		}
		return &tnode{kind: 's', names: []string{name}, prog: prog, line: line}, nil
	}
	return nil, nil
}

// maxTemplateSteps bounds the work of one template (loop iterations and
// nodes), so that nested loops cannot run for ever with empty bodies.
const maxTemplateSteps = 1_000_000

func execTemplate(nodes []*tnode, vars map[string]any, b *strings.Builder, steps *int) error {
	run := func(n *tnode, p *program) (any, error) {
		v, err := p.run(vars, func(int) diag.Pos { return diag.Pos{} })
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n.line, err)
		}
		return v, nil
	}
	for _, n := range nodes {
		*steps++
		if *steps > maxTemplateSteps {
			return fmt.Errorf("template does over %d steps (loops too large?)", maxTemplateSteps)
		}
		if b.Len() > maxTemplateOutput {
			return fmt.Errorf("output over %d MiB", maxTemplateOutput>>20)
		}
		switch n.kind {
		case 't':
			b.WriteString(n.text)
		case 'e':
			v, err := run(n, n.prog)
			if err != nil {
				return err
			}
			if v == nil && !n.prog.optional {
				return fmt.Errorf("line %d: {{%s}} is nil (a missing key?): give a default with | default('')", n.line, n.prog.src)
			}
			b.WriteString(Text(v))
		case 'i':
			done := false
			for i, c := range n.conds {
				v, err := run(n, c)
				if err != nil {
					return err
				}
				if truthy(v) {
					if err := execTemplate(n.branches[i], vars, b, steps); err != nil {
						return err
					}
					done = true
					break
				}
			}
			if !done && len(n.branches) > len(n.conds) {
				if err := execTemplate(n.branches[len(n.conds)], vars, b, steps); err != nil {
					return err
				}
			}
		case 's':
			v, err := run(n, n.prog)
			if err != nil {
				return err
			}
			vars[n.names[0]] = v
		case 'f':
			v, err := run(n, n.prog)
			if err != nil {
				return err
			}
			var items []any
			if m, ok := v.(map[string]any); ok && len(n.names) == 1 {
				items, _ = toList(m)
			} else if items, err = toList(v); err != nil {
				return fmt.Errorf("line %d: for: %v", n.line, err)
			}
			if len(items) == 0 {
				if err := execTemplate(n.orelse, vars, b, steps); err != nil {
					return err
				}
				continue
			}
			inner := copyVars(vars)
			for i, it := range items {
				*steps++
				if *steps > maxTemplateSteps {
					return fmt.Errorf("line %d: template does over %d steps (loops too large?)", n.line, maxTemplateSteps)
				}
				if len(n.names) == 1 {
					inner[n.names[0]] = it
				} else {
					parts, _ := it.([]any)
					for j, name := range n.names {
						inner[name] = arg(parts, j)
					}
				}
				inner["loop"] = map[string]any{"index": i + 1, "index0": i, "first": i == 0, "last": i == len(items)-1,
					"length": len(items), "revindex": len(items) - i}
				if err := execTemplate(n.body, inner, b, steps); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

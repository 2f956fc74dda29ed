package template

// Jinja's {% if %} and {% raw %} in a playbook string, as Ansible renders
// them (`name: "app{% if blue_green %}_{{ color }}{% endif %}"`, or a
// folded `>-` block choosing between two values). The string is turned into
// one expression: text as string literals, {{ e }} as e, an if chain as
// `(a if c else b)`, joined with ~; whitespace control (`{%-`, `-%}`) and
// Ansible's trim_blocks (the newline after a tag is dropped) apply. {% for %}
// and the other statements stay for template files.

import (
	"errors"
	"regexp"
	"strings"
)

// stmtRe finds the statements a playbook string may hold.
var stmtRe = regexp.MustCompile(`\{%(-?)\s*(if|elif|else|endif|raw|endraw)\b((?:[^%'"]|%[^}]|'[^']*'|"[^"]*")*?)(-?)%\}`)

// HasStatement reports whether s holds an {% if %} or {% raw %} tag.
func HasStatement(s string) bool { return strings.Contains(s, "{%") && stmtRe.MatchString(s) }

type stmtNode struct {
	text     string // literal text (kind 't')
	expr     string // {{ }} body (kind 'e')
	kind     byte   // 't', 'e', 'i'
	conds    []string
	branches [][]*stmtNode // one per cond, then else (if any)
}

// translateStatements rewrites s (which holds statements) as one {{ }}.
func translateStatements(s string) (string, error) {
	nodes, err := parseStatements(s)
	if err != nil {
		return "", err
	}
	return "{{ " + joinNodes(nodes) + " }}", nil
}

// parseStatements parses the whole of s into nodes.
func parseStatements(s string) ([]*stmtNode, error) {
	p := &stmtParser{s: s}
	nodes, end, err := p.parse(0)
	if err != nil {
		return nil, err
	}
	if end != "" {
		return nil, errors.New("{% " + end + " %} without {% if %}")
	}
	return nodes, nil
}

type stmtParser struct {
	s         string
	i         int
	trimLeft  bool // the next text loses its leading whitespace (-%})
	trimBlock bool // the next text loses one leading newline (trim_blocks)
}

// text appends literal text, applying the pending trims, and returns it.
func (p *stmtParser) addText(out *[]*stmtNode, t string) {
	if p.trimLeft {
		t = strings.TrimLeft(t, " \t\r\n")
	} else if p.trimBlock {
		t = strings.TrimPrefix(t, "\n")
	}
	p.trimLeft, p.trimBlock = false, false
	if t != "" {
		*out = append(*out, &stmtNode{kind: 't', text: t})
	}
}

// parse reads nodes until an elif/else/endif (returned as end) or the end.
func (p *stmtParser) parse(depth int) ([]*stmtNode, string, error) {
	if depth > 20 {
		return nil, "", errors.New("{% if %} nested too deeply")
	}
	var out []*stmtNode
	for p.i < len(p.s) {
		rest := p.s[p.i:]
		e := strings.Index(rest, "{{")
		loc := stmtRe.FindStringSubmatchIndex(rest)
		if loc != nil && (e < 0 || loc[0] < e) {
			before := rest[:loc[0]]
			if loc[3] > loc[2] { // {%- trims the text before
				before = strings.TrimRight(before, " \t\r\n")
			}
			p.addText(&out, before)
			word := rest[loc[4]:loc[5]]
			arg := strings.TrimSpace(rest[loc[6]:loc[7]])
			p.i += loc[1]
			p.trimLeft = loc[9] > loc[8]
			p.trimBlock = true
			switch word {
			case "raw":
				end := regexp.MustCompile(`\{%-?\s*endraw\s*-?%\}`).FindStringIndex(p.s[p.i:])
				if end == nil {
					return nil, "", errors.New("{% raw %} without {% endraw %}")
				}
				p.addText(&out, p.s[p.i:p.i+end[0]])
				p.i += end[1]
				p.trimBlock = true
			case "endraw":
				return nil, "", errors.New("{% endraw %} without {% raw %}")
			case "if":
				if arg == "" {
					return nil, "", errors.New("{% if %} needs a condition")
				}
				n := &stmtNode{kind: 'i', conds: []string{arg}}
				for {
					body, end, err := p.parse(depth + 1)
					if err != nil {
						return nil, "", err
					}
					n.branches = append(n.branches, body)
					switch {
					case end == "":
						return nil, "", errors.New("{% if %} without {% endif %}")
					case strings.HasPrefix(end, "elif "):
						n.conds = append(n.conds, strings.TrimPrefix(end, "elif "))
						continue
					case end == "else":
						body, end, err = p.parse(depth + 1)
						if err != nil {
							return nil, "", err
						}
						if end != "endif" {
							return nil, "", errors.New("{% else %} must be followed by {% endif %}")
						}
						n.branches = append(n.branches, body)
					}
					break
				}
				out = append(out, n)
			case "elif":
				if arg == "" {
					return nil, "", errors.New("{% elif %} needs a condition")
				}
				return out, "elif " + arg, nil
			default: // else, endif
				return out, word, nil
			}
			continue
		}
		if e < 0 {
			p.addText(&out, rest)
			p.i = len(p.s)
			break
		}
		p.addText(&out, rest[:e])
		j, err := scanExpr(p.s, p.i+e+2)
		if err != nil {
			return nil, "", err
		}
		body := p.s[p.i+e+2 : j]
		if strings.HasPrefix(body, "-") { // {{- trims the text before
			body = body[1:]
			if n := len(out); n > 0 && out[n-1].kind == 't' {
				out[n-1].text = strings.TrimRight(out[n-1].text, " \t\r\n")
			}
		}
		p.i = j + 2
		if strings.HasSuffix(body, "-") {
			body = body[:len(body)-1]
			p.trimLeft = true
		}
		if strings.TrimSpace(body) == "" {
			return nil, "", errors.New("empty {{ }}")
		}
		out = append(out, &stmtNode{kind: 'e', expr: body})
	}
	return out, "", nil
}

// joinNodes is the expression for a list of nodes.
func joinNodes(nodes []*stmtNode) string {
	if len(nodes) == 0 {
		return "''"
	}
	if len(nodes) == 1 && nodes[0].kind == 'e' {
		return "(" + nodes[0].expr + ")" // alone, it keeps its type
	}
	parts := make([]string, len(nodes))
	for i, n := range nodes {
		switch n.kind {
		case 't':
			parts[i] = quoteJinja(n.text)
		case 'e':
			parts[i] = "((" + n.expr + ") | string)"
		default:
			parts[i] = ifExpr(n, 0)
		}
	}
	return strings.Join(parts, " ~ ")
}

func ifExpr(n *stmtNode, k int) string {
	if k == len(n.conds) {
		if k < len(n.branches) {
			return "(" + joinNodes(n.branches[k]) + ")"
		}
		return "''"
	}
	return "((" + joinNodes(n.branches[k]) + ") if (" + n.conds[k] + ") else " + ifExpr(n, k+1) + ")"
}

// quoteJinja writes t as a single-quoted Jinja string literal.
func quoteJinja(t string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return "'" + r.Replace(t) + "'"
}

// AsExpression rewrites a template string (text, {{ }}, {% if %}) as one
// expression whose value is the rendered text, e.g. for a condition that
// compares what a name renders to at run time with what it rendered to
// earlier.
func AsExpression(s string) (string, error) {
	nodes, err := parseStatements(s)
	if err != nil {
		return "", err
	}
	return "((" + joinNodes(nodes) + ") | string)", nil
}

// QuoteString writes s as a Jinja string literal.
func QuoteString(s string) string { return quoteJinja(s) }

package playbooks

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/internal/value"
	"github.com/ferrydeploy/ferry/internal/yamlnode"
)

// Load reads and validates the playbook at path. Every problem found is
// reported at once, as a diag.List. environ is the controller's
// environment (KEY=VALUE, as cli.Main is given it): it says where roles
// are found (ANSIBLE_ROLES_PATH, ANSIBLE_CONFIG, HOME for ~/.ansible.cfg);
// the loader never reads the process's own.
func Load(path string, environ []string) (*Playbook, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, diag.Invalidf("read playbook: %w", err)
	}
	pb, err := parse(path, src, environ)
	if err != nil {
		return nil, err
	}
	return pb, nil
}

// loader holds the state of one Parse.
type loader struct {
	dir    string // relative src paths of tasks resolve here ("" = the playbook's directory)
	depth  int    // include nesting
	inRole bool   // reading a role's defaults/vars, whose paths are resolved
	seen   *seen  // shared with the loaders of included files
	warns  []*diag.Error
	path   string
	src    []byte
	errs   diag.List
	doc    *yamlnode.Doc // resolves aliases under one budget for the document
}

// resolve follows aliases (*anchor) to the node they name.
func (l *loader) resolve(n *yaml.Node) *yaml.Node {
	return l.resolver().Resolve(n)
}

// resolver is the alias budget of the document, shared with the loaders of
// the files it includes.
func (l *loader) resolver() *yamlnode.Doc {
	if l.doc == nil {
		l.doc = yamlnode.New(0)
	}
	return l.doc
}

// expansionErr reports the document's alias expansion problem, once.
func (l *loader) expansionErr() {
	if l.doc == nil || l.doc.Err() == nil {
		return
	}
	e := l.doc.Err()
	l.errorf(l.pos(e.Node), e.Hint(), "%s", e.Error())
}

// Parse validates src as the playbook at path, with no controller
// environment (roles are found next to the playbook and through the
// ansible.cfg files of its directory, the working directory and /etc).
func Parse(path string, src []byte) (*Playbook, error) {
	pb, err := parse(path, src, nil)
	if err != nil {
		return nil, err
	}
	return pb, nil
}

// LoadChecked is Load then Check, for `ferry check`: when the playbook has
// load problems (an unsupported module, a bad argument), the variables of
// what did load are checked too, so one report shows everything. With
// problems, the playbook is returned too when its plays could be read (for
// its warnings); it must not be run.
func LoadChecked(path string, known map[string]bool, environ []string) (*Playbook, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, diag.Invalidf("read playbook: %w", err)
	}
	pb, err := parse(path, src, environ)
	if pb == nil {
		return nil, err
	}
	var errs diag.List
	if err != nil {
		if e := errs.Collect(err); e != nil {
			return nil, err
		}
	}
	if cerr := pb.Check(known); cerr != nil {
		if e := errs.Collect(cerr); e != nil {
			return nil, cerr
		}
	}
	return pb, errs.Err()
}

// parse loads the playbook; with load problems it returns them with what
// loaded (nil when not even the plays could be read).
func parse(path string, src []byte, environ []string) (*Playbook, error) {
	l := &loader{path: path, src: src, seen: newSeen()}
	l.seen.playbook, l.seen.environ = path, environ
	pb := &Playbook{Path: path, src: src}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, diag.List{l.yamlError(err)}.Err()
	}
	l.statements(&doc)
	if doc.Kind == 0 || len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
		l.errorf(diag.Pos{File: path, Line: 1, Col: 1}, "a playbook is a list of plays: start with `- hosts: PATTERN`", "playbook is empty")
		return nil, l.errs.Err()
	}
	root := l.resolve(doc.Content[0])
	if root.Kind != yaml.SequenceNode {
		hint := "a playbook is a list of plays: start with `- hosts: PATTERN`"
		if root.Kind == yaml.MappingNode {
			hint = "a playbook is a list of plays: put `- ` before the first key of the play"
		}
		l.errorf(l.pos(root), hint, "playbook must be a list of plays, not %s", kindName(root))
		return nil, l.errs.Err()
	}
	for _, item := range root.Content {
		if l.doc != nil && l.doc.Err() != nil {
			break
		}
		item = l.resolve(item)
		if plays, ok := l.importPlaybook(item); ok {
			pb.Plays = append(pb.Plays, plays...)
		} else if p := l.play(item); p != nil {
			pb.Plays = append(pb.Plays, p)
		}
	}
	if len(root.Content) == 0 {
		l.errorf(l.pos(root), "add a play: `- hosts: PATTERN`", "playbook has no plays")
	}
	l.expansionErr()
	pb.Warnings = l.warns
	l.errs = onceEach(l.errs)
	if err := l.errs.Err(); err != nil {
		if l.doc != nil && l.doc.Err() != nil {
			return nil, err
		}
		return pb, err
	}
	return pb, nil
}

// onceEach drops repeats of a problem at the same position: a task file
// included by two plays (or twice in one) is read twice, and reported once.
func onceEach(errs diag.List) diag.List {
	seen := map[string]bool{}
	out := errs[:0]
	for _, e := range errs {
		k := e.Pos.String() + "\x00" + e.Msg
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

var yamlLineRe = regexp.MustCompile(`^line (\d+)`)

// parserProblems are yaml.v3's parser (not scanner) messages.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'": true, "did not find expected ',' or '}'": true,
	"did not find expected '-' indicator": true, "did not find expected <document start>": true,
	"did not find expected <stream-start>": true, "did not find expected key": true,
	"did not find expected node content": true, "found duplicate %TAG directive": true,
	"found duplicate %YAML directive": true, "found incompatible YAML document": true,
	"found undefined tag handle": true,
}

func (l *loader) yamlError(err error) *diag.Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimSpace(strings.Replace(msg, m[0]+":", "", 1))
		// yaml.v3 reports parser errors with 0-based lines and scanner errors 1-based
		if parserProblems[msg] {
			line++
		}
	}
	if line == 0 {
		line = 1 // yaml.v3 leaves the line out when it is the first
	}
	col := 0
	if line > 0 {
		// yaml.v3 gives no column: point at the line's first non-blank character
		s := diag.Line(l.src, line)
		col = len(s) - len(strings.TrimLeft(s, " \t")) + 1
	}
	return diag.New(l.src, diag.Pos{File: l.path, Line: line, Col: col}, "check indentation, quoting and the `:` after keys", "invalid YAML: %s", msg)
}

func (l *loader) errorf(pos diag.Pos, hint, format string, args ...any) {
	l.errs = append(l.errs, diag.New(l.src, pos, hint, format, args...))
}

func (l *loader) add(err error) {
	var de *diag.Error
	var dl diag.List
	switch {
	case errors.As(err, &dl):
		for _, e := range dl {
			l.add(e)
		}
	case errors.As(err, &de):
		if de.Snippet == "" {
			de.Snippet = diag.Line(l.src, de.Pos.Line)
		}
		l.errs = append(l.errs, de)
	default:
		l.errs = append(l.errs, &diag.Error{Pos: diag.Pos{File: l.path}, Msg: err.Error()})
	}
}

func (l *loader) pos(n *yaml.Node) diag.Pos { return nodePos(l.path, n) }

func nodePos(path string, n *yaml.Node) diag.Pos {
	return diag.Pos{File: path, Line: n.Line, Col: n.Column}
}

// kindName names what a node is, for messages.
var kindName = yamlnode.KindName

// pair is one key: value of a mapping.
type pair struct {
	key  string
	k, v *yaml.Node
}

// pairs lists a mapping's entries, reporting duplicate keys and non-string
// keys, and applying YAML merge keys (`<<: *defaults`; explicit keys win).
func (l *loader) pairs(m *yaml.Node, what string) []pair {
	if l.doc == nil {
		l.doc = yamlnode.New(0)
	}
	seen := map[string]*yaml.Node{}
	var out []pair
	for _, kv := range l.doc.Pairs(m, func(s *yaml.Node) {
		l.errorf(l.pos(s), "", "%s: `<<` merges a mapping, not %s", what, kindName(s))
	}) {
		k := kv.Key
		if k.Kind != yaml.ScalarNode {
			l.errorf(l.pos(k), "", "%s: a key must be a plain name, not %s", what, kindName(k))
			continue
		}
		if prev, ok := seen[k.Value]; ok && !kv.Merged {
			l.errorf(l.pos(k), fmt.Sprintf("the first %q is at line %d; remove one", k.Value, prev.Line), "%s: duplicate key %q", what, k.Value)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{key: k.Value, k: k, v: kv.Value})
	}
	return out
}

func (l *loader) choiceHint(s string, choices []string) string {
	return diag.Suggest(s, choices)
}

func (l *loader) str(v *yaml.Node, what string) string {
	if v.Kind != yaml.ScalarNode {
		l.errorf(l.pos(v), "", "%s: want a string, not %s", what, kindName(v))
		return ""
	}
	if v.Tag == "!!null" {
		return ""
	}
	return v.Value
}

func (l *loader) strList(v *yaml.Node, what string) []string {
	if v.Kind == yaml.ScalarNode {
		if v.Tag == "!!null" {
			return nil
		}
		var out []string
		for _, s := range strings.Split(v.Value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	if v.Kind != yaml.SequenceNode {
		l.errorf(l.pos(v), "", "%s: want a list of strings, not %s", what, kindName(v))
		return nil
	}
	var out []string
	for _, item := range v.Content {
		item = l.resolve(item)
		if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
			l.errorf(l.pos(item), "", "%s: want a string, not %s", what, kindName(item))
			continue
		}
		out = append(out, item.Value)
	}
	return out
}

func (l *loader) bool(v *yaml.Node, what string) bool {
	if v.Kind == yaml.ScalarNode {
		if b, ok := value.ParseBool(v.Value); ok {
			return b
		}
	}
	l.errorf(l.pos(v), "use true or false", "%s: want true or false, not %s", what, kindName(v))
	return false
}

func (l *loader) int(v *yaml.Node, what string) (int, bool) {
	if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
		if i, err := strconv.Atoi(strings.TrimSpace(v.Value)); err == nil {
			return i, true
		}
	}
	l.errorf(l.pos(v), "", "%s: want a whole number, not %s", what, kindName(v))
	return 0, false
}

func (l *loader) duration(v *yaml.Node, what string) time.Duration {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		l.errorf(l.pos(v), "e.g. 30s, 2m, 1m30s or a number of seconds", "%s: want a duration, not %s", what, kindName(v))
		return 0
	}
	d, err := value.Duration(v.Value)
	if err != nil {
		l.errorf(l.pos(v), "e.g. 30s, 2m, 1m30s or a number of seconds", "%s: %v", what, err)
	}
	return d
}

// value converts a node into plain Go values (string, int, float64, bool, nil,
// []any, map[string]any), recording the node of every string under its path.
func (l *loader) value(n *yaml.Node, path string, nodes map[string]*yaml.Node) any {
	n = l.resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for _, kv := range l.pairs(n, "mapping") {
			m[kv.key] = l.value(kv.v, template.JoinPath(path, kv.key), nodes)
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			s = append(s, l.value(c, fmt.Sprintf("%s[%d]", path, i), nodes))
		}
		return s
	case yaml.ScalarNode:
		return l.scalar(n, path, nodes)
	}
	return nil
}

func (l *loader) scalar(n *yaml.Node, path string, nodes map[string]*yaml.Node) any {
	switch n.Tag {
	case "!!null":
		return nil
	case "!!bool", "!!int", "!!float":
		var v any
		if err := n.Decode(&v); err == nil {
			return v
		}
		return n.Value
	case "!!binary", "!!timestamp":
		return n.Value
	}
	if nodes != nil {
		nodes[path] = n
	}
	return n.Value
}

// templates compiles every string holding {{ }} among nodes, reporting syntax errors.
func (l *loader) templates(nodes map[string]*yaml.Node) []*template.Template {
	keys := make([]string, 0, len(nodes))
	for k := range nodes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []*template.Template
	for _, k := range keys {
		n := nodes[k]
		if template.HasTemplate(n.Value) {
			if t := l.template(n.Value, n); t != nil {
				out = append(out, t)
			}
		}
	}
	return out
}

func (l *loader) template(s string, n *yaml.Node) *template.Template {
	t, err := template.CompileTemplateAt(s, l.pos(n), scalarPosAt(l.path, l.src, n))
	if err != nil {
		l.add(err)
		return nil
	}
	return t
}

// conds reads a bare expression or a list of them (all must hold).
func (l *loader) conds(v *yaml.Node, what string) Conds {
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	var out Conds
	for _, it := range items {
		it = l.resolve(it)
		if e := l.expr(it, what); e != nil {
			out = append(out, e)
		}
	}
	return out
}

// expr compiles a bare expression node.
func (l *loader) expr(n *yaml.Node, what string) *template.Expr {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		l.errorf(l.pos(n), `e.g. result.rc == 0`, "%s: want an expression, not %s", what, kindName(n))
		return nil
	}
	src := n.Value
	posAt := scalarPosAt(l.path, l.src, n)
	if template.HasTemplate(src) {
		// `when: "{{ x }}"` is accepted as `when: x`; {{ }} inside an expression is not
		inner, off, ok := template.SingleExpr(src)
		if !ok {
			l.errorf(l.pos(n), fmt.Sprintf("%s is already an expression: write the variables without {{ }}", what), "%s: {{ }} inside a bare expression", what)
			return nil
		}
		src = inner
		outer := posAt
		posAt = func(o int) diag.Pos { return outer(off + o) }
	}
	e, err := template.CompileExprAt(src, l.pos(n), posAt)
	if err != nil {
		l.add(err)
		return nil
	}
	return e
}

// scalarPosAt maps a rune offset in a scalar's value to its place in the
// file, when the scalar's text can be found there unchanged (one line, or a
// literal block); otherwise every offset maps to the scalar's start.
func scalarPosAt(path string, src []byte, n *yaml.Node) func(int) diag.Pos {
	base := nodePos(path, n)
	value := []rune(n.Value)
	return func(off int) diag.Pos {
		if off < 0 || off > len(value) {
			return base
		}
		li, ci, lineStart := 0, 0, 0
		for i := 0; i < off; i++ {
			if value[i] == '\n' {
				li, ci, lineStart = li+1, 0, i+1
			} else {
				ci++
			}
		}
		lineEnd := lineStart
		for lineEnd < len(value) && value[lineEnd] != '\n' {
			lineEnd++
		}
		text := string(value[lineStart:lineEnd])
		switch {
		case n.Style&yaml.LiteralStyle != 0:
			raw := diag.Line(src, n.Line+1+li)
			if text != "" && strings.HasSuffix(raw, text) {
				return diag.Pos{File: path, Line: n.Line + 1 + li, Col: len([]rune(raw)) - len([]rune(text)) + ci + 1}
			}
		case n.Style&(yaml.FoldedStyle) == 0 && !strings.ContainsRune(n.Value, '\n'):
			start := n.Column
			if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
				start++
			}
			raw := []rune(diag.Line(src, n.Line))
			if start-1+len(value) <= len(raw) && string(raw[start-1:start-1+len(value)]) == n.Value {
				return diag.Pos{File: path, Line: n.Line, Col: start + off}
			}
		}
		return base
	}
}

// mapItems turns a mapping into loop items {key, value}, sorted by key.
func mapItems(m map[string]any) []any {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = map[string]any{"key": k, "value": m[k]}
	}
	return out
}

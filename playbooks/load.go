package playbooks

import (
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/value"
	"github.com/ferrydeploy/ferry/internal/yamlnode"
	"github.com/ferrydeploy/ferry/ssh"
	"github.com/ferrydeploy/ferry/tasks"
)

// Load reads and validates the playbook at path. Every problem found is
// reported at once, as a diag.List.
func Load(path string) (*Playbook, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, diag.Invalidf("read playbook: %w", err)
	}
	return Parse(path, src)
}

var playKeys = []string{"name", "hosts", "serial", "order", "max_fail_percentage", "max_failures",
	"rollback_completed", "pause_after", "vars", "secrets", "before", "pre_tasks", "tasks",
	"post_tasks", "rollback", "after", "become", "become_user", "environment", "tags", "handlers", "roles",
	"vars_files", "any_errors_fatal", "remote_user", "become_method", "connection", "strategy", "force_handlers", "gather_facts"}

var taskKeys = []string{"name", "when", "register", "loop", "retries", "delay", "until", "timeout",
	"ignore_errors", "become", "become_user", "tags", "no_log", "changed_when", "failed_when", "environment"}

// Reserved are the variables every expression sees, set by the runner; plays,
// `register` and `-e` cannot define them.
var Reserved = []string{"env", "env_vars", "run", "host", "extra", "inventory_hostname", "groups", "group_names", "hostvars"}

// ansibleHints explain Ansible keys ferry does not have.
var ansibleHints = map[string]string{
	"handlers":     "handlers belong to the play: put `handlers:` next to `tasks:`",
	"roles":        "roles belong to the play: put `roles:` next to `tasks:`",
	"vars_files":   "vars_files belongs to the play",
	"async":        "ferry has no async tasks: give the task a `timeout:`",
	"poll":         "ferry has no async tasks: give the task a `timeout:`",
	"become_flags": "ferry becomes with `sudo -n` (or a password on stdin)",
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

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

// Parse validates src as the playbook at path.
func Parse(path string, src []byte) (*Playbook, error) {
	l := &loader{path: path, src: src, seen: newSeen()}
	pb := &Playbook{Path: path, src: src}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, diag.List{l.yamlError(err)}.Err()
	}
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
		if p := l.play(l.resolve(item)); p != nil {
			pb.Plays = append(pb.Plays, p)
		}
	}
	if len(root.Content) == 0 {
		l.errorf(l.pos(root), "add a play: `- hosts: PATTERN`", "playbook has no plays")
	}
	l.expansionErr()
	if err := l.errs.Err(); err != nil {
		return nil, err
	}
	pb.Warnings = l.warns
	return pb, nil
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

func (l *loader) play(n *yaml.Node) *Play {
	p := &Play{Pos: l.pos(n), Order: OrderInventory}
	if n.Kind != yaml.MappingNode {
		l.errorf(l.pos(n), "a play is a mapping: `- hosts: PATTERN`", "play must be a mapping, not %s", kindName(n))
		return nil
	}
	ps := l.pairs(n, "play")
	var hostsSeen bool
	vars := map[string]bool{}
	for _, kv := range ps {
		if kv.key == "vars" {
			p.Vars = l.vars(kv.v)
			for _, v := range p.Vars {
				vars[v.Name] = true
			}
		}
	}
	for _, kv := range ps {
		k, v := kv.k, kv.v
		switch kv.key {
		case "name":
			p.Name = l.str(v, "name")
		case "hosts":
			hostsSeen = true
			p.Hosts = l.hosts(v)
			if HasTemplate(p.Hosts) {
				if t := l.template(p.Hosts, v); t != nil {
					p.hostsTmpl = t
				}
			}
		case "serial":
			p.Serial = l.serial(v)
		case "order":
			s := l.str(v, "order")
			if s != "" && !contains(orders, s) {
				l.errorf(l.pos(v), l.choiceHint(s, orders), "order: %q is not one of %s", s, strings.Join(orders, ", "))
			} else if s != "" {
				p.Order = Order(s)
			}
		case "max_fail_percentage":
			p.MaxFailPercentage = l.percent(v)
		case "max_failures":
			if i, ok := l.int(v, "max_failures"); ok {
				if i < 0 {
					l.errorf(l.pos(v), "use 0 to halt at the first failure", "max_failures: must be 0 or more, got %d", i)
				}
				p.MaxFailures = &i
			}
		case "rollback_completed":
			p.RollbackCompleted = l.bool(v, "rollback_completed")
		case "pause_after":
			p.PauseAfter = l.pauseAfter(v)
		case "vars":
		case "secrets":
			p.Secrets = l.strList(v, "secrets")
		case "before":
			p.Before = l.tasks(v, "before")
		case "pre_tasks":
			p.PreTasks = l.tasks(v, "pre_tasks")
		case "tasks":
			p.Tasks = l.tasks(v, "tasks")
		case "post_tasks":
			p.PostTasks = l.tasks(v, "post_tasks")
		case "rollback":
			p.Rollback = l.tasks(v, "rollback")
		case "after":
			p.After = l.tasks(v, "after")
		case "become":
			p.Become = l.bool(v, "become")
		case "become_user":
			p.BecomeUser = l.str(v, "become_user")
		case "environment":
			p.Environment, p.envTmpls = l.environment(v)
		case "tags":
			p.Tags = l.strList(v, "tags")
		case "gather_facts":
			if l.bool(v, "gather_facts") {
				l.errorf(l.pos(v), "remove gather_facts (or set it to false): host variables come from the inventory", "gather_facts: ferry does not gather facts")
			}
		case "handlers", "roles", "vars_files", "any_errors_fatal", "remote_user", "become_method", "connection",
			"strategy", "force_handlers":
			l.ansiblePlayKey(p, kv)
		default:
			hint := diag.Suggest(kv.key, playKeys)
			if hint == "" && (contains(taskKeys, kv.key) || isModule(kv.key)) {
				hint = fmt.Sprintf("%q belongs to a task: put it under `tasks:`", kv.key)
			}
			if hint == "" {
				hint = "play keys: " + strings.Join(playKeys[:len(playKeys)-1], ", ")
			}
			l.errorf(l.pos(k), hint, "unknown play key %q", kv.key)
		}
	}
	p.Tasks = append(p.roleTasks, p.Tasks...)
	l.checkNotify(p)
	if !hostsSeen {
		l.errorf(p.Pos, "add `hosts: PATTERN` (a group, a host, `all`, ...)", "play has no hosts")
	}
	return p
}

func isModule(name string) bool {
	_, ok := lookupModule(name)
	return ok
}

// lookupModule finds a module by name; Ansible's ansible.builtin.X and
// ansible.legacy.X names are accepted for ferry's X.
func lookupModule(name string) (tasks.Module, bool) {
	if m, ok := tasks.Lookup(name); ok {
		return m, true
	}
	for _, prefix := range []string{"ansible.builtin.", "ansible.legacy.", "ansible.posix."} {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			return tasks.Lookup(rest)
		}
	}
	return nil, false
}

func (l *loader) choiceHint(s string, choices []string) string {
	return diag.Suggest(s, choices)
}

func (l *loader) hosts(v *yaml.Node) string {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" || strings.TrimSpace(v.Value) == "" {
			l.errorf(l.pos(v), "e.g. `hosts: web` or `hosts: all`", "hosts: empty host pattern")
			return ""
		}
		return v.Value
	case yaml.SequenceNode:
		parts := l.strList(v, "hosts")
		if len(parts) == 0 {
			l.errorf(l.pos(v), "e.g. `hosts: web` or `hosts: all`", "hosts: empty host pattern")
		}
		return strings.Join(parts, ",")
	}
	l.errorf(l.pos(v), "e.g. `hosts: web` or `hosts: all`", "hosts: want a host pattern, not %s", kindName(v))
	return ""
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

func (l *loader) percent(v *yaml.Node) float64 {
	if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
		s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v.Value), "%"))
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) {
			if f < 0 || f > 100 {
				l.errorf(l.pos(v), "0 halts at the first failure; 100 never halts on a batch", "max_fail_percentage: must be between 0 and 100, got %s", v.Value)
				return 0
			}
			return f
		}
	}
	l.errorf(l.pos(v), "e.g. max_fail_percentage: 10", "max_fail_percentage: want a number between 0 and 100, not %s", kindName(v))
	return 0
}

func (l *loader) serial(v *yaml.Node) []SerialStep {
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
		if len(items) == 0 {
			l.errorf(l.pos(v), "omit serial for one batch of every host", "serial: empty list")
		}
	}
	var out []SerialStep
	for _, it := range items {
		it = l.resolve(it)
		step, ok := l.serialStep(it, v.Kind == yaml.SequenceNode)
		if ok && (step.Count > 0 || step.Percent > 0) {
			out = append(out, step)
		}
	}
	return out
}

func (l *loader) serialStep(v *yaml.Node, inList bool) (SerialStep, bool) {
	const hint = `serial is a host count (2), a percentage ("25%") or a list of them ([1, "25%", "100%"])`
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		l.errorf(l.pos(v), hint, "serial: want a number or a percentage, not %s", kindName(v))
		return SerialStep{}, false
	}
	s := strings.TrimSpace(v.Value)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) {
			l.errorf(l.pos(v), hint, "serial: %q is not a percentage", s)
			return SerialStep{}, false
		}
		if f <= 0 || f > 100 {
			l.errorf(l.pos(v), "a percentage step is between 1% and 100%", "serial: %s is out of range", s)
			return SerialStep{}, false
		}
		return SerialStep{Percent: f}, true
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		l.errorf(l.pos(v), hint, "serial: %q is not a number or a percentage", s)
		return SerialStep{}, false
	}
	if n < 0 || (n == 0 && inList) {
		l.errorf(l.pos(v), "a batch has at least 1 host; omit serial for one batch of every host", "serial: %d is out of range", n)
		return SerialStep{}, false
	}
	return SerialStep{Count: n}, true
}

func (l *loader) pauseAfter(v *yaml.Node) []int {
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	var out []int
	for _, it := range items {
		it = l.resolve(it)
		if n, ok := l.int(it, "pause_after"); ok {
			if n < 1 {
				l.errorf(l.pos(it), "batches are numbered from 1", "pause_after: %d is not a batch number", n)
				continue
			}
			out = append(out, n)
		}
	}
	return out
}

func (l *loader) vars(v *yaml.Node) []*VarDef {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		l.errorf(l.pos(v), "e.g. vars: {unit: api}", "vars: want a mapping, not %s", kindName(v))
		return nil
	}
	var out []*VarDef
	for _, kv := range l.pairs(v, "vars") {
		if !identRe.MatchString(kv.key) {
			l.errorf(l.pos(kv.k), "use letters, digits and _ (expressions read variables by name)", "vars: %q is not a valid variable name", kv.key)
			continue
		}
		if contains(Reserved, kv.key) {
			l.errorf(l.pos(kv.k), "pick another name", "vars: %q is reserved (set by ferry for every host)", kv.key)
			continue
		}
		d := &VarDef{Name: kv.key, Pos: l.pos(kv.k), nodes: map[string]*yaml.Node{}, path: l.path, src: l.src}
		d.Value = l.value(kv.v, "", d.nodes)
		d.templates = l.templates(d.nodes)
		out = append(out, d)
	}
	return out
}

func (l *loader) environment(v *yaml.Node) (map[string]any, []*Template) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil, nil
	}
	if v.Kind != yaml.MappingNode {
		l.errorf(l.pos(v), "e.g. environment: {RELEASE: \"{{ version }}\"}", "environment: want a mapping, not %s", kindName(v))
		return nil, nil
	}
	env := map[string]any{}
	nodes := map[string]*yaml.Node{}
	for _, kv := range l.pairs(v, "environment") {
		if !ssh.ValidEnvName(kv.key) {
			// The name is exported in a shell on the host: anything else is code.
			l.errorf(l.pos(kv.k), "a variable name has letters, digits and _, and does not start with a digit", "environment: %q is not a variable name", kv.key)
			continue
		}
		if kv.v.Kind != yaml.ScalarNode {
			l.errorf(l.pos(kv.v), "", "environment: %s: want a string, not %s", kv.key, kindName(kv.v))
			continue
		}
		env[kv.key] = kv.v.Value
		nodes[kv.key] = kv.v
	}
	return env, l.templates(nodes)
}

// value converts a node into plain Go values (string, int, float64, bool, nil,
// []any, map[string]any), recording the node of every string under its path.
func (l *loader) value(n *yaml.Node, path string, nodes map[string]*yaml.Node) any {
	n = l.resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for _, kv := range l.pairs(n, "mapping") {
			m[kv.key] = l.value(kv.v, joinPath(path, kv.key), nodes)
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
func (l *loader) templates(nodes map[string]*yaml.Node) []*Template {
	keys := make([]string, 0, len(nodes))
	for k := range nodes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []*Template
	for _, k := range keys {
		n := nodes[k]
		if HasTemplate(n.Value) {
			if t := l.template(n.Value, n); t != nil {
				out = append(out, t)
			}
		}
	}
	return out
}

func (l *loader) template(s string, n *yaml.Node) *Template {
	t, err := compileTemplateAt(s, l.pos(n), scalarPosAt(l.path, l.src, n))
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

var wholeTemplateRe = regexp.MustCompile(`^\s*\{\{(.*)\}\}\s*$`)

// expr compiles a bare expression node.
func (l *loader) expr(n *yaml.Node, what string) *Expr {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		l.errorf(l.pos(n), `e.g. result.rc == 0`, "%s: want an expression, not %s", what, kindName(n))
		return nil
	}
	src := n.Value
	posAt := scalarPosAt(l.path, l.src, n)
	if HasTemplate(src) {
		// `when: "{{ x }}"` is accepted as `when: x`; {{ }} inside an expression is not
		segs, err := splitTemplate(src)
		if err != nil || len(segs) != 1 || !segs[0].whole {
			l.errorf(l.pos(n), fmt.Sprintf("%s is already an expression: write the variables without {{ }}", what), "%s: {{ }} inside a bare expression", what)
			return nil
		}
		off := segs[0].offset
		src = segs[0].text
		outer := posAt
		posAt = func(o int) diag.Pos { return outer(off + o) }
	}
	e, err := compileExprAt(src, l.pos(n), posAt)
	if err != nil {
		l.add(err)
		return nil
	}
	return e
}

func (l *loader) tasks(v *yaml.Node, section string) []*Task {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		l.errorf(l.pos(v), fmt.Sprintf("%s is a list of tasks: `- name: ...`", section), "%s: want a list of tasks, not %s", section, kindName(v))
		return nil
	}
	var out []*Task
	for _, item := range v.Content {
		if l.doc != nil && l.doc.Err() != nil {
			break // the alias expansion error says it all
		}
		if t := l.task(l.resolve(item), section); t != nil {
			out = append(out, t)
		}
	}
	return out
}

func (l *loader) task(n *yaml.Node, section string) *Task {
	if n.Kind != yaml.MappingNode {
		l.errorf(l.pos(n), "a task is a mapping: `- name: ...` then the module, e.g. `shell: ...`", "%s: a task must be a mapping, not %s", section, kindName(n))
		return nil
	}
	n = l.normalizeTask(n)
	t := &Task{Pos: l.pos(n), path: l.path, src: l.src, argNodes: map[string]*yaml.Node{}, Dir: l.dir}
	reported := false // an unknown module was reported: no second "task has no module"
	var modKey *yaml.Node
	var modVal *yaml.Node
	var mod tasks.Module
	other := map[string]*yaml.Node{}
	for _, kv := range l.pairs(n, "task") {
		k, v := kv.k, kv.v
		switch kv.key {
		case "name":
			t.Name = l.str(v, "name")
			other["\x00name"] = v
		case "when":
			t.When = l.conds(v, "when")
		case "until":
			t.Until = l.conds(v, "until")
		case "changed_when":
			t.ChangedWhen = l.conds(v, "changed_when")
		case "failed_when":
			t.FailedWhen = l.conds(v, "failed_when")
		case "register":
			t.Register = l.str(v, "register")
			switch {
			case t.Register == "":
			case !identRe.MatchString(t.Register):
				l.errorf(l.pos(v), "use letters, digits and _", "register: %q is not a valid variable name", t.Register)
			case contains(Reserved, t.Register):
				l.errorf(l.pos(v), "pick another name", "register: %q is reserved (set by ferry for every host)", t.Register)
			}
		case "loop":
			t.HasLoop = true
			switch {
			case v.Kind == yaml.SequenceNode:
				t.Loop = l.value(v, "\x00loop", other)
			case v.Kind == yaml.ScalarNode && v.Tag == "!!str" && HasTemplate(v.Value):
				t.Loop = l.value(v, "\x00loop", other)
			default:
				l.errorf(l.pos(v), `e.g. loop: [a, b] or loop: "{{ names }}"`, "loop: want a list, not %s", kindName(v))
			}
		case "retries":
			if i, ok := l.int(v, "retries"); ok {
				if i < 0 {
					l.errorf(l.pos(v), "", "retries: must be 0 or more, got %d", i)
				}
				t.Retries = i
			}
		case "delay":
			t.Delay = l.duration(v, "delay")
		case "timeout":
			t.Timeout = l.duration(v, "timeout")
		case "ignore_errors":
			t.IgnoreErrors = l.bool(v, "ignore_errors")
		case "become":
			b := l.bool(v, "become")
			t.Become = &b
		case "become_user":
			t.BecomeUser = l.str(v, "become_user")
		case "tags":
			t.Tags = l.strList(v, "tags")
		case "no_log":
			t.NoLog = l.bool(v, "no_log")
		case "environment":
			var tm []*Template
			t.Environment, tm = l.environment(v)
			t.templates = append(t.templates, tm...)
		case "notify", "listen", "delegate_to", "run_once", "loop_control", "vars", "block", "rescue", "always",
			"include_tasks", "import_tasks", "any_errors_fatal", "remote_user", "become_method", "check_mode",
			"diff", "delegate_facts", "connection", "throttle", "debugger", "meta":
			l.ansibleKey(t, kv, other)
		default:
			m, ok := lookupModule(kv.key)
			if !ok {
				reported = true
				if hint, ok := unsupportedFor(kv.key); ok {
					if l.seen == nil {
						l.seen = newSeen()
					}
					if !l.seen.unsupported[kv.key] { // one line per module, not per use
						l.seen.unsupported[kv.key] = true
						l.errorf(l.pos(k), hint, "module %q is not supported by ferry", kv.key)
					}
					continue
				}
				hint := ""
				if h, ok := ansibleHints[kv.key]; ok {
					hint = h
				} else if hint = diag.Suggest(kv.key, append(append(append([]string(nil), taskKeys...), ansibleTaskKeys...), tasks.Names()...)); hint == "" {
					hint = "modules: " + strings.Join(tasks.Names(), ", ")
				}
				l.errorf(l.pos(k), hint, "unknown module or task key %q", kv.key)
				continue
			}
			if mod != nil {
				l.errorf(l.pos(k), "one module per task: split it into two tasks", "task has two modules: %s and %s", t.Module, m.Spec().Name)
				continue
			}
			mod, modKey, modVal = m, k, v
			t.Module = m.Spec().Name
			t.ModulePos = l.pos(k)
		}
	}
	if t.IsBlock || t.Meta != "" {
		l.finishBlock(t, mod)
		return t
	}
	if mod == nil && reported {
		return t
	}
	if mod == nil {
		hint := "add a module, e.g. `shell: ...`"
		if names := tasks.Names(); len(names) > 0 {
			hint = "add one module: " + strings.Join(names, ", ")
		}
		l.errorf(t.Pos, hint, "task has no module")
		return t
	}
	t.Spec = mod.Spec()
	t.Args = l.args(t, modKey, modVal)
	if t.Spec.Controller && t.Become != nil && *t.Become {
		l.errorf(t.ModulePos, "remove become: it applies to commands on hosts", "%s runs on the controller: become has no effect", t.Module)
	}
	t.templates = append(t.templates, l.templates(other)...)
	t.templates = append(t.templates, l.templates(l.argTemplates(t))...)
	for k, v := range other {
		t.argNodes[k] = v
	}
	return t
}

// argTemplates are the string nodes of the arguments that are templates (not Expr params).
func (l *loader) argTemplates(t *Task) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	for path, n := range t.argNodes {
		top := path
		if i := strings.IndexAny(top, ".["); i >= 0 {
			top = top[:i]
		}
		if p, ok := t.Spec.Params[top]; ok && p.Type == tasks.Expr {
			continue
		}
		out[path] = n
	}
	return out
}

// args validates a module's arguments against its Spec and returns them raw.
func (l *loader) args(t *Task, k, v *yaml.Node) map[string]any {
	spec := t.Spec
	args := map[string]any{}
	name := spec.Name
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
	case v.Kind == yaml.ScalarNode:
		if spec.FreeForm == "" {
			l.errorf(l.pos(v), l.paramsHint(spec), "%s: parameters go in a mapping, not %s", name, kindName(v))
			return args
		}
		t.argNodes[spec.FreeForm] = v
		args[spec.FreeForm] = l.param(t, spec.FreeForm, spec.Params[spec.FreeForm], v)
	case v.Kind == yaml.MappingNode:
		anyKeys := spec.AnyParams || (spec.Params == nil && spec.FreeForm == "")
		for _, kv := range l.pairs(v, name) {
			p, ok := spec.Params[kv.key]
			if !ok && !anyKeys {
				hint := diag.Suggest(kv.key, paramNames(spec))
				if hint == "" {
					hint = l.paramsHint(spec)
				}
				l.errorf(l.pos(kv.k), hint, "%s: unknown parameter %q", name, kv.key)
				continue
			}
			if anyKeys && !identRe.MatchString(kv.key) {
				l.errorf(l.pos(kv.k), "use letters, digits and _", "%s: %q is not a valid variable name", name, kv.key)
				continue
			}
			if anyKeys && contains(Reserved, kv.key) {
				l.errorf(l.pos(kv.k), "pick another name", "%s: %q is reserved (set by ferry for every host)", name, kv.key)
				continue
			}
			if kv.v.Kind == yaml.ScalarNode && kv.v.Tag == "!!null" {
				continue // `key:` with no value is the same as leaving it out
			}
			args[kv.key] = l.param(t, kv.key, p, kv.v)
		}
	default:
		l.errorf(l.pos(v), l.paramsHint(spec), "%s: parameters go in a mapping, not %s", name, kindName(v))
		return args
	}
	for _, pn := range paramNames(spec) {
		if _, given := args[pn]; spec.Params[pn].Required && !given {
			l.errorf(l.pos(k), l.paramsHint(spec), "%s: missing required parameter %q", name, pn)
		}
	}
	for _, p := range spec.OneOfProblems(args) {
		l.errorf(l.pos(k), p.Hint, "%s", p.Msg)
	}
	return args
}

func paramNames(spec tasks.Spec) []string {
	names := make([]string, 0, len(spec.Params))
	for n := range spec.Params {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (l *loader) paramsHint(spec tasks.Spec) string {
	names := paramNames(spec)
	if len(names) == 0 {
		return ""
	}
	var req []string
	for i, n := range names {
		if spec.Params[n].Required {
			req = append(req, n)
			names[i] += " (required)"
		}
	}
	_ = req
	s := spec.Name + " takes: " + strings.Join(names, ", ")
	if spec.FreeForm != "" {
		s += fmt.Sprintf("; or `%s: TEXT` for %s", spec.Name, spec.FreeForm)
	}
	return s
}

// param checks one argument against its declared type; values with {{ }} are
// checked when rendered. String params keep the YAML text (`mode: 0755` stays "0755").
func (l *loader) param(t *Task, key string, p tasks.Param, v *yaml.Node) any {
	name := t.Spec.Name
	templated := v.Kind == yaml.ScalarNode && v.Tag == "!!str" && HasTemplate(v.Value)
	bad := func(want string) {
		l.errorf(l.pos(v), p.Doc, "%s: %s: want %s, not %s", name, key, want, kindName(v))
	}
	isNull := v.Kind == yaml.ScalarNode && v.Tag == "!!null"
	switch p.Type {
	case tasks.String:
		if isNull {
			return nil
		}
		if v.Kind != yaml.ScalarNode {
			bad("a string")
			return nil
		}
		t.argNodes[key] = v
		if len(p.Choices) > 0 && !templated && p.Check(v.Value) != nil {
			hint := diag.Suggest(v.Value, p.Choices)
			if hint == "" {
				hint = "choices: " + strings.Join(p.Choices, ", ")
			}
			l.errorf(l.pos(v), hint, "%s: %s: %q is not one of %s", name, key, v.Value, strings.Join(p.Choices, ", "))
		}
		return v.Value
	case tasks.Int, tasks.Bool, tasks.Duration:
		// The same check as at run time (tasks.Spec.Validate), on the value
		// the module will get.
		if !templated && !isNull {
			want := map[tasks.Type]string{tasks.Int: "a whole number", tasks.Bool: "true or false", tasks.Duration: "a duration (30s, 2m)"}[p.Type]
			if v.Kind != yaml.ScalarNode {
				bad(want)
			} else if err := p.Check(l.value(v, "", nil)); err != nil {
				hint := p.Doc
				if p.Type == tasks.Duration {
					hint = "e.g. 30s, 2m, 1m30s or a number of seconds"
				}
				l.errorf(l.pos(v), hint, "%s: %s: %v", name, key, err)
			}
		}
	case tasks.List:
		if v.Kind == yaml.MappingNode {
			bad("a list")
		}
	case tasks.Map:
		if !templated && !isNull && v.Kind != yaml.MappingNode {
			bad("a mapping")
		}
	case tasks.Expr:
		items := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			items = v.Content
		}
		for _, it := range items {
			if e := l.expr(l.resolve(it), name+": "+key); e != nil {
				t.argExprs = append(t.argExprs, e)
			}
		}
	}
	return l.value(v, key, t.argNodes)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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

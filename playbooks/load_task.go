// Task keys: what a task may say, its module and the module's arguments
// checked against the module's Spec.

package playbooks

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/tasks"
	"gopkg.in/yaml.v3"
)

var taskKeys = []string{"name", "when", "register", "loop", "retries", "delay", "until", "timeout",
	"ignore_errors", "become", "become_user", "tags", "no_log", "changed_when", "failed_when", "environment"}

// ansibleHints explain Ansible keys ferry does not have.
var ansibleHints = map[string]string{
	"handlers":     "handlers belong to the play: put `handlers:` next to `tasks:`",
	"roles":        "roles belong to the play: put `roles:` next to `tasks:`",
	"vars_files":   "vars_files belongs to the play",
	"async":        "ferry has no async tasks: give the task a `timeout:`",
	"poll":         "ferry has no async tasks: give the task a `timeout:`",
	"become_flags": "ferry becomes with `sudo -n` (or a password on stdin)",
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
			case !template.IsIdent(t.Register):
				l.errorf(l.pos(v), "use letters, digits and _", "register: %q is not a valid variable name", t.Register)
			case slices.Contains(template.Reserved, t.Register):
				l.errorf(l.pos(v), "pick another name", "register: %q is reserved (set by ferry for every host)", t.Register)
			}
		case "loop":
			t.HasLoop = true
			switch {
			case v.Kind == yaml.SequenceNode:
				t.Loop = l.value(v, "\x00loop", other)
			case v.Kind == yaml.ScalarNode && v.Tag == "!!str" && template.HasTemplate(v.Value):
				t.Loop = l.value(v, "\x00loop", other)
			default:
				l.errorf(l.pos(v), `e.g. loop: [a, b] or loop: "{{ names }}"`, "loop: want a list, not %s", kindName(v))
			}
		case "with_nested", "with_subelements":
			if v.Kind != yaml.SequenceNode {
				l.errorf(l.pos(v), `e.g. with_nested: ["{{ envs }}", "{{ apps }}"]`, "%s: want a list, not %s", kv.key, kindName(v))
				continue
			}
			t.HasLoop, t.loopWith = true, kv.key
			t.Loop = l.value(v, "\x00loop", other)
		case "retries", "delay":
			if v.Kind == yaml.ScalarNode && v.Tag == "!!str" && template.HasTemplate(v.Value) {
				// rendered before the task runs, with -e and inventory variables (as Ansible)
				if tm := l.template(v.Value, v); tm != nil {
					t.templates = append(t.templates, tm)
					if kv.key == "retries" {
						t.retriesTmpl = tm
					} else {
						t.delayTmpl = tm
					}
				}
				continue
			}
			if kv.key == "delay" {
				t.Delay = l.duration(v, "delay")
				continue
			}
			if i, ok := l.int(v, "retries"); ok {
				if i < 0 {
					l.errorf(l.pos(v), "", "retries: must be 0 or more, got %d", i)
				}
				t.Retries = i
			}
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
			var tm []*template.Template
			t.Environment, tm = l.environment(v)
			t.templates = append(t.templates, tm...)
		case "notify", "listen", "delegate_to", "run_once", "loop_control", "vars", "block", "rescue", "always",
			"include_tasks", "import_tasks", "any_errors_fatal", "remote_user", "become_method", "check_mode",
			"diff", "delegate_facts", "connection", "throttle", "debugger", "meta", "include_role", "import_role":
			l.ansibleKey(t, kv, other)
		default:
			m, ok := lookupModule(kv.key)
			if !ok {
				reported = true
				if hint, ok := unsupportedFor(kv.key); ok {
					if l.seen == nil {
						l.seen = newSeen()
					}
					if short := shortName(kv.key); !l.seen.unsupported[short] { // one line per module, not per use (nor per spelling)
						l.seen.unsupported[short] = true
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
	if t.Spec.Once {
		t.RunOnce = true
	}
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
			if anyKeys && !template.IsIdent(kv.key) {
				l.errorf(l.pos(kv.k), "use letters, digits and _", "%s: %q is not a valid variable name", name, kv.key)
				continue
			}
			if anyKeys && !ok && slices.Contains(template.Reserved, kv.key) { // a declared param is no variable
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
	templated := v.Kind == yaml.ScalarNode && v.Tag == "!!str" && template.HasTemplate(v.Value)
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

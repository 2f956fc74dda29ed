// Play keys: what a play may say, and how each key is read.

package playbooks

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/ssh"
	"gopkg.in/yaml.v3"
)

var playKeys = []string{"name", "hosts", "serial", "order", "max_fail_percentage", "max_failures",
	"rollback_completed", "pause_after", "vars", "secrets", "before", "stage", "verify", "pre_tasks", "tasks",
	"post_tasks", "rollback", "after", "become", "become_user", "environment", "tags", "handlers", "roles",
	"vars_files", "any_errors_fatal", "remote_user", "become_method", "connection", "strategy", "force_handlers", "gather_facts", "gather_subset", "gather_timeout", "fact_path", "vars_prompt", "user", "sudo", "sudo_user"}

func (l *loader) play(n *yaml.Node) *Play {
	p := &Play{Pos: l.pos(n), Order: OrderInventory}
	l.seen.play = p
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
			if template.HasTemplate(p.Hosts) {
				if t := l.template(p.Hosts, v); t != nil {
					p.hostsTmpl = t
				}
			}
		case "serial":
			p.Serial = l.serial(v)
		case "order":
			s := l.str(v, "order")
			if s != "" && !slices.Contains(orders, s) {
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
		case "stage":
			p.Stage = l.tasks(v, "stage")
			for _, t := range flattenTasks(p.Stage) {
				l.stageTask(t)
			}
		case "verify":
			p.Verify = l.verify(l.resolve(v))
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
			b := l.bool(v, "gather_facts")
			p.GatherFacts = &b
		case "gather_subset":
			p.GatherSubset = l.strList(v, "gather_subset")
		case "user": // Ansible's old spelling of remote_user
			l.ansiblePlayKey(p, pair{key: "remote_user", k: kv.k, v: v})
		case "sudo": // become, in Ansible's old spelling
			p.Become = l.bool(v, "sudo")
		case "sudo_user":
			p.BecomeUser = l.str(v, "sudo_user")
		case "vars_prompt":
			p.Prompts = l.prompts(v)
			for _, pr := range p.Prompts {
				if pr.HasDefault {
					p.Vars = append(p.Vars, &VarDef{Name: pr.Name, Value: pr.Default, Pos: pr.Pos, path: l.path, src: l.src})
				}
			}
		case "gather_timeout", "fact_path":
			// accepted: the gatherer is one bounded command and reads no local facts
		case "handlers", "roles", "vars_files", "any_errors_fatal", "remote_user", "become_method", "connection",
			"strategy", "force_handlers":
			l.ansiblePlayKey(p, kv)
		default:
			hint := diag.Suggest(kv.key, playKeys)
			if hint == "" && (slices.Contains(taskKeys, kv.key) || isModule(kv.key)) {
				hint = fmt.Sprintf("%q belongs to a task: put it under `tasks:`", kv.key)
			}
			if hint == "" {
				hint = "play keys: " + strings.Join(playKeys[:len(playKeys)-1], ", ")
			}
			l.errorf(l.pos(k), hint, "unknown play key %q", kv.key)
		}
	}
	if p.localAt != nil {
		if hostsSeen && !inventory.LocalhostOnly(p.Hosts) {
			l.errorf(l.pos(p.localAt), "ferry takes `connection: local` on a play on localhost; elsewhere mark controller steps with `delegate_to: localhost`", "connection: \"local\" is not supported on a play on %q", p.Hosts)
		}
		p.Local = true
	}
	p.Tasks = append(p.roleTasks, p.Tasks...)
	l.checkNotify(p)
	if !hostsSeen {
		l.errorf(p.Pos, "add `hosts: PATTERN` (a group, a host, `all`, ...)", "play has no hosts")
	}
	return p
}

// stageTask refuses, in `stage:`, a task whose module changes what the
// host serves: staging runs on every host at once, before any is drained,
// so it may only prepare (upload, verify, unpack). What a module does is
// read from its Spec: a change the journal must undo (Leaves, Restores,
// Undo), a call to AWS, or Service.
func (l *loader) stageTask(t *Task) {
	if t.Module == "" {
		return
	}
	s := t.Spec
	why := ""
	switch {
	case s.Undo != "" || s.AWS:
		why = "takes hosts in or out of service"
	case s.Leaves != nil || s.Restores != nil || s.Service:
		why = "changes the state of a running service"
	default:
		return
	}
	l.errorf(t.ModulePos, "move it to `tasks:` (the batches); `stage:` may only prepare: upload, verify, unpack",
		"stage: %s %s, and stage runs on every host before batch 1", t.Module, why)
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
		if !template.IsIdent(kv.key) {
			l.errorf(l.pos(kv.k), "use letters, digits and _ (expressions read variables by name)", "vars: %q is not a valid variable name", kv.key)
			continue
		}
		if slices.Contains(template.Reserved, kv.key) {
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

// envExprKey holds, in a raw environment, an expression that renders to the
// whole mapping; names given beside it (a task's over its block's) win.
const envExprKey = "\x00expr"

func (l *loader) environment(v *yaml.Node) (map[string]any, []*template.Template) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil, nil
	}
	if v.Kind == yaml.ScalarNode && template.HasTemplate(v.Value) {
		// environment: "{{ app_env }}": a variable holding the mapping,
		// rendered per task (its names are checked then).
		return map[string]any{envExprKey: v.Value}, l.templates(map[string]*yaml.Node{envExprKey: v})
	}
	if v.Kind != yaml.MappingNode {
		l.errorf(l.pos(v), "e.g. environment: {RELEASE: \"{{ version }}\"} or environment: \"{{ app_env }}\"", "environment: want a mapping, not %s", kindName(v))
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

// Prompt is one vars_prompt entry: the value comes from -e (or, with a
// default, from it).
type Prompt struct {
	Name, Prompt string
	Default      any
	HasDefault   bool
	Private      bool
	Pos          diag.Pos
}

func (l *loader) prompts(v *yaml.Node) []Prompt {
	if v.Kind != yaml.SequenceNode {
		l.errorf(l.pos(v), "e.g. vars_prompt: [{name: version, prompt: Version?}]", "vars_prompt: want a list, not %s", kindName(v))
		return nil
	}
	var out []Prompt
	for _, item := range v.Content {
		item = l.resolve(item)
		if item.Kind != yaml.MappingNode {
			l.errorf(l.pos(item), "e.g. {name: version, prompt: Version?}", "vars_prompt: want a mapping, not %s", kindName(item))
			continue
		}
		pr := Prompt{Pos: l.pos(item), Private: true}
		for _, kv := range l.pairs(item, "vars_prompt") {
			switch kv.key {
			case "name":
				pr.Name = l.str(kv.v, "name")
			case "prompt":
				pr.Prompt = l.str(kv.v, "prompt")
			case "default":
				pr.Default, pr.HasDefault = l.value(kv.v, "", nil), true
			case "private":
				pr.Private = l.bool(kv.v, "private")
			case "confirm", "encrypt", "salt_size", "salt", "unsafe":
			default:
				l.errorf(l.pos(kv.k), "vars_prompt takes name, prompt, default, private", "vars_prompt: unknown key %q", kv.key)
			}
		}
		if !template.IsIdent(pr.Name) {
			l.errorf(pr.Pos, "e.g. name: version", "vars_prompt: want a variable name, got %q", pr.Name)
			continue
		}
		out = append(out, pr)
	}
	return out
}

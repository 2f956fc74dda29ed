package playbooks

// Loading Ansible's structure keywords: handlers, roles, vars_files,
// block/rescue/always, include_tasks/import_tasks (read when the playbook
// loads: they are static in ferry), and the task keywords notify, delegate_to,
// run_once, loop_control, task vars.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/tasks"
)

func (l *loader) warnf(pos diag.Pos, format string, args ...any) {
	l.warns = append(l.warns, diag.New(l.src, pos, "", format, args...))
}

// baseDir is where the file being loaded lives.
func (l *loader) baseDir() string { return filepath.Dir(l.path) }

func (l *loader) ansibleKey(t *Task, kv pair, other map[string]*yaml.Node) {
	v := kv.v
	switch kv.key {
	case "notify":
		t.Notify = l.strList(v, "notify")
	case "listen":
		t.Listen = l.strList(v, "listen")
	case "delegate_to":
		t.DelegateTo = l.str(v, "delegate_to")
		other["\x00delegate_to"] = v
	case "connection":
		if s := l.str(v, "connection"); s == "local" {
			t.DelegateTo = "localhost"
		} else if s != "ssh" && s != "smart" && s != "" {
			l.errorf(l.pos(v), "ferry connects over SSH; `connection: local` runs on the controller", "connection: %q is not supported", s)
		}
	case "run_once":
		t.RunOnce = l.bool(v, "run_once")
	case "loop_control":
		if v.Kind != yaml.MappingNode {
			l.errorf(l.pos(v), "e.g. loop_control: {loop_var: svc}", "loop_control: want a mapping, not %s", kindName(v))
			return
		}
		for _, p := range l.pairs(v, "loop_control") {
			switch p.key {
			case "loop_var":
				t.LoopVar = l.str(p.v, "loop_var")
				if !template.IsIdent(t.LoopVar) {
					l.errorf(l.pos(p.v), "use letters, digits and _", "loop_var: %q is not a valid variable name", t.LoopVar)
				}
			case "label", "pause", "index_var", "extended":
				// display and pacing only (index_var is not set)
			default:
				l.errorf(l.pos(p.k), "loop_control takes loop_var, label", "loop_control: unknown key %q", p.key)
			}
		}
	case "vars":
		if v.Kind != yaml.MappingNode {
			l.errorf(l.pos(v), "e.g. vars: {unit: api}", "vars: want a mapping, not %s", kindName(v))
			return
		}
		m, _ := l.value(v, "\x00vars", other).(map[string]any)
		t.Vars = m
	case "block", "rescue", "always":
		t.IsBlock = true
		list := l.tasks(v, kv.key)
		switch kv.key {
		case "block":
			t.Block = list
		case "rescue":
			t.Rescue = list
		default:
			t.Always = list
		}
	case "include_tasks", "import_tasks":
		t.IsBlock = true
		t.Include = kv.key
		file := l.str(v, kv.key)
		if v.Kind == yaml.MappingNode {
			for _, p := range l.pairs(v, kv.key) {
				if p.key == "file" {
					file = l.str(p.v, "file")
				}
			}
		}
		var guard *Task
		if template.HasTemplate(file) {
			name, err := l.staticName(file, v)
			if err != nil {
				// finishBlock decides, once the task's when: is read
				t.deferred = &deferredInclude{pos: l.pos(v), what: kv.key, file: file, err: err}
				break
			}
			guard = l.nameGuard(kv.key, file, name, v)
			file = name
		}
		t.Block = l.includeFile(file, v, kv.key)
		if guard != nil {
			t.Block = append([]*Task{guard}, t.Block...)
		}
		if t.Name == "" {
			t.Name = kv.key + " " + file
		}
	case "include_role", "import_role":
		l.includeRole(t, kv.key, v)
	case "meta":
		s := l.str(v, "meta")
		switch s {
		case "flush_handlers", "noop", "end_host", "end_play", "refresh_inventory", "clear_facts", "clear_host_errors", "reset_connection":
			t.Meta = s
		default:
			l.errorf(l.pos(v), "meta takes flush_handlers, noop, end_host, end_play", "meta: %q is not supported", s)
		}
	case "become_method":
		if s := l.str(v, "become_method"); s != "sudo" && s != "" {
			l.errorf(l.pos(v), "ferry becomes with sudo", "become_method: %q is not supported", s)
		}
	case "any_errors_fatal", "remote_user", "check_mode", "diff", "delegate_facts", "throttle", "debugger":
		// any_errors_fatal: a failure halts the rollout already (max_fail_percentage 0);
		// remote_user on a task: the connection is per host; the rest change no behaviour here.
	}
}

// includeFile loads a task file for include_tasks/import_tasks, relative to
// the file that names it (roles: their tasks directory), else to the playbook.
func (l *loader) includeFile(file string, at *yaml.Node, what string) []*Task {
	if file == "" {
		l.errorf(l.pos(at), "e.g. import_tasks: deploy.yml", "%s: want a file name", what)
		return nil
	}
	path := file
	if !filepath.IsAbs(path) {
		path = filepath.Join(l.baseDir(), file)
		// as in Ansible, a file not beside the one that names it is looked
		// for in the playbook's directory
		if _, err := os.Stat(path); err != nil && l.seen.playbook != "" {
			if alt := filepath.Join(filepath.Dir(l.seen.playbook), file); alt != path {
				if _, err := os.Stat(alt); err == nil {
					path = alt
				}
			}
		}
	}
	if l.depth > 20 {
		l.errorf(l.pos(at), "look for a task file that includes itself, directly or through another", "%s: files include each other too deeply", what)
		return nil
	}
	sub, root := l.subLoader(path, at, what)
	if root == nil {
		return nil
	}
	sub.depth = l.depth + 1
	list := sub.tasks(root, what)
	l.merge(sub)
	return list
}

// subLoader reads another YAML file with positions of its own.
func (l *loader) subLoader(path string, at *yaml.Node, what string) (*loader, *yaml.Node) {
	src, err := os.ReadFile(path)
	if err != nil {
		l.errorf(l.pos(at), "the path is relative to the file that names it (or to the playbook's directory)", "%s: %v", what, err)
		return nil, nil
	}
	if len(src) > 4<<20 {
		l.errorf(l.pos(at), "", "%s: %s is over 4 MiB", what, path)
		return nil, nil
	}
	sub := &loader{path: path, src: src, dir: l.dir, doc: l.resolver(), seen: l.seen}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		l.errs = append(l.errs, sub.yamlError(err))
		return nil, nil
	}
	sub.statements(&doc)
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return sub, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	return sub, sub.resolve(doc.Content[0])
}

func (l *loader) merge(sub *loader) {
	l.errs = append(l.errs, sub.errs...)
	l.warns = append(l.warns, sub.warns...)
}

// finishBlock checks a block and hands its keywords down to its tasks.
func (l *loader) finishBlock(t *Task, mod tasks.Module) {
	if mod != nil {
		l.errorf(t.ModulePos, "a block holds tasks: move the module into one of them", "a task cannot have both a module and block/include")
	}
	if t.Meta != "" {
		return
	}
	if t.deferred != nil {
		l.deferredInclude(t)
	}
	if len(t.Rescue)+len(t.Always) > 0 && t.Block == nil {
		l.errorf(t.Pos, "add `block:` with the tasks that rescue/always follow", "rescue/always without block")
	}
	if t.HasLoop {
		switch t.Include {
		case "include_tasks", "include_role":
			lv := t.LoopVar
			if lv == "" {
				lv = "item"
			}
			for _, c := range flattenBlockChildren(t) {
				c.outerLoops = append(c.outerLoops, lv)
			}
		case "":
			l.errorf(t.Pos, "put the loop on the tasks inside, or move them to a file and loop over include_tasks", "loop on a block is not supported (nor by Ansible)")
		default:
			l.errorf(t.Pos, fmt.Sprintf("use include_%s: imports are read once, before any loop", strings.TrimPrefix(t.Include, "import_")), "%s with a loop is not supported (nor by Ansible)", t.Include)
		}
	}
	for _, c := range flattenBlockChildren(t) {
		c.When = append(append(Conds{}, t.When...), c.When...)
		c.Tags = append(append([]string{}, t.Tags...), c.Tags...)
		if c.Become == nil {
			c.Become = t.Become
		}
		if c.BecomeUser == "" {
			c.BecomeUser = t.BecomeUser
		}
		if c.DelegateTo == "" {
			c.DelegateTo = t.DelegateTo
		}
		c.RunOnce = c.RunOnce || t.RunOnce
		c.IgnoreErrors = c.IgnoreErrors || t.IgnoreErrors
		c.NoLog = c.NoLog || t.NoLog
		if len(t.Environment) > 0 {
			c.Environment = mergeRaw(t.Environment, c.Environment)
		}
		if len(t.Vars) > 0 {
			c.Vars = mergeRaw(t.Vars, c.Vars)
		}
	}
	t.When, t.Tags = nil, nil
}

// flattenBlockChildren lists the direct and nested tasks of a block (not the block itself).
func flattenBlockChildren(t *Task) []*Task {
	var out []*Task
	for _, list := range [][]*Task{t.Block, t.Rescue, t.Always} {
		for _, c := range list {
			out = append(out, c)
			if c.IsBlock {
				out = append(out, flattenBlockChildren(c)...)
			}
		}
	}
	return out
}

func mergeRaw(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

func (l *loader) ansiblePlayKey(p *Play, kv pair) {
	v := kv.v
	switch kv.key {
	case "handlers":
		p.Handlers = append(p.Handlers, l.tasks(v, "handlers")...)
	case "vars_files":
		for _, f := range l.strList(v, "vars_files") {
			p.Vars = append(p.Vars, l.varsFile(f, v, false)...)
		}
	case "roles":
		l.roles(p, v)
	case "remote_user":
		p.RemoteUser = l.str(v, "remote_user")
		if template.HasTemplate(p.RemoteUser) {
			l.errorf(l.pos(v), "name the user literally, or set ansible_user in the inventory", "remote_user: {{ }} is not supported")
		}
	case "become_method":
		if s := l.str(v, "become_method"); s != "sudo" && s != "" {
			l.errorf(l.pos(v), "ferry becomes with sudo", "become_method: %q is not supported", s)
		}
	case "connection":
		if s := l.str(v, "connection"); s == "winrm" || s == "psrp" {
			l.errorf(l.pos(v), windowsHint, "connection: %q is not supported on a play", s)
		} else if s == "local" {
			p.localAt = v // checked against hosts: once the play is read
		} else if s != "ssh" && s != "smart" && s != "" {
			l.errorf(l.pos(v), "ferry connects over SSH; mark controller steps with `delegate_to: localhost`", "connection: %q is not supported on a play", s)
		}
	case "strategy":
		if s := l.str(v, "strategy"); s != "linear" && s != "free" && s != "" {
			l.errorf(l.pos(v), "hosts of a batch run their tasks independently (like free)", "strategy: %q is not supported", s)
		}
	case "any_errors_fatal":
		if l.bool(v, "any_errors_fatal") {
			p.MaxFailPercentage = 0
		}
	case "force_handlers":
		l.bool(v, "force_handlers")
	}
}

// varsFile reads a YAML mapping of variables (vars_files, role defaults and vars).
func (l *loader) varsFile(file string, at *yaml.Node, isDefault bool) []*VarDef {
	if template.HasTemplate(file) {
		l.errorf(l.pos(at), "name the file literally, or pass values with -e @file.yml", "vars_files: {{ }} in a file name is not supported")
		return nil
	}
	path := file
	if !filepath.IsAbs(path) && !isDefault && !l.inRole {
		path = filepath.Join(l.baseDir(), file)
	}
	sub, root := l.subLoader(path, at, "vars_files")
	if root == nil {
		return nil
	}
	defs := sub.vars(root)
	l.merge(sub)
	for _, d := range defs {
		d.Default = isDefault
	}
	return defs
}

// roles loads `roles:` entries from ./roles/NAME next to the playbook.
func (l *loader) roles(p *Play, v *yaml.Node) {
	if v.Kind != yaml.SequenceNode {
		l.errorf(l.pos(v), "e.g. roles: [api]", "roles: want a list, not %s", kindName(v))
		return
	}
	for _, item := range v.Content {
		item = l.resolve(item)
		ref, when, tags, roleVars := l.roleEntry(item)
		if ref.name == "" {
			continue
		}
		l.role(p, ref, item, when, tags, roleVars)
	}
}

func (l *loader) role(p *Play, ref roleRef, at *yaml.Node, when Conds, tags []string, roleVars map[string]any) {
	roleTasks, ok := l.loadRole(p, ref, at)
	if !ok || len(roleTasks) == 0 {
		return
	}
	block := &Task{Name: "role " + ref.name, IsBlock: true, Block: roleTasks, When: when, Tags: tags, Vars: roleVars, Pos: l.pos(at), path: l.path, src: l.src}
	l.finishBlock(block, nil)
	p.roleTasks = append(p.roleTasks, block)
}

// srcDir is where a task's relative local paths resolve: a role's files/ or
// templates/ directory, else the playbook's directory.
func (t *Task) srcDir(playbookDir string) string {
	if t.Dir == "" {
		return playbookDir
	}
	sub := "files"
	if t.Spec.RoleDir != "" {
		sub = t.Spec.RoleDir
	}
	if st, err := os.Stat(filepath.Join(t.Dir, sub)); err == nil && st.IsDir() {
		return filepath.Join(t.Dir, sub)
	}
	return t.Dir
}

// srcDirs are where a relative local path of t is looked for, in order:
// srcDir, then for a role's task the role's directory and its tasks/, then
// the playbook's directory with its files/ (or templates/), as Ansible's
// search path.
func (t *Task) srcDirs(playbookDir string) []string {
	first := t.srcDir(playbookDir)
	if t.Dir == "" {
		return []string{first}
	}
	sub := "files"
	if t.Spec.RoleDir != "" {
		sub = t.Spec.RoleDir
	}
	out := []string{first}
	for _, d := range []string{t.Dir, filepath.Join(t.Dir, "tasks"), filepath.Join(playbookDir, sub), playbookDir} {
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// isLocalhost reports whether a delegate_to target is the controller.
func isLocalhost(s string) bool {
	switch strings.TrimSpace(s) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// seen is what one load has already reported, across the files it reads.
type seen struct {
	unsupported map[string]bool
	playbook    string   // the playbook's path
	play        *Play    // the play being loaded (include_role adds to its vars and handlers)
	rolesPath   []string // roles_path, once read
	environ     []string // the controller's environment (KEY=VALUE), for roles_path
	roleStack   []string // roles being loaded, to find dependency cycles
	rolesIn     map[*Play]map[string]bool
	// pendingVars: defaults and vars of the roles whose dependencies are
	// being loaded, outermost first, for file names rendered at load.
	pendingVars [][]*VarDef
}

func newSeen() *seen { return &seen{unsupported: map[string]bool{}} }

// getenv reads the controller's environment the load was given.
func (s *seen) getenv(k string) string {
	v := ""
	for _, kv := range s.environ {
		if name, val, ok := strings.Cut(kv, "="); ok && name == k {
			v = val // a later pair wins, as in os/exec
		}
	}
	return v
}

// checkNotify reports notify: names no handler of the play answers to (by
// name or listen), as Ansible does before it runs anything.
func (l *loader) checkNotify(p *Play) {
	var names []string
	for _, h := range flattenTasks(p.Handlers) {
		names = append(names, h.Name)
		names = append(names, h.Listen...)
	}
	for _, t := range flattenTasks(append(append(append([]*Task{}, p.PreTasks...), p.Tasks...), append(p.PostTasks, p.Handlers...)...)) {
		for _, n := range t.Notify {
			if template.HasTemplate(n) || slices.Contains(names, n) {
				continue
			}
			hint := diag.Suggest(n, names)
			if hint == "" {
				hint = "add a handler with this name (or `listen:`) under the play's `handlers:` or a role's handlers/main.yml"
			}
			l.errs = append(l.errs, diag.New(t.src, t.Pos, hint, "notify: no handler is called %q", n))
		}
	}
}

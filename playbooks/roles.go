// Roles: where a role is found (roles/ next to the playbook, roles_path
// from ansible.cfg or ANSIBLE_ROLES_PATH, the playbook's directory), its
// meta/main.yml dependencies, and include_role/import_role, all read when
// the playbook loads.

package playbooks

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ferrydeploy/ferry/internal/template"
)

// roleRef names a role and which of its files to read.
type roleRef struct {
	name                                            string
	tasksFrom, handlersFrom, varsFrom, defaultsFrom string
	params                                          bool // given parameters: a dependency then runs again
}

// rolesPath is where roles are looked for besides roles/ next to the
// playbook: ANSIBLE_ROLES_PATH, else roles_path in the ansible.cfg Ansible
// would read (ANSIBLE_CONFIG, ./ansible.cfg, the playbook's directory,
// ~/.ansible.cfg, /etc/ansible/ansible.cfg). Read once per playbook. The
// variables and HOME come from the environment the load was given.
func (l *loader) rolesPath() []string {
	if l.seen.rolesPath != nil {
		return l.seen.rolesPath
	}
	var out []string
	home := l.seen.getenv("HOME")
	if env := l.seen.getenv("ANSIBLE_ROLES_PATH"); env != "" {
		out = filepath.SplitList(env)
	} else {
		var cands []string
		if c := l.seen.getenv("ANSIBLE_CONFIG"); c != "" {
			cands = append(cands, c)
		}
		cands = append(cands, "ansible.cfg", filepath.Join(l.playbookDir(), "ansible.cfg"))
		if home != "" {
			cands = append(cands, filepath.Join(home, ".ansible.cfg"))
		}
		cands = append(cands, "/etc/ansible/ansible.cfg")
		for _, c := range cands {
			if v, ok := iniValue(c, "defaults", "roles_path"); ok {
				for _, p := range filepath.SplitList(v) {
					p = strings.TrimSpace(p)
					if strings.HasPrefix(p, "~/") && home != "" {
						p = filepath.Join(home, p[2:])
					}
					if p != "" && !filepath.IsAbs(p) {
						p = filepath.Join(filepath.Dir(c), p)
					}
					out = append(out, p)
				}
				break
			}
		}
	}
	l.seen.rolesPath = append([]string{}, out...)
	return l.seen.rolesPath
}

// iniValue reads key in [section] of an ansible.cfg; ok is false when the
// file or the key is not there.
func iniValue(path, section, key string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	cur := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			cur = strings.Trim(line, "[] ")
		case cur == section:
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.TrimSpace(k) == key {
				return strings.TrimSpace(v), true
			}
		}
	}
	return "", false
}

// playbookDir is the directory of the playbook being loaded (not of an
// included file).
func (l *loader) playbookDir() string {
	if l.seen.playbook != "" {
		return filepath.Dir(l.seen.playbook)
	}
	return l.baseDir()
}

// findRole returns the directory of the role, and where it looked.
func (l *loader) findRole(name string) (string, []string) {
	var looked []string
	if filepath.IsAbs(name) || strings.Contains(name, "/") {
		d := name
		if !filepath.IsAbs(d) {
			d = filepath.Join(l.playbookDir(), name)
		}
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d, nil
		}
		return "", []string{d}
	}
	bases := []string{filepath.Join(l.playbookDir(), "roles")}
	if l.dir != "" { // a role including another: its siblings too
		bases = append(bases, filepath.Dir(l.dir))
	}
	bases = append(bases, l.rolesPath()...)
	bases = append(bases, l.playbookDir())
	for _, base := range bases {
		d := filepath.Join(base, name)
		looked = append(looked, d)
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d, nil
		}
	}
	return "", looked
}

// loadRole reads a role for play p: its defaults and vars join the play's
// vars, its handlers the play's handlers; it returns its tasks, after the
// tasks of the roles its meta/main.yml depends on.
func (l *loader) loadRole(p *Play, ref roleRef, at *yaml.Node) ([]*Task, bool) {
	dir, looked := l.findRole(ref.name)
	if dir == "" {
		hint := fmt.Sprintf("put the role in %s", filepath.Join(l.playbookDir(), "roles", ref.name))
		if len(looked) > 1 {
			hint += " (looked in " + strings.Join(looked, ", ") + "; roles_path in ansible.cfg or ANSIBLE_ROLES_PATH add places)"
		}
		l.errorf(l.pos(at), hint, "role %q not found", ref.name)
		return nil, false
	}
	for _, r := range l.seen.roleStack {
		if r == dir {
			l.errorf(l.pos(at), "a role cannot depend on itself, directly or through others", "role %q: dependency cycle", ref.name)
			return nil, false
		}
	}
	l.seen.roleStack = append(l.seen.roleStack, dir)
	defer func() { l.seen.roleStack = l.seen.roleStack[:len(l.seen.roleStack)-1] }()
	if l.seen.rolesIn == nil {
		l.seen.rolesIn = map[*Play]map[string]bool{}
	}
	if l.seen.rolesIn[p] == nil {
		l.seen.rolesIn[p] = map[string]bool{}
	}
	l.seen.rolesIn[p][dir] = true

	file := func(sub, name string) string {
		if name == "" {
			name = "main"
		}
		cands := []string{name}
		if filepath.Ext(name) == "" {
			cands = []string{name + ".yml", name + ".yaml", name}
		}
		for _, f := range cands {
			path := filepath.Join(dir, sub, f)
			if st, err := os.Stat(path); err == nil && !st.IsDir() {
				return path
			}
		}
		return ""
	}
	var out []*Task
	// The role's defaults and vars are read before its dependencies: a
	// dependency's include may name a file by them (a hook the role sets
	// for ansistrano), as Ansible's play-wide role vars allow. They join
	// the play's vars after the dependencies' own.
	var own []*VarDef
	l.inRole = true // paths are already resolved
	if f := file("defaults", ref.defaultsFrom); f != "" && p != nil {
		own = append(own, l.varsFile(f, at, true)...)
	}
	if f := file("vars", ref.varsFrom); f != "" && p != nil {
		own = append(own, l.varsFile(f, at, false)...)
	}
	l.inRole = false
	if f := file("meta", ""); f != "" {
		l.seen.pendingVars = append(l.seen.pendingVars, own)
		out = append(out, l.roleDeps(p, f, at)...)
		l.seen.pendingVars = l.seen.pendingVars[:len(l.seen.pendingVars)-1]
	}
	if p != nil {
		p.Vars = append(p.Vars, own...)
	}
	saved := l.dir
	l.dir = dir
	defer func() { l.dir = saved }()
	load := func(sub, from string) []*Task {
		f := file(sub, from)
		if f == "" {
			if from != "" {
				l.errorf(l.pos(at), fmt.Sprintf("the role has no %s", filepath.Join(dir, sub, from+".yml")), "role %q: %s_from: %q not found", ref.name, sub, from)
			}
			return nil
		}
		s, root := l.subLoader(f, at, "role "+ref.name)
		if root == nil {
			return nil
		}
		s.dir = dir
		list := s.tasks(root, sub)
		l.merge(s)
		return list
	}
	out = append(out, load("tasks", ref.tasksFrom)...)
	if hk := dir + "\x00handlers\x00" + ref.handlersFrom; p != nil && !l.seen.rolesIn[p][hk] {
		l.seen.rolesIn[p][hk] = true // a role included twice has its handlers once
		p.Handlers = append(p.Handlers, load("handlers", ref.handlersFrom)...)
	}
	return out, true
}

// roleDeps loads the roles a role's meta/main.yml lists under
// dependencies, each once per play unless given parameters (as Ansible).
func (l *loader) roleDeps(p *Play, meta string, at *yaml.Node) []*Task {
	s, root := l.subLoader(meta, at, "role meta")
	if root == nil || root.Kind != yaml.MappingNode {
		return nil
	}
	var out []*Task
	for _, kv := range s.pairs(root, "meta") {
		if kv.key != "dependencies" {
			continue // galaxy_info, allow_duplicates, ...
		}
		v := kv.v
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			continue
		}
		if v.Kind != yaml.SequenceNode {
			s.errorf(s.pos(v), "e.g. dependencies: [common]", "dependencies: want a list, not %s", kindName(v))
			continue
		}
		for _, item := range v.Content {
			item = s.resolve(item)
			ref, when, tags, vars := s.roleEntry(item)
			if ref.name == "" {
				continue
			}
			if d, _ := s.findRole(ref.name); d != "" && l.seen.rolesIn[p][d] && !ref.params {
				continue // already in the play
			}
			s.dir = filepath.Dir(filepath.Dir(meta)) // the depending role: its siblings are found
			list, ok := s.loadRole(p, ref, item)
			if !ok || len(list) == 0 {
				continue
			}
			block := &Task{Name: "role " + ref.name, IsBlock: true, Block: list, When: when, Tags: tags, Vars: vars, Pos: s.pos(item), path: s.path, src: s.src}
			s.finishBlock(block, nil)
			out = append(out, block)
		}
	}
	l.merge(s)
	return out
}

// roleEntry reads one entry of roles: or dependencies: a name, or a
// mapping with role (or name), when, tags, vars and parameters.
func (l *loader) roleEntry(item *yaml.Node) (roleRef, Conds, []string, map[string]any) {
	var ref roleRef
	var when Conds
	var tags []string
	var roleVars map[string]any
	switch item.Kind {
	case yaml.ScalarNode:
		ref.name = item.Value
	case yaml.MappingNode:
		for _, kv := range l.pairs(item, "role") {
			switch kv.key {
			case "role", "name":
				ref.name = l.str(kv.v, "role")
			case "when":
				when = l.conds(kv.v, "when")
			case "tags":
				tags = l.strList(kv.v, "tags")
			case "vars":
				roleVars, _ = l.value(kv.v, "", nil).(map[string]any)
				ref.params = true
			case "become", "become_user", "delegate_to", "ignore_errors", "no_log", "environment":
				l.warnf(l.pos(kv.k), "%s on a role entry is not applied: put it on the role's tasks", kv.key)
			default:
				// Ansible's `role: x` with parameters: they are the role's vars
				if roleVars == nil {
					roleVars = map[string]any{}
				}
				roleVars[kv.key] = l.value(kv.v, "", nil)
				ref.params = true
			}
		}
	}
	if ref.name == "" || template.HasTemplate(ref.name) {
		l.errorf(l.pos(item), "e.g. roles: [api] or roles: [{role: api, vars: {...}}]", "roles: want a role name")
		ref.name = ""
	}
	return ref, when, tags, roleVars
}

// includeRole reads include_role/import_role: the role's tasks become the
// task's block; `apply` gives its keywords to those tasks.
func (l *loader) includeRole(t *Task, key string, v *yaml.Node) {
	t.IsBlock = true
	t.Include = key
	var ref roleRef
	var apply *yaml.Node
	switch v.Kind {
	case yaml.ScalarNode:
		ref.name = v.Value
	case yaml.MappingNode:
		for _, kv := range l.pairs(v, key) {
			switch kv.key {
			case "name":
				ref.name = l.str(kv.v, "name")
			case "tasks_from":
				ref.tasksFrom = l.str(kv.v, "tasks_from")
			case "handlers_from":
				ref.handlersFrom = l.str(kv.v, "handlers_from")
			case "vars_from":
				ref.varsFrom = l.str(kv.v, "vars_from")
			case "defaults_from":
				ref.defaultsFrom = l.str(kv.v, "defaults_from")
			case "apply":
				apply = kv.v
			case "public", "allow_duplicates", "rolespec_validate":
			default:
				l.errorf(l.pos(kv.k), "include_role takes name, tasks_from, vars_from, defaults_from, handlers_from, apply, public", "%s: unknown key %q", key, kv.key)
			}
		}
	}
	for _, s := range []string{ref.name, ref.tasksFrom, ref.varsFrom, ref.defaultsFrom, ref.handlersFrom} {
		if template.HasTemplate(s) {
			l.errorf(l.pos(v), "name the role and its files literally: ferry reads roles when the playbook loads", "%s: {{ }} in a role or file name is not supported", key)
			return
		}
	}
	if ref.name == "" {
		l.errorf(l.pos(v), "e.g. include_role: {name: app, tasks_from: deploy}", "%s: want the role's name", key)
		return
	}
	if l.depth > 20 {
		l.errorf(l.pos(v), "look for a role that includes itself, directly or through another", "%s: roles include each other too deeply", key)
		return
	}
	l.depth++
	list, ok := l.loadRole(l.seen.play, ref, v)
	l.depth--
	if !ok {
		return
	}
	if apply != nil {
		inner := &Task{Name: "apply", IsBlock: true, Block: list, Pos: l.pos(apply), path: l.path, src: l.src, Dir: l.dir}
		if apply.Kind != yaml.MappingNode {
			l.errorf(l.pos(apply), "e.g. apply: {tags: [deploy], become: true}", "apply: want a mapping, not %s", kindName(apply))
		} else {
			for _, kv := range l.pairs(apply, "apply") {
				switch kv.key {
				case "tags":
					inner.Tags = l.strList(kv.v, "tags")
				case "when":
					inner.When = l.conds(kv.v, "when")
				case "become":
					b := l.bool(kv.v, "become")
					inner.Become = &b
				case "become_user":
					inner.BecomeUser = l.str(kv.v, "become_user")
				case "ignore_errors":
					inner.IgnoreErrors = l.bool(kv.v, "ignore_errors")
				case "no_log":
					inner.NoLog = l.bool(kv.v, "no_log")
				case "environment":
					var tm []*template.Template
					inner.Environment, tm = l.environment(kv.v)
					t.templates = append(t.templates, tm...)
				case "delegate_to", "run_once", "vars":
					l.ansibleKey(inner, kv, map[string]*yaml.Node{})
				default:
					l.errorf(l.pos(kv.k), "apply takes tags, when, become, become_user, ignore_errors, no_log, environment, delegate_to, run_once, vars", "apply: unknown key %q", kv.key)
				}
			}
		}
		l.finishBlock(inner, nil)
		list = []*Task{inner}
	}
	t.Block = list
	if t.Name == "" {
		t.Name = key + " " + ref.name
	}
}

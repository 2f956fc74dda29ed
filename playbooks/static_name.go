package playbooks

// A task file name with {{ }} (include_tasks: "update-code/{{ via }}.yml"),
// rendered when the playbook loads from what is known then: the play's vars,
// role defaults and role vars. Ansible renders it per host at run time; the
// names real playbooks build (ansistrano's hooks and strategies) come from
// play vars and defaults, which are the same for every host.

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/tasks"
)

// staticName renders a templated include file name with the play's static
// variables.
func (l *loader) staticName(file string, at *yaml.Node) (string, error) {
	t, err := template.CompileTemplate(file, l.pos(at))
	if err != nil {
		return "", err
	}
	vars := l.staticVars()
	s, err := t.RenderString(vars)
	if err != nil {
		var u *template.UndefinedError
		if errors.As(err, &u) {
			return "", &notStaticError{name: u.Name}
		}
		return "", err
	}
	if s == "" {
		return "", fmt.Errorf("renders empty")
	}
	return s, nil
}

// staticVars are the variables of the play being loaded whose values are
// known at load time: role defaults below play vars and role vars, later
// definitions over earlier ones, each rendered with those before it (a value
// that cannot be rendered yet is left out).
func (l *loader) staticVars() map[string]any {
	vars := map[string]any{"playbook_dir": l.playbookDir()}
	if l.seen == nil || l.seen.play == nil {
		return vars
	}
	defs := l.seen.play.Vars
	if len(l.seen.pendingVars) > 0 {
		defs = append([]*VarDef{}, defs...)
		for i := len(l.seen.pendingVars) - 1; i >= 0; i-- { // the outermost role's last
			defs = append(defs, l.seen.pendingVars[i]...)
		}
	}
	for _, pass := range []bool{true, false} {
		for _, d := range defs {
			if d.Default != pass {
				continue
			}
			if callsOut(d.Value) {
				// a lookup runs a command or reads a file: not while loading
				delete(vars, d.Name)
				continue
			}
			v, err := template.RenderValue(d.Value, vars)
			if err != nil {
				delete(vars, d.Name)
				continue
			}
			vars[d.Name] = v
		}
	}
	return vars
}

// deferredInclude is an include_tasks whose file name needs a variable not
// known at load time.
type deferredInclude struct {
	pos        diag.Pos
	what, file string
	err        error
}

// deferredInclude settles t.deferred. With a when: (ansible's hook idiom,
// `include_tasks: "{{ hook }}"` with `when: hook is defined`), the include
// becomes a task that fails, naming the variable, if the condition holds at
// run time: where Ansible would read the file, ferry stops rather than
// skip it. Without one, it is a load error.
func (l *loader) deferredInclude(t *Task) {
	d := t.deferred
	t.deferred = nil
	if t.Name == "" {
		t.Name = d.what + " " + d.file
	}
	msg := fmt.Sprintf("%s: file name %q: %v", d.what, d.file, d.err)
	var ns *notStaticError
	if len(t.When) == 0 || !errors.As(d.err, &ns) {
		l.errorf(d.pos, staticNameHint, "%s", msg)
		return
	}
	mod, ok := tasks.Lookup("fail")
	if !ok {
		l.errorf(d.pos, staticNameHint, "%s", msg)
		return
	}
	t.Block = []*Task{{
		Name: t.Name, Module: "fail", Spec: mod.Spec(), Pos: d.pos, ModulePos: d.pos, path: l.path, src: l.src,
		// the message is rendered: it names the variable, not the {{ }} file name
		Args: map[string]any{"msg": fmt.Sprintf("%s: the file name needs %q, which was not known when the playbook loaded (%s)", d.what, ns.name, staticNameHint)},
	}}
}

const staticNameHint = "ferry reads task files when the playbook loads: the name may use the play's vars, role defaults and role vars (with default()), not inventory variables, facts or registered results"

// notStaticError: a file name reads a variable not known at load time.
type notStaticError struct{ name string }

func (e *notStaticError) Error() string {
	return fmt.Sprintf("%q is not known when the playbook loads", e.name)
}

// nameGuard is the task that runs first in an include whose file name was
// rendered at load time: if the name renders to another file at run time
// (an -e, a host variable or a fact Ansible would have used), it fails,
// rather than run the file ferry read.
func (l *loader) nameGuard(what, file, name string, at *yaml.Node) *Task {
	mod, ok := tasks.Lookup("fail")
	if !ok {
		return nil
	}
	src, err := template.AsExpression(file)
	if err != nil {
		return nil // staticName rendered it: cannot happen
	}
	cond, err := template.CompileExpr(src+" != "+template.QuoteString(name), l.pos(at))
	if err != nil {
		return nil
	}
	pos := l.pos(at)
	return &Task{
		Name: fmt.Sprintf("%s: the file name still renders to %s", what, name), Module: "fail", Spec: mod.Spec(),
		Pos: pos, ModulePos: pos, path: l.path, src: l.src, When: Conds{cond},
		Args: map[string]any{"msg": fmt.Sprintf("%s: the file name renders to another file at run time than %s, which ferry read when the playbook loaded from the play's vars and role defaults; set the variable in the play's vars (not with -e, in the inventory or from a fact)", what, name)},
	}
}

// callsOut reports whether a raw value's templates may call a lookup.
func callsOut(v any) bool {
	switch x := v.(type) {
	case string:
		return template.HasTemplate(x) && (strings.Contains(x, "lookup") || strings.Contains(x, "query") || strings.Contains(x, "q("))
	case []any:
		for _, e := range x {
			if callsOut(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if callsOut(e) {
				return true
			}
		}
	}
	return false
}

package playbooks

// A task file name with {{ }} (include_tasks: "update-code/{{ via }}.yml"),
// rendered when the playbook loads from what is known then: the play's vars,
// role defaults and role vars. Ansible renders it per host at run time; the
// names real playbooks build (ansistrano's hooks and strategies) come from
// play vars and defaults, which are the same for every host.

import (
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/ferrydeploy/ferry/internal/template"
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
			return "", fmt.Errorf("%q is not known when the playbook loads", u.Name)
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
	for _, pass := range []bool{true, false} {
		for _, d := range defs {
			if d.Default != pass {
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

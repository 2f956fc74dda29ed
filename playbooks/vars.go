package playbooks

import (
	"fmt"
	"strings"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/template"
)

// Merge overlays maps, later ones winning (shallow: a key's whole value is
// replaced, as Ansible does by default). Nil maps are skipped.
func Merge(layers ...map[string]any) map[string]any {
	n := 0
	for _, m := range layers {
		n += len(m)
	}
	out := make(map[string]any, n)
	for _, m := range layers {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// Scope is what one host's expressions see at one point of a run, layer by
// layer. Precedence, later winning: Inventory (all < group < host, merged by
// the inventory) < the play's vars < Facts (registered results and set_fact)
// < Extra (-e). Builtins (env, env_vars, run, host, inventory_hostname,
// groups, group_names, hostvars) sit on top; `extra` is always Extra.
//
// The runner builds one Scope per host and calls Vars before each task (play
// vars are templates that may read registered results, so they are rendered
// again; compiled templates are cached, so this is cheap). For the loop
// variable, add `item` to a copy of the result.
type Scope struct {
	Inventory map[string]any
	Play      *Play
	Facts     map[string]any
	Extra     map[string]any
	Builtins  map[string]any
}

// Vars resolves the scope into one map. Play vars are rendered in dependency
// order (a var may use another, defined before or after it); a cycle is a
// positioned error. A play var that Facts or Extra override is not rendered.
func (s *Scope) Vars() (map[string]any, error) {
	vars := Merge(s.Inventory, s.Facts, s.Extra, s.Builtins)
	if _, ok := vars["extra"]; !ok {
		extra := s.Extra
		if extra == nil {
			extra = map[string]any{}
		}
		vars["extra"] = extra
	}
	if s.Play == nil || len(s.Play.Vars) == 0 {
		return vars, nil
	}
	r := &resolver{vars: vars, defs: map[string]*VarDef{}, state: map[string]int{}}
	for _, d := range s.Play.Vars {
		if _, over := s.Facts[d.Name]; over {
			continue
		}
		if _, over := s.Extra[d.Name]; over {
			continue
		}
		if _, over := s.Builtins[d.Name]; over {
			continue
		}
		if _, over := s.Inventory[d.Name]; over && d.Default {
			continue // a role default: the inventory wins, as in Ansible
		}
		if prev := r.defs[d.Name]; prev != nil && d.Default && !prev.Default {
			continue // a role default is below the play's vars, whatever the order
		}
		r.defs[d.Name] = d
	}
	for _, d := range s.Play.Vars {
		if r.defs[d.Name] == nil {
			continue
		}
		if err := r.resolve(d.Name); err != nil {
			return nil, err
		}
	}
	return vars, nil
}

// ResolveVars renders a play's vars over base (the lower layers and builtins),
// for callers that have no Facts or Extra: it is Scope{Inventory: base, Play: p}.Vars().
func ResolveVars(p *Play, base map[string]any) (map[string]any, error) {
	s := &Scope{Inventory: base, Play: p}
	return s.Vars()
}

type resolver struct {
	vars  map[string]any
	defs  map[string]*VarDef
	state map[string]int // 1: resolving, 2: done
	stack []string
}

func (r *resolver) resolve(name string) error {
	d := r.defs[name]
	switch r.state[name] {
	case 2:
		return nil
	case 1:
		i := 0
		for i < len(r.stack) && r.stack[i] != name {
			i++
		}
		chain := append(append([]string(nil), r.stack[i:]...), name)
		return &diag.Error{Pos: d.Pos, Msg: fmt.Sprintf("variable %q depends on itself: %s", name, strings.Join(chain, " → ")),
			Snippet: diag.Line(d.src, d.Pos.Line), Hint: "break the cycle: one of these must not use the others"}
	}
	r.state[name] = 1
	r.stack = append(r.stack, name)
	for _, t := range d.templates {
		for _, ref := range t.Refs() {
			if r.defs[ref.Name] != nil {
				if err := r.resolve(ref.Name); err != nil {
					return err
				}
			}
		}
	}
	v, err := template.RenderValueAt(d.Value, r.vars, "", d.posOf)
	if err != nil {
		return fmt.Errorf("vars: %s: %w", name, err)
	}
	r.vars[name] = v
	r.stack = r.stack[:len(r.stack)-1]
	r.state[name] = 2
	return nil
}

func (d *VarDef) posOf(path string) (diag.Pos, func(int) diag.Pos) {
	n := d.nodes[path]
	if n == nil {
		return d.Pos, nil
	}
	return nodePos(d.path, n), scalarPosAt(d.path, d.src, n)
}

package playbooks

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/tasks"
)

// Check reports variables that expressions read and nothing defines: not a
// builtin (template.Reserved), not a play var, not registered or set_fact'ed by an
// earlier task, not `item` inside a loop, and not in known.
//
// known is what the caller knows exists besides the playbook: the inventory's
// variables and the -e keys. Pass nil when the inventory is not known (ferry
// check without -i): any name might then be an inventory variable, so none is
// reported. before/after tasks run once on the controller: they see play vars
// and their own registers, not what host tasks registered. Names read on the left of `??` (or as default's first argument)
// are never reported: the default covers them.
func (p *Playbook) Check(known map[string]bool) error {
	if known == nil {
		return nil
	}
	var errs diag.List
	reported := map[string]bool{}
	// what earlier plays register or set_fact stays with their hosts for
	// the later plays (as in Ansible)
	seen := copySet(known)
	for _, play := range p.Plays {
		errs = append(errs, p.checkPlay(play, seen, reported)...)
		for _, t := range flattenTasks(append(play.HostTasks(), play.Handlers...)) {
			for _, n := range t.defines() {
				seen[n] = true
			}
		}
	}
	return errs.Err()
}

// checker tracks which names are defined at one point of a play.
type checker struct {
	pb      *Playbook
	known   map[string]bool
	defined map[string]bool
	later   map[string]diag.Pos // registered by some task of the play, for the hint
	onCtl   bool                // checking before/after, which run on the controller
	rescue  map[*Task]bool      // tasks of a rescue: list, which see ansible_failed_task and _result
	facts   bool                // facts are gathered: ansible_* names are defined
	// reported: positions already reported (shared by the plays: a role's
	// file read by two plays is one position)
	reported map[string]bool
	src      []byte // the file of the task being checked (roles and includes have their own)
	errs     diag.List
}

func (p *Playbook) checkPlay(play *Play, known, reported map[string]bool) diag.List {
	c := &checker{pb: p, known: known, later: map[string]diag.Pos{}, rescue: map[*Task]bool{},
		facts: play.Gathers(filepath.Dir(p.Path)), reported: reported}
	for _, list := range [][]*Task{play.HostTasks(), play.Rollback, play.Handlers} {
		markRescue(list, c.rescue)
	}
	for _, t := range play.AllTasks() {
		for _, n := range t.defines() {
			if _, ok := c.later[n]; !ok {
				c.later[n] = t.Pos
			}
		}
	}
	base := map[string]bool{}
	for _, n := range template.Reserved {
		base[n] = true
	}
	for _, n := range Magic {
		base[n] = true
	}
	for _, d := range play.Vars {
		base[d.Name] = true
	}
	for _, pr := range play.Prompts {
		base[pr.Name] = true // answered with -e (the run refuses to start without)
	}
	// play vars are rendered lazily, so they may read anything registered in the play
	c.defined = copySet(base)
	for n := range c.later {
		c.defined[n] = true
	}
	for _, d := range play.Vars {
		for _, t := range d.templates {
			c.refs(t.Refs(), "")
		}
	}
	c.defined = copySet(base)
	if play.hostsTmpl != nil {
		c.refs(play.hostsTmpl.Refs(), "")
	}
	for _, t := range play.envTmpls {
		c.refs(t.Refs(), "")
	}

	// controller lists see no host results
	c.defined, c.onCtl = copySet(base), true
	c.tasks(play.Before)
	c.defined, c.onCtl = copySet(base), false
	c.tasks(flattenTasks(play.Stage)) // what stage registers, the host's tasks see
	c.tasks(flattenTasks(play.HostTasks()))
	c.tasks(play.Rollback)
	c.tasks(flattenTasks(play.Handlers)) // handlers run after the tasks that notify them
	c.defined, c.onCtl = copySet(base), true
	c.tasks(play.After)
	return c.errs
}

func copySet(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// defines lists the variables a task sets: its register and set_fact's keys.
func (t *Task) defines() []string {
	var out []string
	if t.Register != "" {
		out = append(out, t.Register)
	}
	if f, ok := t.Args[t.Spec.VarsFile].(string); ok && t.Spec.VarsFile != "" && !template.HasTemplate(f) {
		if name, ok := t.Args["name"].(string); ok && name != "" {
			out = append(out, name)
		} else if vars, err := tasks.ReadVarsFile(tasks.VarsFilePath(t.srcDir(filepath.Dir(t.path)), f)); err == nil {
			keys := make([]string, 0, len(vars))
			for k := range vars {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			out = append(out, keys...)
		}
	}
	out = append(out, t.Spec.SetsFacts...)
	if t.Spec.DefinesFacts {
		keys := make([]string, 0, len(t.Args))
		for k := range t.Args {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out = append(out, keys...)
	}
	return out
}

func (c *checker) tasks(list []*Task) {
	for _, t := range list {
		extra := ""
		if t.HasLoop {
			extra = "item"
			if t.LoopVar != "" {
				extra = t.LoopVar
			}
		}
		c.src = t.src
		// the task's own vars exist while it runs, the loop variables of the
		// includes it is in, and in a rescue what failed
		var scoped []string
		scope := func(k string) {
			if !c.defined[k] {
				c.defined[k] = true
				scoped = append(scoped, k)
			}
		}
		for _, k := range t.outerLoops {
			scope(k)
		}
		for k := range t.Vars {
			scope(k)
		}
		if c.rescue[t] {
			for _, k := range FailureVars {
				scope(k)
			}
		}
		// `when: x is defined` (alone, and-ed, or in the list before): the
		// task, and the conditions after it, run only with x
		for _, e := range t.When {
			for _, k := range e.DefinedGuards() {
				scope(k)
			}
			c.refsExpr(e, extra)
		}
		for _, tm := range t.templates {
			c.refs(tm.Refs(), extra)
		}
		for _, e := range t.argExprs {
			c.refsExpr(e, extra)
		}
		// until, changed_when and failed_when see the task's own result
		own := extra
		if t.Register != "" {
			c.defined[t.Register] = true
		}
		for _, list := range []Conds{t.Until, t.ChangedWhen, t.FailedWhen} {
			for _, e := range list {
				c.refsExpr(e, own)
			}
		}
		for _, k := range scoped {
			delete(c.defined, k)
		}
		for _, n := range t.defines() {
			c.defined[n] = true
		}
		if t.Spec.GathersFacts {
			c.facts = true
		}
	}
}

func (c *checker) refsExpr(e *template.Expr, extra string) {
	c.refs(e.Refs(), extra)
}

func (c *checker) refs(refs []template.Ref, extra string) {
	for _, r := range refs {
		c.ref(r, extra)
	}
}

func (c *checker) ref(r template.Ref, extra string) {
	if !r.Strict || c.defined[r.Name] || c.known[r.Name] || r.Name == extra {
		return
	}
	if c.facts && strings.HasPrefix(r.Name, "ansible_") {
		return // a fact (interface facts are named after the host's interfaces)
	}
	pos := r.Pos
	at := fmt.Sprintf("%s:%d:%d:%s", pos.File, pos.Line, pos.Col, r.Name)
	if c.reported[at] {
		return // one position, once (a task in a loop or a role included twice is checked again)
	}
	c.reported[at] = true
	var candidates []string
	for n := range c.defined {
		candidates = append(candidates, n)
	}
	for n := range c.known {
		candidates = append(candidates, n)
	}
	if extra != "" {
		candidates = append(candidates, extra)
	}
	sort.Strings(candidates)
	var hint string
	if at, ok := c.later[r.Name]; ok && c.onCtl {
		hint = fmt.Sprintf("%q is set on hosts (line %d); before/after run once on the controller and see no host results", r.Name, at.Line)
	} else if ok {
		hint = fmt.Sprintf("%q is set by a task that runs later (line %d)", r.Name, at.Line)
	} else if factVar(r.Name) {
		hint = "a fact, and this play does not gather facts (gather_facts: false): remove that line, or run `setup:` before this task"
	} else if r.Name == "item" {
		hint = "`item` exists only in a task with `loop:`"
	} else if hint = diag.Suggest(r.Name, candidates); hint == "" {
		hint = fmt.Sprintf("define it in vars, pass -e %s=..., or give a default: {{ %s | default(...) }}", r.Name, r.Name)
	}
	src := c.src
	if src == nil {
		src = c.pb.src
	}
	c.errs = append(c.errs, diag.New(src, pos, hint, "undefined variable %q", r.Name))
}

// FailureVars are Ansible's variables of a rescue: section: the task that
// failed (name, action) and its result (msg, rc, ...).
var FailureVars = []string{"ansible_failed_task", "ansible_failed_result"}

// markRescue marks every task that runs in a rescue: section of list.
func markRescue(list []*Task, in map[*Task]bool) {
	for _, t := range list {
		if !t.IsBlock {
			continue
		}
		for _, r := range flattenTasks(t.Rescue) {
			in[r] = true
		}
		markRescue(t.Block, in)
		markRescue(t.Rescue, in)
		markRescue(t.Always, in)
	}
}

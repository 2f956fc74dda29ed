package playbooks

// Controller-side inputs known before the run touches a host: the local
// file a copy, template, script, release or unarchive task uploads. A run
// whose file is missing would stop at that task with the canary already
// stopped; ferry check and the runner (before its first connection) render
// each `src` with what is known then and refuse a missing one.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/internal/value"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/tasks"
)

// localSrcModules are the modules whose `src` is a path on the controller
// (unless remote_src says it is on the host).
var localSrcModules = map[string]bool{"copy": true, "template": true, "script": true, "release": true, "unarchive": true}

// hostTaskLists are the lists of a play that run on hosts, blocks opened.
func hostTaskLists(play *Play) []*Task {
	out := flattenTasks(play.HostTasks())
	out = append(out, flattenTasks(play.Rollback)...)
	return append(out, flattenTasks(play.Handlers)...)
}

// MissingLocalFiles reports every task whose controller-side `src`, rendered
// with each of the variable sets varsFor gives for its play (one per host,
// or one for all), names no file. A task whose src or `when` cannot be
// rendered yet (it reads a registered result, say) is left to run time, as
// is a task whose `when` is false or whose tags are not selected.
func (p *Playbook) MissingLocalFiles(varsFor func(*Play) []map[string]any, only, skip []string) error {
	var errs diag.List
	type key struct {
		t    *Task
		path string
	}
	seen := map[key]bool{}
	dir := filepath.Dir(p.Path)
	for _, play := range p.Plays {
		var list []*Task
		for _, t := range hostTaskLists(play) {
			if localSrcModules[t.Module] && Selected(append(append([]string{}, play.Tags...), t.Tags...), only, skip) {
				list = append(list, t)
			}
		}
		if len(list) == 0 {
			continue
		}
		set := map[string]bool{} // registered or set_fact'ed: known only once tasks ran
		for _, t := range play.AllTasks() {
			for _, n := range t.defines() {
				set[n] = true
			}
		}
		for _, vars := range varsFor(play) {
			for _, t := range list {
				for _, src := range t.localSources(vars, set) {
					local := tasks.LocalPathIn(t.srcDirs(dir), src.path)
					k := key{t, local}
					if seen[k] {
						continue
					}
					seen[k] = true
					if _, err := os.Stat(local); err == nil || !errors.Is(err, fs.ErrNotExist) {
						continue
					}
					pos, _ := t.posOf(src.arg)
					what := fmt.Sprintf("%q", src.path)
					if local != src.path {
						what += fmt.Sprintf(" (%s)", local)
					}
					errs = append(errs, diag.New(t.src, pos, "build or fetch it before the run, or fix the path: a relative one is from the playbook's directory (a role's files/ or templates/)",
						"%s: %s: %s does not exist on the controller", t.DisplayName(), src.arg, what))
				}
			}
		}
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Pos.Line < errs[j].Pos.Line })
	return errs.Err()
}

type localSource struct {
	arg  string // the argument it comes from: src or cmd
	path string
}

// localSources renders t's controller-side paths with vars (each loop item's
// when the task loops); none when they cannot be rendered yet, or read a
// name in set (a default would stand in for what a task sets at run time).
func (t *Task) localSources(vars map[string]any, set map[string]bool) []localSource {
	if vars == nil {
		return nil
	}
	vars, err := taskVars(t, vars)
	if err != nil {
		return nil
	}
	sets := []map[string]any{vars}
	if t.HasLoop {
		items, err := t.LoopItems(vars)
		if err != nil {
			return nil
		}
		name := "item"
		if t.LoopVar != "" {
			name = t.LoopVar
		}
		sets = sets[:0]
		for _, it := range items {
			sets = append(sets, Merge(vars, map[string]any{name: it}))
		}
	}
	var out []localSource
	for _, v := range sets {
		if ok, err := t.When.True(v); err != nil || !ok {
			continue
		}
		if s, ok := t.localSource(v, set); ok {
			out = append(out, s)
		}
	}
	return out
}

func (t *Task) localSource(vars map[string]any, set map[string]bool) (localSource, bool) {
	if r, ok := t.Args["remote_src"]; ok {
		rv, err := template.RenderValueAt(r, vars, "remote_src", t.posOf)
		if err != nil || value.Truthy(rv) {
			return localSource{}, false
		}
	}
	arg := "src"
	raw, ok := t.Args["src"]
	if !ok && t.Module == "script" {
		arg = "cmd"
		raw, ok = t.Args["cmd"]
	}
	if !ok {
		return localSource{}, false
	}
	if str, ok := raw.(string); ok && template.HasTemplate(str) {
		tm, err := template.CompileTemplateAt(str, diag.Pos{}, nil)
		if err != nil {
			return localSource{}, false
		}
		for _, r := range tm.Refs() {
			if set[r.Name] {
				return localSource{}, false
			}
		}
	}
	v, err := template.RenderValueAt(raw, vars, arg, t.posOf)
	if err != nil {
		return localSource{}, false
	}
	s, ok := v.(string)
	if !ok || s == "" {
		return localSource{}, false
	}
	if arg == "cmd" {
		words, err := shell.Split(s)
		if err != nil || len(words) == 0 {
			return localSource{}, false
		}
		s = words[0]
	}
	return localSource{arg: arg, path: s}, true
}

// CheckVars are the variable sets `ferry check` renders a play's
// controller-side paths with: one per host of the play when the inventory
// is known, else one from the play's vars and extra alone.
func CheckVars(inv *inventory.Inventory, extra map[string]any) func(*Play) []map[string]any {
	return func(play *Play) []map[string]any {
		if inv == nil {
			v, err := (&Scope{Play: play, Extra: extra}).Vars()
			if err != nil {
				return nil
			}
			return []map[string]any{v}
		}
		hosts, err := inv.Match(play.Hosts)
		if err != nil {
			return nil
		}
		var out []map[string]any
		for _, h := range hosts {
			gn := make([]any, len(h.Groups))
			for i, g := range h.Groups {
				gn[i] = g
			}
			b := map[string]any{"host": h.Vars, "inventory_hostname": h.Name, "group_names": gn}
			v, err := (&Scope{Inventory: h.Vars, Play: play, Extra: extra, Builtins: b}).Vars()
			if err == nil {
				out = append(out, v)
			}
		}
		return out
	}
}

package playbooks

// Running Ansible's structure: blocks (rescue, always), handlers notified by
// changed tasks (run at the end of the host's tasks, or at meta:
// flush_handlers), run_once, delegate_to, task vars and loop_var.

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/tasks"
)

// flowState is the runner's memory for these features.
type flowState struct {
	mu       sync.Mutex
	notified map[*hostRun][]string // handler names notified and not yet run
	ended    map[*hostRun]bool     // meta: end_host / end_play
	once     map[onceKey]*onceRun
	local    *tasks.LocalConn
	conns    map[string]tasks.Conn // delegate_to hosts outside the play
}

type onceKey struct {
	t     *Task
	batch int
}

type onceRun struct {
	done   chan struct{}
	ok     bool
	msg    string
	host   string
	result any
}

func (r *Runner) flowState() *flowState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.flow == nil {
		r.flow = &flowState{notified: map[*hostRun][]string{}, ended: map[*hostRun]bool{}, once: map[onceKey]*onceRun{}, conns: map[string]tasks.Conn{}}
	}
	return r.flow
}

// runEntry runs one entry of a host's task list: a task, a block or a meta task.
func (r *Runner) runEntry(ctx context.Context, tr taskRun) (bool, string) {
	switch {
	case tr.t.Meta != "":
		return r.runMeta(ctx, tr)
	case tr.t.IsBlock:
		return r.runBlock(ctx, tr)
	}
	return r.runTask(ctx, tr)
}

func (r *Runner) hostEnded(hr *hostRun) bool {
	fs := r.flowState()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.ended[hr]
}

func (r *Runner) runMeta(ctx context.Context, tr taskRun) (bool, string) {
	play, hr, t := tr.play, tr.hr, tr.t
	vars, err := r.vars(play, hr, tr.batch, "running")
	if err != nil {
		return false, err.Error()
	}
	if ok, err := t.When.True(vars); err != nil {
		return false, err.Error()
	} else if !ok {
		return true, ""
	}
	switch t.Meta {
	case "flush_handlers":
		return r.flushHandlers(ctx, play, hr, tr.batch)
	case "end_host", "end_play":
		fs := r.flowState()
		fs.mu.Lock()
		fs.ended[hr] = true
		fs.mu.Unlock()
	}
	return true, ""
}

// runBlock runs block; when one of its tasks fails, rescue; then always.
func (r *Runner) runBlock(ctx context.Context, tr taskRun) (bool, string) {
	hr, t := tr.hr, tr.t
	run := func(list []*Task) (bool, string) {
		for _, c := range list {
			if ctx.Err() != nil || r.hostEnded(hr) {
				return ctx.Err() == nil, "interrupted"
			}
			if ok, msg := r.runEntry(ctx, tr.of(c, tr.idx)); !ok {
				return false, fmt.Sprintf("%s: %s", c.DisplayName(), msg)
			}
		}
		return true, ""
	}
	if t.HasLoop {
		return r.runIncludeLoop(ctx, tr, run)
	}
	ok, msg := run(t.Block)
	if !ok && len(t.Rescue) > 0 {
		hr.recap.Failed-- // rescued, as Ansible counts it
		hr.recap.OK++
		// Ansible's view of what failed exists during the rescue only.
		hr.facts[FailureVars[0]], hr.facts[FailureVars[1]] = hr.failedTask, hr.failedResult
		ok, msg = run(t.Rescue)
		for _, k := range FailureVars {
			delete(hr.facts, k)
		}
	}
	if len(t.Always) > 0 {
		if aok, amsg := run(t.Always); !aok && ok {
			ok, msg = false, amsg
		}
	}
	return ok, msg
}

// notify records the handlers a changed task notifies.
func (r *Runner) notify(hr *hostRun, t *Task, st events.Status) {
	if hr == nil || len(t.Notify) == 0 || st != events.StatusChanged {
		return
	}
	fs := r.flowState()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, n := range t.Notify {
		if !slices.Contains(fs.notified[hr], n) {
			fs.notified[hr] = append(fs.notified[hr], n)
		}
	}
}

// flushHandlers runs the notified handlers in the order the play lists
// them; a handler may notify another, which then runs in the same flush.
func (r *Runner) flushHandlers(ctx context.Context, play *Play, hr *hostRun, batch int) (bool, string) {
	fs := r.flowState()
	ran := map[*Task]bool{}
	for pass := 0; pass <= len(play.Handlers); pass++ {
		fs.mu.Lock()
		pending := fs.notified[hr]
		fs.notified[hr] = nil
		fs.mu.Unlock()
		if len(pending) == 0 {
			return true, ""
		}
		for i, h := range play.Handlers {
			if ran[h] || !handlerMatches(h, pending) {
				continue
			}
			ran[h] = true
			if ok, msg := r.runEntry(ctx, taskRun{play: play, hr: hr, t: h, idx: len(play.HostTasks()) + i, batch: batch}); !ok {
				return false, fmt.Sprintf("handler %s: %s", h.DisplayName(), msg)
			}
		}
	}
	return true, ""
}

func handlerMatches(h *Task, names []string) bool {
	if slices.Contains(names, h.Name) {
		return true
	}
	for _, l := range h.Listen {
		if slices.Contains(names, l) {
			return true
		}
	}
	return false
}

// runOnce runs t on the first host of the batch that reaches it; the others
// wait for it and take its registered result, as with Ansible's run_once.
func (r *Runner) runOnce(ctx context.Context, tr taskRun) (bool, string) {
	hr, t, idx, batch := tr.hr, tr.t, tr.idx, tr.batch
	fs := r.flowState()
	key := onceKey{t, batch}
	fs.mu.Lock()
	o, started := fs.once[key]
	if !started {
		o = &onceRun{done: make(chan struct{}), host: hr.h.Name}
		fs.once[key] = o
	}
	fs.mu.Unlock()
	if !started {
		o.ok, o.msg = r.runTaskOn(ctx, tr)
		if t.Register != "" {
			o.result = hr.facts[t.Register]
		}
		close(o.done)
		return o.ok, o.msg
	}
	select {
	case <-o.done:
	case <-ctx.Done():
		return false, "interrupted while waiting for the run_once task on " + o.host
	}
	if t.Register != "" && o.result != nil {
		hr.facts[t.Register] = o.result
	}
	name := t.DisplayName()
	r.emit(events.Event{Kind: events.TaskStart, Host: hr.h.Name, Task: name, TaskIndex: idx, Module: t.Module, Batch: batch})
	st := events.StatusSkipped
	if !o.ok {
		st = events.StatusFailed
	}
	r.emit(events.Event{Kind: events.TaskEnd, Host: hr.h.Name, Task: name, TaskIndex: idx, Module: t.Module, Batch: batch, Status: st,
		Msg: "run_once: ran on " + o.host})
	if !o.ok {
		hr.recap.Failed++
	} else {
		hr.recap.Skipped++
	}
	return o.ok, o.msg
}

// taskVars adds the task's own vars (rendered) to vars.
func taskVars(t *Task, vars map[string]any) (map[string]any, error) {
	if len(t.Vars) == 0 && t.Dir == "" {
		return vars, nil
	}
	out := Merge(vars, nil)
	if t.Dir != "" { // a role's task
		out["role_path"] = t.Dir
		out["role_name"] = filepath.Base(t.Dir)
	}
	for _, k := range slices.Sorted(maps.Keys(t.Vars)) {
		v, err := template.RenderValueAt(t.Vars[k], out, "\x00vars."+k, t.posOf)
		if err != nil {
			return nil, fmt.Errorf("vars: %s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// delegate points th at the host the task is delegated to: the controller
// for localhost, else that inventory host's own connection. Variables stay
// the current host's, as in Ansible.
func (r *Runner) delegate(ctx context.Context, t *Task, vars map[string]any, th *tasks.Host) error {
	v, err := template.RenderValueAt(t.DelegateTo, vars, "\x00delegate_to", t.posOf)
	if err != nil {
		return err
	}
	target := template.Text(v)
	fs := r.flowState()
	if isLocalhost(target) {
		fs.mu.Lock()
		if fs.local == nil {
			fs.local = &tasks.LocalConn{Environ: template.LocalEnviron(r.opts.Environ)}
		}
		th.Conn = fs.local
		fs.mu.Unlock()
		return nil
	}
	r.mu.Lock()
	hr := r.hosts[target]
	r.mu.Unlock()
	if hr != nil && hr.conn != nil {
		th.Conn = hr.conn
		return nil
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if c := fs.conns[target]; c != nil {
		th.Conn = c
		return nil
	}
	var h *inventory.Host
	if r.opts.Inventory != nil {
		h, _ = r.opts.Inventory.Host(target)
	}
	if h == nil {
		return fmt.Errorf("delegate_to: %q is not an inventory host (use localhost for the controller)", target)
	}
	if r.opts.Connector == nil {
		return fmt.Errorf("delegate_to %s: no connector", target)
	}
	c, err := r.opts.Connector.Connect(ctx, h)
	if err != nil {
		return fmt.Errorf("delegate_to %s: %w", target, err)
	}
	fs.conns[target] = c
	th.Conn = c
	return nil
}

// runIncludeLoop runs an include_tasks/include_role block once per item of
// its loop, with the loop variable set for its tasks.
func (r *Runner) runIncludeLoop(ctx context.Context, tr taskRun, run func([]*Task) (bool, string)) (bool, string) {
	hr, t := tr.hr, tr.t
	if hr == nil {
		return false, t.Include + " with a loop runs on hosts, not in before/after"
	}
	vars, err := r.vars(tr.play, hr, tr.batch, "running")
	if err == nil {
		vars, err = taskVars(t, vars)
	}
	if err != nil {
		return false, err.Error()
	}
	items, err := t.LoopItems(vars)
	if err != nil {
		return false, err.Error()
	}
	lv := t.LoopVar
	if lv == "" {
		lv = "item"
	}
	prev, had := hr.facts[lv]
	defer func() {
		if had {
			hr.facts[lv] = prev
		} else {
			delete(hr.facts, lv)
		}
	}()
	for _, item := range items {
		hr.facts[lv] = item
		if ok, msg := run(t.Block); !ok {
			return false, fmt.Sprintf("item %s: %s", template.Text(item), msg)
		}
	}
	return true, ""
}

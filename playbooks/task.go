// Running a host's task list and its tasks: retries, until, rollback.

package playbooks

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/internal/value"
	"github.com/ferrydeploy/ferry/ssh"
	"github.com/ferrydeploy/ferry/tasks"
)

// runHost runs the host's task list; on failure or interrupt it runs the
// play's rollback. It returns true when the host ended healthy.
func (r *Runner) runHost(ctx, hard context.Context, play *Play, hr *hostRun, batch int) bool {
	start := r.opts.Now()
	list := play.HostTasks()
	names := make([]string, len(list))
	for i, t := range list {
		names[i] = t.DisplayName()
	}
	r.emit(events.Event{Kind: events.HostStart, Host: hr.h.Name, Batch: batch, Tasks: names})
	failMsg := ""
	interrupted := false
	for i, t := range list {
		// After an interrupt a host in flight goes on with its task list
		// until the grace period ends (hard); one that has not started
		// yet is left alone.
		if hard.Err() != nil || (!hr.touched && ctx.Err() != nil) {
			interrupted = true
			break
		}
		if err := r.reconnect(hard, hr, false); err != nil {
			failMsg = fmt.Sprintf("%s: %v", t.DisplayName(), err)
			break
		}
		hr.touched = true
		ok, msg := r.runEntry(hard, taskRun{play: play, hr: hr, t: t, idx: i, batch: batch})
		if !ok {
			failMsg = fmt.Sprintf("%s: %s", t.DisplayName(), msg)
			interrupted = hard.Err() != nil
			break
		}
		if r.hostEnded(hr) {
			break
		}
	}
	if failMsg == "" && !interrupted && len(play.Handlers) > 0 {
		if ok, msg := r.flushHandlers(hard, play, hr, batch); !ok {
			failMsg = msg
		}
	}
	status := events.StatusOK
	switch {
	case failMsg == "" && !interrupted:
		r.hostDone(hard, play, hr, batch)
		hr.finished, hr.finishedAt = true, r.opts.Now()
		if hr.recap.Changed > 0 {
			status = events.StatusChanged
		}
		r.emit(events.Event{Kind: events.HostEnd, Host: hr.h.Name, Batch: batch, Status: status, Duration: r.opts.Now().Sub(start)})
		return true
	case interrupted && !hr.touched:
		return true // never started: untouched, not failed
	}
	hr.failed = true
	if interrupted {
		failMsg = "interrupted: the grace period ended before its task list did"
	}
	rbCtx, cancel := r.cleanup(ctx)
	defer cancel()
	rolled := r.rollback(rbCtx, play, hr, batch)
	status = events.StatusFailed
	if rolled {
		status = events.StatusRolledBack
		failMsg += "; rolled back"
	} else if len(play.Rollback) > 0 {
		failMsg += "; ROLLBACK FAILED"
	}
	if left := r.leftState(hr); left != events.LeftInService {
		failMsg += "; left " + left
	}
	if interrupted {
		status = events.StatusInterrupted
		if rolled {
			status = events.StatusRolledBack
		}
	}
	r.emit(events.Event{Kind: events.HostEnd, Host: hr.h.Name, Batch: batch, Status: status, Msg: failMsg, Duration: r.opts.Now().Sub(start)})
	return false
}

// rollbackTries bounds the runs of one rollback task whose connection
// dropped under it.
const rollbackTries = 3

// linkDropped reports whether conn is closed, giving the connection a
// moment (bounded) to notice a drop that a task has just run into.
func linkDropped(ctx context.Context, conn tasks.Conn) bool {
	c, ok := conn.(interface{ Closed() bool })
	if !ok {
		return false
	}
	for range 20 {
		if c.Closed() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

// rollback runs the play's rollback tasks on hr; every task is attempted
// even after one fails, since a partial restore beats stopping halfway.
func (r *Runner) rollback(ctx context.Context, play *Play, hr *hostRun, batch int) bool {
	if len(play.Rollback) == 0 {
		return false
	}
	ok := true
	for i, t := range play.Rollback {
		if ctx.Err() != nil {
			return false
		}
		for try := 1; ; try++ {
			// A rollback gets reconnection attempts for as long as its budget
			// lasts: a bastion back within the grace period still restores the host.
			if err := r.reconnect(ctx, hr, true); err != nil {
				r.emit(events.Event{Kind: events.Warning, Host: hr.h.Name, Msg: "rollback: " + err.Error()})
				return false
			}
			if good, _ := r.runTask(ctx, taskRun{play: play, hr: hr, t: t, idx: i, batch: batch, rollback: true}); good {
				break
			}
			// A task that failed because the link dropped under it (a drop
			// noticed only when the task tried it) is run again on a new
			// connection: rollback tasks restore a state, so running one
			// twice is safe, and losing the race must not leave the host down.
			if try >= rollbackTries || !linkDropped(ctx, hr.conn) {
				ok = false
				break
			}
		}
	}
	hr.recap.RolledBack = ok
	if ok {
		hr.unknown = "" // the rollback ran whole: the host is what it restored
	}
	return ok
}

// controllerTasks runs before/after tasks once, on the controller.
func (r *Runner) controllerTasks(ctx, hard context.Context, play *Play, list []*Task, status string) bool {
	ok := true
	for i, t := range list {
		if ctx.Err() != nil {
			return false
		}
		good, _ := r.runTaskOn(hard, taskRun{play: play, t: t, idx: i, status: status})
		if !good {
			ok = false
			if status == "running" {
				return false // before: stop at the first failure
			}
		}
	}
	return ok
}

// taskRun is one task of a play on one host, and where it stands: its
// index in the host's list, its batch, whether it runs as part of a
// rollback (or a resumed run's restore), and the run.status its
// templates see ("" is "running").
type taskRun struct {
	play     *Play
	hr       *hostRun // nil: the controller (before/after, a restore with no host)
	t        *Task
	idx      int
	batch    int
	rollback bool
	status   string
}

// of is the same place in the run for another task: a block's child keeps
// the block's index.
func (tr taskRun) of(t *Task, idx int) taskRun {
	tr.t, tr.idx = t, idx
	return tr
}

func (tr taskRun) runStatus() string {
	if tr.status == "" {
		return "running"
	}
	return tr.status
}

func (r *Runner) runTask(ctx context.Context, tr taskRun) (bool, string) {
	if tr.t.RunOnce && tr.hr != nil && !tr.rollback {
		return r.runOnce(ctx, tr)
	}
	return r.runTaskOn(ctx, tr)
}

// runTaskOn runs tr.t on tr.hr (nil: the controller). It returns whether the
// host may go on, and a one-line reason when not.
func (r *Runner) runTaskOn(ctx context.Context, tr taskRun) (bool, string) {
	play, hr, t, idx, batch, rollback := tr.play, tr.hr, tr.t, tr.idx, tr.batch, tr.rollback
	hostName := ""
	if hr != nil {
		hostName = hr.h.Name
	}
	start := r.opts.Now()
	ev := events.Event{Host: hostName, Task: t.DisplayName(), TaskIndex: idx, Module: t.Module, Rollback: rollback, Batch: batch,
		Stage: hr != nil && hr.staging}
	var result any // the task's result, once it ran: ansible_failed_result when it fails
	end := func(st events.Status, msg string) {
		e := ev
		e.Kind, e.Status, e.Msg, e.Duration = events.TaskEnd, st, msg, r.opts.Now().Sub(start)
		if t.NoLog && st != events.StatusSkipped {
			e.Msg = noLogMsg
		}
		r.emit(e)
		if hr != nil && st == events.StatusFailed {
			hr.failedTask, hr.failedResult = failure(t, e.Task, e.Msg, result)
		}
		if hr != nil {
			switch st {
			case events.StatusOK:
				hr.recap.OK++
			case events.StatusChanged:
				hr.recap.OK++
				hr.recap.Changed++
			case events.StatusFailed:
				hr.recap.Failed++
			case events.StatusSkipped:
				hr.recap.Skipped++
			}
		}
	}
	if !rollback && !Selected(append(append([]string{}, play.Tags...), t.Tags...), r.opts.Tags, r.opts.SkipTags) {
		return true, ""
	}
	vars, err := r.vars(play, hr, batch, tr.runStatus())
	if err == nil {
		vars, err = taskVars(t, vars)
	}
	if err != nil {
		r.emit(withKind(ev, events.TaskStart))
		end(events.StatusFailed, err.Error())
		return false, err.Error()
	}
	if name, err := t.RenderName(vars); err == nil && name != "" {
		ev.Task = name
	}
	r.emit(withKind(ev, events.TaskStart))
	if ok, err := t.When.True(vars); err != nil {
		end(events.StatusFailed, err.Error())
		return false, err.Error()
	} else if !ok {
		end(events.StatusSkipped, "when: condition false")
		return true, ""
	}
	items, err := t.LoopItems(vars)
	if err != nil {
		end(events.StatusFailed, err.Error())
		return false, err.Error()
	}
	var out outcome
	if !t.HasLoop {
		out = r.attempts(ctx, tr, vars, ev)
	} else {
		results := make([]any, 0, len(items))
		out.status = events.StatusOK
		for _, item := range items {
			loopVar := "item"
			if t.LoopVar != "" {
				loopVar = t.LoopVar
			}
			iv := Merge(vars, map[string]any{loopVar: item})
			o := r.attempts(ctx, tr, iv, ev)
			results = append(results, o.result)
			for k, v := range o.facts {
				if out.facts == nil {
					out.facts = map[string]any{}
				}
				out.facts[k] = v // set_fact in a loop: the last item wins, as in Ansible
			}
			if o.status == events.StatusChanged && out.status == events.StatusOK {
				out.status = events.StatusChanged
			}
			if o.status == events.StatusFailed {
				out.status, out.msg = events.StatusFailed, fmt.Sprintf("item %s: %s", template.Text(item), o.msg)
				break
			}
			out.msg = o.msg
		}
		out.result = map[string]any{"results": results, "changed": out.status == events.StatusChanged, "failed": out.status == events.StatusFailed}
		if len(items) == 0 {
			out.status = events.StatusSkipped
			out.msg = "loop: no items"
		}
	}
	if hr != nil && t.Register != "" {
		hr.facts[t.Register] = out.result
	}
	r.notify(hr, t, out.status)
	if hr != nil {
		for k, v := range out.facts {
			hr.facts[k] = v
		}
	}
	result = out.result
	if out.status == events.StatusFailed && t.IgnoreErrors {
		end(events.StatusFailed, out.msg+" (ignored)")
		if hr != nil {
			hr.recap.Failed-- // ignored failures do not fail the host
			hr.recap.OK++
		}
		return true, ""
	}
	end(out.status, out.msg)
	if out.status == events.StatusFailed {
		if t.NoLog {
			// The reason goes on into the host's failure line (HostEnd).
			return false, noLogMsg
		}
		return false, out.msg
	}
	return true, ""
}

// noLogMsg replaces what a no_log task would have said in any event.
const noLogMsg = "(output hidden by no_log)"

func withKind(e events.Event, k events.Kind) events.Event {
	e.Kind = k
	return e
}

type outcome struct {
	status events.Status
	msg    string
	result map[string]any
	facts  map[string]any
}

// attempts runs the module with retries/delay/until, changed_when and failed_when.
func (r *Runner) attempts(ctx context.Context, tr taskRun, vars map[string]any, ev events.Event) outcome {
	hr, t := tr.hr, tr.t
	retries, delay, err := t.retryPolicy(vars)
	if err != nil {
		return outcome{status: events.StatusFailed, msg: err.Error()}
	}
	tries := 1
	if retries > 0 {
		tries = 1 + retries
	} else if len(t.Until) > 0 {
		tries = 4 // Ansible's default: 3 retries
	}
	if delay == 0 && tries > 1 {
		delay = 5 * time.Second
	}
	var o outcome
	for attempt := 1; attempt <= tries; attempt++ {
		o = r.callModule(ctx, tr, vars, ev)
		done := o.status != events.StatusFailed
		if len(t.Until) > 0 {
			uv := Merge(vars, map[string]any{"result": o.result})
			if t.Register != "" {
				uv[t.Register] = o.result
			}
			ok, err := t.Until.True(uv)
			if err != nil {
				return outcome{status: events.StatusFailed, msg: err.Error(), result: o.result}
			}
			done = ok
			if !ok && o.status != events.StatusFailed {
				o.status, o.msg = events.StatusFailed, fmt.Sprintf("until: condition still false after %d attempts", attempt)
			}
		}
		if done || attempt == tries || ctx.Err() != nil {
			break
		}
		if hr != nil {
			why := o.msg
			if t.NoLog {
				why = noLogMsg
			}
			r.emit(events.Event{Kind: events.TaskOutput, Host: hr.h.Name, Task: ev.Task, TaskIndex: ev.TaskIndex,
				Line: fmt.Sprintf("attempt %d/%d failed (%s); retrying in %s", attempt, tries, why, delay)})
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
	return o
}

// moduleCall is one call of a task's module, built for one host: the
// module, its rendered arguments and what it sees of the host.
type moduleCall struct {
	mod        tasks.Module
	args       map[string]any
	host       *tasks.Host
	becomeUser string
}

// callModule runs the task's module a single time (one attempt of
// attempts) in four steps: build the call, journal its intent, invoke it,
// judge its result with changed_when/failed_when.
func (r *Runner) callModule(ctx context.Context, tr taskRun, vars map[string]any, ev events.Event) outcome {
	c, err := r.buildCall(ctx, tr, vars, ev)
	if err == nil {
		err = r.journalCall(tr.hr, c, vars)
	}
	if err != nil {
		return outcome{status: events.StatusFailed, msg: err.Error()}
	}
	res, err := r.invoke(ctx, tr, c, vars, ev)
	return judge(tr.t, vars, res, err)
}

// buildCall finds the module, renders its arguments and environment, and
// says what it runs against: the host's connection, the controller, or
// the host the task is delegated to.
func (r *Runner) buildCall(ctx context.Context, tr taskRun, vars map[string]any, ev events.Event) (*moduleCall, error) {
	play, hr, t := tr.play, tr.hr, tr.t
	mod, ok := tasks.Lookup(t.Module)
	if !ok {
		return nil, fmt.Errorf("unknown module %q", t.Module)
	}
	args, err := t.RenderArgs(vars)
	if err != nil {
		return nil, err
	}
	args = dropOmitted(args)
	env := map[string]string{}
	for _, layer := range []map[string]any{play.Environment, t.Environment} {
		if len(layer) == 0 {
			continue
		}
		rendered, err := template.RenderValue(layer, vars)
		if err != nil {
			return nil, errors.New("environment: " + err.Error())
		}
		m, _ := rendered.(map[string]any)
		if e, ok := m[envExprKey]; ok {
			whole, ok := e.(map[string]any)
			if !ok && e != nil {
				return nil, fmt.Errorf("environment: want a mapping, not %s", template.Describe(e))
			}
			for k, v := range whole {
				if !ssh.ValidEnvName(k) {
					return nil, fmt.Errorf("environment: %q is not a variable name", k)
				}
				env[k] = template.Text(v)
			}
		}
		for k, v := range m {
			if k != envExprKey {
				env[k] = template.Text(v)
			}
		}
	}
	become, becomeUser := play.BecomeFor(t)
	th := &tasks.Host{
		Vars:       vars,
		Dir:        t.srcDir(filepath.Dir(r.pb.Path)),
		Fallback:   t.srcDirs(filepath.Dir(r.pb.Path))[1:],
		Check:      r.opts.Check && !readOnly(t),
		Become:     tasks.RunOptions{Become: become || becomeUser != "", BecomeUser: becomeUser, BecomePass: r.opts.BecomePass, Env: env},
		Controller: &tasks.Controller{Approve: r.approver(), AWS: r.opts.AWS},
		Timeout:    t.Timeout,
		Rollback:   ev.Rollback,
		Eval: func(src string) (any, error) {
			e, err := template.CompileExpr(src, t.Pos)
			if err != nil {
				return nil, err
			}
			return e.Eval(vars)
		},
		Render: func(text string) (string, error) {
			return template.RenderTemplateFile(text, t.Pos, vars)
		},
	}
	if hr != nil {
		th.Name, th.Conn, th.State = hr.h.Name, hr.conn, hr.state
		if !t.NoLog {
			th.Output = func(line string) {
				r.emit(events.Event{Kind: events.TaskOutput, Host: hr.h.Name, Task: ev.Task, TaskIndex: ev.TaskIndex, Rollback: ev.Rollback, Line: line})
			}
		}
	} else {
		th.Name, th.State = "controller", map[string]any{}
	}
	if th.Output == nil {
		th.Output = func(string) {}
	}
	if t.DelegateTo != "" {
		if err := r.delegate(ctx, t, vars, th); err != nil {
			return nil, err
		}
	}
	if !mod.Spec().Controller && th.Conn == nil {
		return nil, fmt.Errorf("module %s runs on hosts; it cannot be used in before/after", t.Module)
	}
	return &moduleCall{mod: mod, args: args, host: th, becomeUser: becomeUser}, nil
}

// journalCall gives a call that changes the host its journal, and records
// the change it opens (its intent) before it runs; --check journals nothing.
func (r *Runner) journalCall(hr *hostRun, c *moduleCall, vars map[string]any) error {
	if c.host.Check {
		return nil
	}
	c.host.Journal = r.moduleJournal(hr, c.mod.Spec(), c.args, vars)
	if ch, ok := intentOf(c.mod.Spec(), c.args, vars, c.host.Become.Become, c.becomeUser); ok {
		return r.intent(hr, ch)
	}
	return nil
}

// invoke runs the call under the task's timeout and settles its journal
// entry; a dropped connection makes the host's state unknown. The error
// it returns reads as the task's failure.
func (r *Runner) invoke(ctx context.Context, tr taskRun, c *moduleCall, vars map[string]any, ev events.Event) (tasks.Outcome, error) {
	hr, t := tr.hr, tr.t
	tctx := ctx
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeout(ctx, t.Timeout)
		defer cancel()
	}
	res, err := tasks.Call(tctx, c.mod, c.host, c.args)
	if !c.host.Check {
		r.settle(hr, c.mod.Spec(), c.args, vars, err != nil || res.Failed, err == nil && res.Untouched)
	}
	// A lost connection makes the host's state unknown (it may have
	// crashed); a task whose session never opened keeps the reason an
	// earlier task gave, since it did nothing on the host itself.
	if hr != nil && connectionLost(err, hr.conn) && !(ssh.NotStarted(err) && hr.unknown != "") {
		// Whatever the task did on the host, nobody saw it end.
		hr.unknown = "connection lost during " + ev.Task
		if !strings.Contains(err.Error(), "outcome is unknown") {
			err = fmt.Errorf("%w: outcome unknown", err)
		}
	}
	if err == nil && !res.Failed && len(res.Inventory) > 0 {
		r.mu.Lock()
		r.invChanges = append(r.invChanges, res.Inventory...)
		r.mu.Unlock()
	}
	if errors.Is(err, context.DeadlineExceeded) && t.Timeout > 0 && tctx.Err() != nil {
		err = fmt.Errorf("timed out after %s", t.Timeout)
	}
	return res, err
}

// judge turns what the module returned into the task's outcome, with the
// task's changed_when and failed_when applied (not to a call that erred).
func judge(t *Task, vars map[string]any, res tasks.Outcome, err error) outcome {
	o := outcome{result: res.Result, facts: res.Facts, msg: res.Msg}
	if o.result == nil {
		o.result = map[string]any{}
	}
	switch {
	case err != nil:
		o.status = events.StatusFailed
		o.msg = err.Error()
	case res.Failed:
		o.status = events.StatusFailed
	case res.Skipped:
		o.status = events.StatusSkipped
	case res.Changed:
		o.status = events.StatusChanged
	default:
		o.status = events.StatusOK
	}
	o.result["changed"] = o.status == events.StatusChanged
	o.result["failed"] = o.status == events.StatusFailed
	o.result["skipped"] = o.status == events.StatusSkipped
	if o.msg != "" {
		o.result["msg"] = o.msg
	}
	if o.status == events.StatusSkipped {
		return o
	}
	cv := Merge(vars, map[string]any{"result": o.result})
	if t.Register != "" {
		cv[t.Register] = o.result
	}
	if len(t.ChangedWhen) > 0 && err == nil {
		ch, cerr := t.ChangedWhen.True(cv)
		if cerr != nil {
			return outcome{status: events.StatusFailed, msg: cerr.Error(), result: o.result}
		}
		if o.status != events.StatusFailed {
			o.status = events.StatusOK
			if ch {
				o.status = events.StatusChanged
			}
		}
	}
	if len(t.FailedWhen) > 0 && err == nil {
		f, ferr := t.FailedWhen.True(cv)
		if ferr != nil {
			return outcome{status: events.StatusFailed, msg: ferr.Error(), result: o.result}
		}
		if f {
			o.status = events.StatusFailed
			if o.msg == "" {
				o.msg = "failed_when: condition true"
			}
		} else if o.status == events.StatusFailed {
			o.status = events.StatusOK
		}
	}
	return o
}

// readOnly reports whether t declares itself a probe (`changed_when: false`):
// such a task changes nothing, so it runs even under --check, and the tasks
// that depend on what it read can say truthfully what they would do.
func readOnly(t *Task) bool {
	return len(t.ChangedWhen) == 1 && strings.TrimSpace(t.ChangedWhen[0].Src) == "false"
}

// failure is what a rescue: section sees of a failed task, as Ansible's
// ansible_failed_task and ansible_failed_result (no_log hides the result).
func failure(t *Task, name, msg string, result any) (task, res map[string]any) {
	task = map[string]any{"name": name, "action": t.Module}
	res = map[string]any{}
	if m, ok := result.(map[string]any); ok && !t.NoLog {
		for k, v := range m {
			res[k] = v
		}
	}
	if t.NoLog {
		res["censored"] = noLogMsg
	}
	res["failed"] = true
	if _, ok := res["msg"]; !ok || t.NoLog {
		res["msg"] = msg
	}
	return task, res
}

// retryPolicy is the task's retries and delay, rendered when written as {{ }}.
func (t *Task) retryPolicy(vars map[string]any) (int, time.Duration, error) {
	retries, delay := t.Retries, t.Delay
	if t.retriesTmpl != nil {
		s, err := t.retriesTmpl.RenderString(vars)
		if err != nil {
			return 0, 0, fmt.Errorf("retries: %w", err)
		}
		n, ok := value.Int(s)
		if !ok || n < 0 {
			return 0, 0, fmt.Errorf("retries: %q is not a whole number of 0 or more", s)
		}
		retries = n
	}
	if t.delayTmpl != nil {
		s, err := t.delayTmpl.RenderString(vars)
		if err != nil {
			return 0, 0, fmt.Errorf("delay: %w", err)
		}
		d, err := value.Duration(s)
		if err != nil {
			return 0, 0, fmt.Errorf("delay: %w", err)
		}
		delay = d
	}
	return retries, delay, nil
}

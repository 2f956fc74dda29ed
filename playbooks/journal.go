package playbooks

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/ssh"
	"github.com/ferrydeploy/ferry/tasks"
)

// The journal: before a task makes a change that must be undone if the run
// dies (drain a host, stop a unit, enter standby, suspend scaling), the
// runner writes an Intent event naming the change and how to undo it; the
// record syncs it to disk before the task goes on. When a later task undoes
// it (register, start, exit standby, resume), an Undone event follows. The
// changes still open at the end are what the run left each host as, and
// what `ferry run --resume` restores.

// openChange is a journaled change not yet undone.
type openChange struct {
	key  string // events.Event.Change
	what string // what it leaves, for the recap: "out of load balancer"
	undo events.Undo
}

// intentOf returns the change a task of the module spec, with these
// rendered arguments, is about to make, when it must be undone if the run
// dies. vars are the task's variables (controller sections: the play's AWS
// settings). The undo of a host module runs with the task's become.
func intentOf(spec tasks.Spec, args, vars map[string]any, become bool, becomeUser string) (openChange, bool) {
	if spec.Leaves == nil || spec.Undo != "" {
		return openChange{}, false // a module with Undo journals its own change (moduleJournal)
	}
	c, ok := spec.Leaves(args, vars)
	if !ok {
		return openChange{}, false
	}
	oc := changeOf(c)
	if !spec.Controller {
		oc.undo.Become, oc.undo.BecomeUser = become, becomeUser
	}
	return oc, true
}

func changeOf(c tasks.Change) openChange {
	return openChange{key: c.Key, what: c.What, undo: events.Undo{Module: c.Module, Args: c.Args}}
}

// journal is the open changes of one host (or of the controller).
type journal struct {
	open []openChange // in the order made
}

func (j *journal) add(c openChange) {
	for i, o := range j.open {
		if o.key == c.key {
			j.open[i] = c // the same change again (a retried drain): the newest undo wins
			return
		}
	}
	j.open = append(j.open, c)
}

func (j *journal) remove(key string) bool {
	for i, o := range j.open {
		if o.key == key {
			j.open = append(j.open[:i], j.open[i+1:]...)
			return true
		}
	}
	return false
}

func (j *journal) has(key string) bool {
	for _, o := range j.open {
		if o.key == key {
			return true
		}
	}
	return false
}

// left says what the open changes leave the host as: "out of load
// balancer, unit app stopped", or "" when nothing is open.
func (j *journal) left() string {
	whats := make([]string, 0, len(j.open))
	for _, o := range j.open {
		whats = append(whats, o.what)
	}
	sort.Strings(whats)
	return strings.Join(whats, ", ")
}

// intent journals c for hr (nil: the controller) and returns an error when
// the record could not be written: then the change must not be made.
func (r *Runner) intent(hr *hostRun, c openChange) error {
	name := ""
	j := &r.ctlJournal
	if hr != nil {
		name, j = hr.h.Name, &hr.journal
	}
	undo := c.undo
	r.mu.Lock()
	if hr != nil && len(j.open) == 0 && hr.outSince.IsZero() {
		hr.outSince = r.opts.Now()
	}
	j.add(c)
	r.mu.Unlock()
	r.emit(events.Event{Kind: events.Intent, Host: name, Change: c.key, Msg: c.what, Undo: &undo})
	if r.opts.JournalErr != nil {
		if err := r.opts.JournalErr(); err != nil {
			return fmt.Errorf("journal: %w; not making a change the run could not undo after a crash", err)
		}
	}
	return nil
}

// undone closes the change key of hr (nil: the controller), if open.
func (r *Runner) undone(hr *hostRun, key string) {
	name := ""
	j := &r.ctlJournal
	if hr != nil {
		name, j = hr.h.Name, &hr.journal
	}
	r.mu.Lock()
	ok := j.remove(key)
	if ok && hr != nil && len(j.open) == 0 && !hr.outSince.IsZero() {
		hr.outFor += r.opts.Now().Sub(hr.outSince)
		hr.outSince = time.Time{}
	}
	r.mu.Unlock()
	if ok {
		r.emit(events.Event{Kind: events.Undone, Host: name, Change: key})
	}
}

// moduleJournal is the Host.Journal given to modules: a module with Undo
// (elb) journals the change it is about to make, with what it writes under
// its State key, which the undo restores first.
func (r *Runner) moduleJournal(hr *hostRun, spec tasks.Spec, args, vars map[string]any) func(key string, data any) error {
	return func(key string, data any) error {
		if spec.Undo == "" || key != spec.Undo || spec.Leaves == nil {
			return fmt.Errorf("journal: unknown change %q", key)
		}
		c, ok := spec.Leaves(args, vars)
		if !ok {
			return fmt.Errorf("journal: unknown change %q", key)
		}
		oc := changeOf(c)
		oc.undo.State = map[string]any{key: data}
		return r.intent(hr, oc)
	}
}

// settle journals what a task undid: the changes it restores when it did
// not fail, and, for a module with Undo (elb), a change its State no longer
// holds (registered again, or nothing was drained after all).
func (r *Runner) settle(hr *hostRun, spec tasks.Spec, args, vars map[string]any, failed, untouched bool) {
	if failed && untouched && spec.Undo == "" && spec.Leaves != nil && hr != nil {
		// The call changed nothing: what it was about to leave was never left.
		if c, ok := spec.Leaves(args, vars); ok {
			r.undone(hr, c.Key)
		}
		return
	}
	if spec.Undo != "" {
		if hr == nil || spec.Leaves == nil {
			return
		}
		c, ok := spec.Leaves(args, vars)
		if !ok {
			return
		}
		r.mu.Lock()
		open := hr.journal.has(c.Key)
		r.mu.Unlock()
		if open && hr.state[spec.Undo] == nil {
			r.undone(hr, c.Key)
		}
		return
	}
	if failed || spec.Restores == nil {
		return
	}
	for _, k := range spec.Restores(args) {
		r.undone(hr, k)
	}
}

// connectionLost reports whether err means the host's connection dropped
// while a task ran: the task's outcome on the host is then unknown.
func connectionLost(err error, conn tasks.Conn) bool {
	if err == nil {
		return false
	}
	if c, ok := conn.(interface{ Closed() bool }); ok && c.Closed() {
		return true
	}
	if ssh.KindOf(err) == ssh.KindUnreachable {
		return true
	}
	return errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "connection lost")
}

// leftState is what the run leaves hr as: unknown when a task's outcome
// could not be known (its connection dropped) and nothing restored the
// host since, else the changes still open, else in service.
func (r *Runner) leftState(hr *hostRun) string {
	if !hr.touched {
		return ""
	}
	r.mu.Lock()
	open := hr.journal.left()
	r.mu.Unlock()
	switch {
	case hr.unknown != "" && open != "":
		return events.LeftUnknown + " (" + hr.unknown + "; " + open + ")"
	case hr.unknown != "":
		return events.LeftUnknown + " (" + hr.unknown + ")"
	case open != "":
		return open
	}
	return events.LeftInService
}

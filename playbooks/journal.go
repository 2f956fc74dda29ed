package playbooks

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"

	"github.com/ferrydeploy/ferry/awsapi"
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

// Change keys.
const (
	changeELB     = "elb"
	changeStandby = "standby"
	changeSuspend = "suspend"
	unitPrefix    = "unit:"
)

// intentOf returns the change a task with these rendered arguments is about
// to make, when it must be undone if the run dies. vars are the task's
// variables (controller sections: the play's AWS settings).
func intentOf(module string, args, vars map[string]any, become bool, becomeUser string) (openChange, bool) {
	str := func(k string) string { s, _ := args[k].(string); return s }
	switch module {
	case "systemd":
		if str("state") != "stopped" || str("name") == "" {
			return openChange{}, false
		}
		name := str("name")
		return openChange{key: unitPrefix + unitName(name), what: "unit " + unitName(name) + " stopped",
			undo: events.Undo{Module: "systemd", Args: map[string]any{"name": name, "state": "started"}, Become: become, BecomeUser: becomeUser}}, true
	case "elb":
		// The elb module journals its own intent, with the load balancers it
		// is about to leave (Host.Journal); only it knows them.
		return openChange{}, false
	case "asg":
		aws := awsArgs(args, vars)
		if str("state") == "standby" {
			return openChange{key: changeStandby, what: "in Auto Scaling standby",
				undo: events.Undo{Module: "asg", Args: merged(aws, map[string]any{"state": "in_service"})}}, true
		}
		if procs, ok := args["suspend"]; ok {
			groups := args["groups"]
			if groups == nil {
				groups = vars["autoscaling_groups"]
			}
			if groups == nil {
				if g, _ := vars[awsapi.VarAutoScalingGroup].(string); g != "" {
					groups = []any{g}
				}
			}
			return openChange{key: changeSuspend, what: "Auto Scaling processes suspended",
				undo: events.Undo{Module: "asg", Args: merged(aws, map[string]any{"resume": procs, "groups": groups})}}, true
		}
	}
	return openChange{}, false
}

// undoneBy lists the open changes a successful task with these arguments
// undoes. elb is reconciled from the module's memory instead (see settle).
func undoneBy(module string, args map[string]any) []string {
	str := func(k string) string { s, _ := args[k].(string); return s }
	switch module {
	case "systemd":
		switch str("state") {
		case "started", "restarted", "reloaded":
			return []string{unitPrefix + unitName(str("name"))}
		}
	case "asg":
		if str("state") == "in_service" {
			return []string{changeStandby}
		}
		if _, ok := args["resume"]; ok {
			return []string{changeSuspend}
		}
	}
	return nil
}

func unitName(n string) string { return strings.TrimSuffix(n, ".service") }

// awsArgs pins where an AWS undo acts: a resumed run must reach the same
// instance in the same region and account, whatever its variables say then.
func awsArgs(args, vars map[string]any) map[string]any {
	out := map[string]any{}
	for arg, v := range map[string]string{"instance_id": awsapi.VarInstanceID, "region": awsapi.VarRegion, "account": awsapi.VarAccountID} {
		if s, _ := args[arg].(string); s != "" {
			out[arg] = s
		} else if s, _ := vars[v].(string); s != "" {
			out[arg] = s
		}
	}
	return out
}

func merged(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
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
	r.mu.Unlock()
	if ok {
		r.emit(events.Event{Kind: events.Undone, Host: name, Change: key})
	}
}

// elbJournal is the Host.Journal given to modules: elb names what it is
// about to drain.
func (r *Runner) elbJournal(hr *hostRun, args map[string]any, vars map[string]any) func(key string, data any) error {
	return func(key string, data any) error {
		if key != tasks.ElbStateKey {
			return fmt.Errorf("journal: unknown change %q", key)
		}
		return r.intent(hr, openChange{key: changeELB, what: "out of load balancer",
			undo: events.Undo{Module: "elb", Args: merged(awsArgs(args, vars), map[string]any{"state": "registered"}),
				State: map[string]any{tasks.ElbStateKey: data}}})
	}
}

// settle journals what a task undid: the changes it names when it did not
// fail, and a drain that elb's memory no longer holds (registered again, or
// nothing was drained after all).
func (r *Runner) settle(hr *hostRun, module string, args map[string]any, failed bool) {
	if module == "elb" && hr != nil {
		r.mu.Lock()
		open := hr.journal.has(changeELB)
		r.mu.Unlock()
		if open && hr.state[tasks.ElbStateKey] == nil {
			r.undone(hr, changeELB)
		}
		return
	}
	if failed {
		return
	}
	for _, k := range undoneBy(module, args) {
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

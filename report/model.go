// Package report renders a run record (the events of one `ferry run`) as
// one self-contained HTML page: who ran what from where, the timeline of
// hosts × tasks as a Gantt chart with batches, waits and gates, failures
// and rollbacks, the versions before and after on each host, and the AWS
// calls. The page loads nothing: its CSS and SVG are inline and it has no
// script, so it can be mailed, attached to a ticket or opened years later.
package report

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/tasks"
)

// Run is what the page shows, built from a record's events.
type Run struct {
	RunID, Playbook, Env, Version, Inventory, User, Origin, ResumeOf string
	Record                                                           string
	Check                                                            bool
	Start, End                                                       time.Time
	Status                                                           string // ok, failed, interrupted, unreachable; "unfinished" when the record has no run_end
	ExitCode                                                         int
	Msg                                                              string
	Plays                                                            []string
	Batches                                                          []*Batch
	Hosts                                                            []*Host
	Stage                                                            *Span   // the play's stage list on every host, before batch 1 (nil: none)
	Waits                                                            []*Span // approvals: pause_wait → pause_end
	Gates                                                            []*Span // verify gates (bake time), when the record has them
	Warnings                                                         []events.Event
	AWS                                                              []*Task // tasks of modules that call AWS, in order
	Controller                                                       *Host   // before/after tasks (no host), nil when none
}

// Batch is one batch of a play.
type Batch struct {
	Play       string
	Num, Of    int
	Hosts      []string
	Start, End time.Time
	Failed     int
	Halted     bool
	Msg        string
}

// Span is a stretch of the run that is neither a host nor a task: a wait
// for approval, a gate's bake time.
type Span struct {
	Label      string
	Start, End time.Time
	Status     string
	Msg        string
	Checks     []events.Event // a gate's polls (gate_check events)
}

// LastChecks is a gate's latest value of each check, and its failed polls.
func (s *Span) LastChecks() []events.Event {
	var out []events.Event
	idx := map[string]int{}
	for _, c := range s.Checks {
		if i, ok := idx[c.Task]; ok && out[i].Status != events.StatusFailed {
			out[i] = c
			continue
		}
		if _, ok := idx[c.Task]; !ok || c.Status == events.StatusFailed {
			idx[c.Task] = len(out)
			out = append(out, c)
		}
	}
	return out
}

// Host is one host's row.
type Host struct {
	Name         string
	Batch        int
	Status       string // ok, changed, failed, rolled_back, unreachable, untouched, running (unfinished record)
	Msg          string
	Start, End   time.Time
	Tasks        []*Task
	Before       string // release current before the run ("" unknown)
	After        string // release current after it
	Left         string // what the run left it as (recap)
	Staged       string // its stage list: ok, failed, skipped (staged by a resumed run); "" none
	OutOfService time.Duration
	Recap        *events.HostRecap
	id           string
}

// Failed reports whether the row is marked as a failure.
func (h *Host) Failed() bool {
	switch h.Status {
	case string(events.StatusFailed), string(events.StatusRolledBack), string(events.StatusUnreachable), string(events.StatusInterrupted):
		return true
	}
	return false
}

// ID is the host's anchor on the page (unique: names that differ only
// in characters an id cannot hold still get their own).
func (h *Host) ID() string { return h.id }

// Task is one run of a task on a host.
type Task struct {
	Host, Name, Module string
	Index              int
	Rollback           bool
	Stage              bool // part of the play's stage list
	Start, End         time.Time
	Status             string
	Msg                string
	Output             []string
}

// Build reads a record's events into a Run. It accepts any prefix of a
// record (a run that died leaves one).
func Build(evs []events.Event, record string) *Run {
	r := &Run{Record: record, Status: "unfinished"}
	hosts := map[string]*Host{}
	host := func(name string) *Host {
		if name == "" {
			if r.Controller == nil {
				r.Controller = &Host{Name: "controller", Status: string(events.StatusOK), id: "controller"}
			}
			return r.Controller
		}
		h, ok := hosts[name]
		if !ok {
			h = &Host{Name: name, Status: "untouched"}
			hosts[name] = h
			r.Hosts = append(r.Hosts, h)
		}
		return h
	}
	open := map[string]*Task{} // host + index + rollback → the task running
	key := func(e events.Event) string {
		return e.Host + "\x00" + e.Task + "\x00" + boolStr(e.Rollback)
	}
	var pause, gate *Span
	var last time.Time
	for _, e := range evs {
		// Some events carry no time (the CLI's own, such as the lock):
		// they happened when the one before them did.
		if e.Time.IsZero() {
			e.Time = last
		}
		last = e.Time
		if !e.Time.IsZero() && (r.Start.IsZero() || e.Time.Before(r.Start)) {
			r.Start = e.Time
		}
		if e.Time.After(r.End) {
			r.End = e.Time
		}
		switch e.Kind {
		case events.RunStart:
			r.RunID, r.Playbook, r.Env, r.Version, r.Inventory = e.RunID, e.Playbook, e.Env, e.Version, e.Inventory
			r.User, r.Origin, r.Check, r.ResumeOf = e.User, e.Origin, e.Check, e.ResumeOf
			for _, h := range e.Hosts {
				host(h)
			}
		case events.PlayStart:
			r.Plays = append(r.Plays, e.Play)
			for _, h := range e.Hosts {
				host(h)
			}
		case events.Preflight:
			if e.Status != events.StatusOK {
				h := host(e.Host)
				h.Status, h.Msg = string(e.Status), e.Msg
			}
		case events.BatchStart:
			r.Batches = append(r.Batches, &Batch{Play: e.Play, Num: e.Batch, Of: e.Batches, Hosts: e.Hosts, Start: e.Time})
			for _, n := range e.Hosts {
				host(n).Batch = e.Batch
			}
		case events.BatchEnd:
			for i := len(r.Batches) - 1; i >= 0; i-- {
				if b := r.Batches[i]; b.Num == e.Batch && b.Play == e.Play && b.End.IsZero() {
					b.End, b.Failed, b.Halted, b.Msg = e.Time, e.Failed, e.Halted, e.Msg
					break
				}
			}
		case events.HostStart:
			h := host(e.Host)
			if h.Start.IsZero() {
				h.Start = e.Time
			}
			h.Status = string(events.StatusRunning)
		case events.HostEnd:
			h := host(e.Host)
			h.Status, h.Msg, h.End = string(e.Status), e.Msg, e.Time
			if h.Start.IsZero() {
				h.Start = e.Time.Add(-e.Duration)
			}
		case events.TaskStart:
			t := &Task{Host: e.Host, Name: e.Task, Module: e.Module, Index: e.TaskIndex, Rollback: e.Rollback, Stage: e.Stage, Start: e.Time, Status: string(events.StatusRunning)}
			if e.Stage {
				if r.Stage == nil {
					r.Stage = &Span{Label: "stage", Start: e.Time, Status: string(events.StatusOK)}
				}
				r.Stage.End = e.Time
			}
			h := host(e.Host)
			h.Tasks = append(h.Tasks, t)
			open[key(e)] = t
		case events.TaskOutput:
			if t := open[key(e)]; t != nil && len(t.Output) < maxOutputLines {
				t.Output = append(t.Output, e.Line)
			}
		case events.TaskEnd:
			t := open[key(e)]
			delete(open, key(e))
			if t == nil {
				t = &Task{Host: e.Host, Name: e.Task, Module: e.Module, Index: e.TaskIndex, Rollback: e.Rollback, Start: e.Time.Add(-e.Duration)}
				h := host(e.Host)
				h.Tasks = append(h.Tasks, t)
			}
			t.End, t.Status, t.Msg = e.Time, string(e.Status), e.Msg
			if t.Module == "" {
				t.Module = e.Module
			}
			if e.Host == "" && e.Status == events.StatusFailed {
				r.Controller.Status = string(events.StatusFailed)
			}
			if m, ok := tasks.Lookup(t.Module); ok && m.Spec().AWS {
				r.AWS = append(r.AWS, t)
			}
			noteRelease(host(e.Host), t)
		case events.StageEnd:
			h := host(e.Host)
			h.Staged = string(e.Status)
			if r.Stage == nil {
				r.Stage = &Span{Label: "stage", Start: e.Time, Status: string(events.StatusOK)}
			}
			r.Stage.End = e.Time
			if e.Status == events.StatusFailed {
				r.Stage.Status = string(events.StatusFailed)
			}
		case events.GateStart:
			gate = &Span{Label: fmt.Sprintf("verify gate after batch %d (bake %s)", e.Batch, roundDur(e.Duration)), Start: e.Time, Status: string(events.StatusRunning), Msg: e.Msg}
			r.Gates = append(r.Gates, gate)
		case events.GateCheck:
			if gate != nil {
				gate.Checks = append(gate.Checks, e)
			}
		case events.GateEnd:
			if gate != nil {
				gate.End, gate.Status, gate.Msg = e.Time, string(e.Status), e.Msg
				gate = nil
			}
		case events.PauseWait:
			pause = &Span{Label: "waiting for approval", Start: e.Time, Msg: e.Msg}
			r.Waits = append(r.Waits, pause)
		case events.PauseEnd:
			if pause != nil {
				pause.End, pause.Status = e.Time, string(e.Status)
				pause = nil
			}
		case events.Warning:
			r.Warnings = append(r.Warnings, e)
		case events.RunEnd:
			r.Status, r.ExitCode, r.Msg = string(e.Status), e.ExitCode, e.Msg
			for i := range e.Recap {
				rc := e.Recap[i]
				h := host(rc.Host)
				h.Recap, h.Left, h.OutOfService = &rc, rc.Left, rc.OutOfService
			}
		}
	}
	// What is still open when the record ends ran until its last event.
	for _, t := range open {
		t.End = r.End
	}
	if pause != nil {
		pause.End = r.End
	}
	if gate != nil {
		gate.End = r.End
	}
	for _, b := range r.Batches {
		if b.End.IsZero() {
			b.End = r.End
		}
	}
	for i, h := range r.Hosts {
		h.id = fmt.Sprintf("host-%d-%s", i+1, anchor(h.Name))
		if !h.Start.IsZero() && h.End.IsZero() {
			h.End = r.End
		}
	}
	return r
}

// maxOutputLines bounds the output kept per task: a page must stay
// openable when a command printed a million lines.
const maxOutputLines = 200

// releaseMsg is what the release module says when it moves `current`
// ("current -> v2 (was v1)"): the versions before and after on the host.
var releaseMsg = regexp.MustCompile(`current -> (\S+) \(was ([^)]*)\)`)

func noteRelease(h *Host, t *Task) {
	if t.Module != "release" || t.Status == string(events.StatusFailed) {
		return
	}
	if m := releaseMsg.FindStringSubmatch(t.Msg); m != nil {
		if h.Before == "" && !t.Rollback {
			h.Before = m[2]
		}
		h.After = m[1]
		return
	}
	if v, ok := strings.CutPrefix(t.Msg, "release "); ok {
		if v, ok := strings.CutSuffix(v, " is current"); ok {
			if h.Before == "" {
				h.Before = v
			}
			h.After = v
		}
	}
}

// HostSummary counts the hosts by outcome: "3 changed, 1 rolled_back".
func (r *Run) HostSummary() string {
	c := map[string]int{}
	for _, h := range r.Hosts {
		c[h.Status]++
	}
	var keys []string
	for s := range c {
		keys = append(keys, s)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", c[k], k)
	}
	return strings.Join(parts, ", ")
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// anchor makes a name safe for an id attribute and a fragment.
func anchor(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteRune(c)
		default:
			b.WriteString("_")
		}
	}
	return b.String()
}

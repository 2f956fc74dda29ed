// Package events defines the stream of things that happen during a ferry run.
//
// The runner emits events; the plain and JSON renderers, the TUI and the run
// record all consume the same stream, so what an operator watches, what CI
// logs and what is kept on disk can never disagree.
package events

import "time"

// Kind names what happened.
type Kind string

const (
	RunStart   Kind = "run_start"   // a run began: RunID, Playbook, Env, Version, Inventory, Hosts
	PlayStart  Kind = "play_start"  // a play began: Play, Hosts (all hosts of the play), Batches
	Preflight  Kind = "preflight"   // one host checked before batch 1: Host, Status (ok|unreachable|failed), Msg
	StageEnd   Kind = "stage_end"   // a host's play-level stage list ended, before batch 1: Host, Status (ok|failed|skipped: staged by the resumed run), Version, Msg
	BatchStart Kind = "batch_start" // Batch (1-based), Batches, Hosts (this batch)
	HostStart  Kind = "host_start"  // a host began its task list: Host, Tasks (names, in order)
	TaskStart  Kind = "task_start"  // Host, Task, TaskIndex, Module
	TaskOutput Kind = "task_output" // one line of a running command's output: Host, Task, TaskIndex, Line
	TaskEnd    Kind = "task_end"    // Host, Task, TaskIndex, Module, Status, Msg, Duration
	HostEnd    Kind = "host_end"    // Host, Status (ok|changed|failed|rolled_back|unreachable), Msg, Duration
	GateStart  Kind = "gate_start"  // a verify gate begins its bake after a batch: Play, Batch, Hosts (the batch), Duration (bake), Msg (its checks)
	GateCheck  Kind = "gate_check"  // one check of one poll: Batch, Task (check name), Module (its kind), TaskIndex (poll, from 1), Status (ok|failed|skipped), Msg (measured values)
	GateEnd    Kind = "gate_end"    // the gate's verdict: Batch, Status (ok|failed|interrupted), Msg (the check that failed, with its values), Duration (time baked)
	BatchEnd   Kind = "batch_end"   // Batch, Batches, Failed (count), Halted (rollout stops), Msg
	PauseWait  Kind = "pause_wait"  // waiting for the operator to approve: Msg; answer through the runner's approver
	PauseEnd   Kind = "pause_end"   // approval given (Status ok) or refused (Status failed)
	Warning    Kind = "warning"     // something the operator should read: Host (optional), Msg
	Lock       Kind = "lock"        // the environment's deploy lock: Env, Status (ok: taken, skipped: released), Msg
	PlayEnd    Kind = "play_end"    // Play, Status
	RunEnd     Kind = "run_end"     // Status (ok|failed|interrupted|unreachable), Recap, RecordPath, ExitCode

	// The journal: the record is synced to disk after each of these, so a
	// run that dies (SIGKILL, lost runner) leaves what it must undo on disk.
	Intent Kind = "intent" // before a change that must be undone if the run dies: Host ("" = controller), Change, Msg (what it leaves), Undo
	Undone Kind = "undone" // the change is undone (or never happened): Host, Change
)

// Undo is how to restore an Intent's change: one module call, as a resumed
// run makes it (ferry run --resume).
type Undo struct {
	Module     string         `json:"module"`
	Args       map[string]any `json:"args,omitempty"`
	State      map[string]any `json:"state,omitempty"` // module memory to restore first (what elb drained)
	Become     bool           `json:"become,omitempty"`
	BecomeUser string         `json:"become_user,omitempty"`
}

// Status is the outcome of a task, a host or a run.
type Status string

const (
	StatusPending     Status = "pending"
	StatusRunning     Status = "running"
	StatusOK          Status = "ok"
	StatusChanged     Status = "changed"
	StatusFailed      Status = "failed"
	StatusSkipped     Status = "skipped"
	StatusUnreachable Status = "unreachable"
	StatusRolledBack  Status = "rolled_back"
	StatusInterrupted Status = "interrupted"
)

// HostRecap is one row of the final recap (Ansible's PLAY RECAP, plus what ferry knows more).
type HostRecap struct {
	Host        string `json:"host"`
	OK          int    `json:"ok"`
	Changed     int    `json:"changed"`
	Failed      int    `json:"failed"`
	Skipped     int    `json:"skipped"`
	Unreachable int    `json:"unreachable"`
	RolledBack  bool   `json:"rolled_back,omitempty"`
	Drained     bool   `json:"drained,omitempty"`   // left out of its load balancers
	Untouched   bool   `json:"untouched,omitempty"` // never started (the rollout halted first)
	// Left is the state the run left the host in: "in service", or what is
	// still undone ("out of load balancer, unit app stopped"), or "unknown".
	Left string `json:"left,omitempty"`
	// OutOfService is how long the host had a journaled change open (out
	// of its load balancers, its unit stopped): from the first such change
	// to the moment none was left, summed over the run.
	OutOfService time.Duration `json:"out_of_service_ns,omitempty"`
}

// LeftOut reports whether the run left the host not in service (or unknown).
func (r HostRecap) LeftOut() bool { return r.Left != "" && r.Left != LeftInService }

// Left states of a host (HostRecap.Left) besides the list of open changes.
const (
	LeftInService = "in service"
	LeftUnknown   = "unknown"
)

// Event is one thing that happened. Fields not meaningful for a Kind are zero.
type Event struct {
	Time      time.Time     `json:"time"`
	Kind      Kind          `json:"event"`
	RunID     string        `json:"run_id,omitempty"`
	Playbook  string        `json:"playbook,omitempty"`
	Env       string        `json:"env,omitempty"`
	Version   string        `json:"version,omitempty"`
	Inventory string        `json:"inventory,omitempty"`
	User      string        `json:"user,omitempty"`   // RunStart: who runs it
	Origin    string        `json:"origin,omitempty"` // RunStart: controller host, CI job or branch
	Check     bool          `json:"check,omitempty"`  // RunStart: --check, nothing changes
	Play      string        `json:"play,omitempty"`
	Batch     int           `json:"batch,omitempty"`
	Batches   int           `json:"batches,omitempty"`
	Hosts     []string      `json:"hosts,omitempty"`
	Tasks     []string      `json:"tasks,omitempty"`
	Host      string        `json:"host,omitempty"`
	Task      string        `json:"task,omitempty"`
	TaskIndex int           `json:"task_index,omitempty"`
	Module    string        `json:"module,omitempty"`
	Rollback  bool          `json:"rollback,omitempty"` // the task belongs to the host's rollback list
	Stage     bool          `json:"stage,omitempty"`    // the task belongs to the play's stage list (before batch 1)
	Status    Status        `json:"status,omitempty"`
	Msg       string        `json:"msg,omitempty"`
	Line      string        `json:"line,omitempty"`
	Duration  time.Duration `json:"duration_ns,omitempty"`
	Failed    int           `json:"failed,omitempty"`
	Halted    bool          `json:"halted,omitempty"`
	Recap     []HostRecap   `json:"recap,omitempty"`
	Record    string        `json:"record,omitempty"`
	ExitCode  int           `json:"exit_code,omitempty"`
	Change    string        `json:"change,omitempty"`    // Intent, Undone: which change ("elb", "unit:app", ...)
	Undo      *Undo         `json:"undo,omitempty"`      // Intent: how to restore it
	Digest    string        `json:"digest,omitempty"`    // RunStart: SHA-256 of the playbook file, for --resume
	ResumeOf  string        `json:"resume_of,omitempty"` // RunStart: the run this one resumes
	// Extra (RunStart): the run's -e values but version (Version holds it)
	// and anything a play declares secret or that looks like a credential:
	// what --resume and a launch of the environment need again.
	Extra map[string]any `json:"extra_vars,omitempty"`
}

// Sink receives events. Emit must be safe for concurrent use and must not block
// for long: hosts of a batch emit from their own goroutines.
type Sink interface {
	Emit(Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

// Emit calls f.
func (f SinkFunc) Emit(e Event) { f(e) }

// Fanout sends every event to each sink in order.
type Fanout []Sink

// Emit implements Sink.
func (f Fanout) Emit(e Event) {
	for _, s := range f {
		s.Emit(e)
	}
}

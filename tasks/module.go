package tasks

import (
	"context"
	"sort"
	"time"
)

// Type is the type a module parameter accepts, checked when a playbook loads.
type Type int

const (
	Any      Type = iota
	String        // also accepts numbers and bools, rendered as strings (YAML's `mode: 0755`)
	Int           // integer, or a string holding one
	Bool          // bool, or a word Ansible takes for one (value.Bool)
	Duration      // "2s", "1m30s", or a number of seconds
	List          // YAML sequence (a single scalar is accepted as a one-item list)
	Map           // YAML mapping
	Expr          // a bare expression (assert's `that`), evaluated by the runner via Host.Eval
)

// Param describes one argument of a module.
type Param struct {
	Type     Type
	Required bool
	Choices  []string // allowed values for a String param, when limited
	Default  string   // the value when the argument is left out, as text, for `ferry doc` ("": none, or said in Doc)
	Doc      string   // one line: what it is; shown by `ferry check` hints and `ferry doc`
}

// Spec describes a module: its arguments, checked when a playbook loads and
// again, rendered, before each run (Validate), and its capabilities, which
// the runner, `ferry check` and the CLI read instead of naming modules.
type Spec struct {
	Name     string
	Doc      string // one line: what the module does (`ferry doc`, docs/modules.md)
	Params   map[string]Param
	FreeForm string // when set, `module: "text"` is accepted and stored under this param (e.g. "cmd")
	// OneOf lists groups of params of which exactly one must be given (e.g. copy: src | content).
	OneOf [][]string
	// AnyParams: any key is accepted (set_fact); Params, if any, still type-check
	// the keys they name.
	AnyParams bool
	// Returns documents what `register` gets beyond changed/failed/msg
	// (name → one line), for `ferry doc`.
	Returns map[string]string

	// Controller: runs on the controller, so no connection to the host is
	// needed and become does not apply.
	Controller bool
	// AWS: calls AWS from the controller (Host.Controller.AWS); the CLI sets
	// up AWS only for playbooks that use such a module.
	AWS bool
	// Approval reports whether a call with these (unrendered) arguments asks
	// the operator to approve, so that a run without a terminal or --yes is
	// refused before it starts. nil: never.
	Approval func(args map[string]any) bool
	// DefinesFacts: every argument's key becomes a host variable
	// (set_fact), so `ferry check` knows those names are defined after it.
	DefinesFacts bool
	// SetsFacts names the host variables the module sets (Outcome.Facts)
	// whatever its arguments (deploy_helper), so `ferry check` knows them.
	SetsFacts []string
	// VarsFile names the parameter holding a file of variables the module
	// sets (include_vars), so `ferry check` reads their names.
	VarsFile string
	// GathersFacts: the module gathers facts about the host (setup,
	// service_facts): ansible_facts and ansible_NAME are defined after it.
	GathersFacts bool
	// Inventory: the module changes the run's inventory (group_by,
	// add_host): the runner applies its Outcome.Inventory before the next
	// play and resolves the later plays' `hosts:` against the result.
	Inventory bool
	// Once: the task runs once per batch, on its first host, whatever the
	// play's hosts (add_host, as in Ansible), as if it had run_once.
	Once bool
	// Undo names the Host.State key under which the module keeps what it did
	// that the play still has to undo (elb: the load balancers it drained
	// the host from). A host whose State holds it at the end of a run is
	// reported as left out of service.
	Undo string
	// Leaves returns the change a call with these rendered arguments is
	// about to make that must be undone if the run dies (a unit stopped, a
	// host in standby), so the runner journals it before the call. vars are
	// the task's variables. For a module with Undo, the change is journaled
	// only when the module calls Host.Journal, with what it wrote. nil: none.
	Leaves func(args, vars map[string]any) (Change, bool)
	// Restores lists the Change keys a successful call with these rendered
	// arguments undoes (a unit started again). A module with Undo is
	// reconciled from its State instead.
	Restores func(args map[string]any) []string
	// Service: the module changes what a host serves (starts or stops a
	// container, drains a server in a load balancer) beyond what Leaves,
	// Restores and Undo say; `stage:` refuses it.
	Service bool
	// HostFiles: the module creates, replaces, reads or removes files on
	// the host (through tasks/hostfs, the only code that may). It returns
	// sample calls that do so inside at.Dir, a directory another user of
	// the host owns: the adversarial lab test (tasks/hostfiles_lab_test.go)
	// runs every such module with them, with become, against that user
	// racing and planting symlinks, with no test code of its own. nil: the
	// module touches no host file by a path.
	HostFiles func(at FileAttack) []FileCall
	// RoleDir is the directory of a role where the module's relative local
	// paths (src) resolve, as in Ansible: "templates" for template; "" means
	// files.
	RoleDir string
}

// FileAttack is where the adversarial lab test points a module that
// touches host files (Spec.HostFiles).
type FileAttack struct {
	Dir   string // directory on the host that an unprivileged attacker owns (/srv/app)
	Local string // controller directory holding "file" (text), "tree/" (a directory of files), "archive.tar" and "dotdot.tar" (an entry named ../../x)
	Evil  string // controller path of an archive with hostile names (a newline, "..", absolute) and setuid/setgid modes
	Modes string // controller path of an archive with ordinary names but setuid/setgid modes
	URL   string // http URL on the host that serves the content of "file"
	// Secret is a root-only file on the host (0600): a module that reads
	// host files as root is pointed at it, and its content must reach
	// nothing the attacker can read, nor the outcome.
	Secret string
}

// FileCall is one sample call: the module's arguments, and the path on the
// host it writes, reads or removes (under FileAttack.Dir), whose parents
// the attacker replaces with symlinks.
type FileCall struct {
	Args   map[string]any
	Target string
	// Layout is what the attacker makes in Dir before each attack (after
	// Target's directory): the files the call works on, such as old
	// releases for a cleanup to remove. Each entry, relative to Dir, is
	// "name/" (a directory), "name" (an empty file) or "name -> target" (a
	// symlink).
	Layout []string
}

// Change is something a call leaves that must be undone if the run dies:
// the runner journals it, and `ferry run --resume` undoes it by calling
// Module with Args.
type Change struct {
	Key    string         // names the change in the journal: "unit:app", "standby"
	What   string         // what it leaves the host as, for the recap: "unit app stopped"
	Module string         // the module that undoes it
	Args   map[string]any // that module's arguments
}

// Module is one task type. Run must honour Host.Check (report, change nothing)
// and ctx (return promptly when it ends).
type Module interface {
	Spec() Spec
	Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error)
}

// Host is what a module sees of the host it works on, for one task.
type Host struct {
	Name   string
	Conn   Conn           // nil for controller modules
	Vars   map[string]any // the host's variables (inventory + play + facts), read-only
	Check  bool           // --check: say what would change, change nothing
	Become RunOptions     // become settings of this task (Become, BecomeUser, BecomePass) and its environment
	// Output receives live output lines of a running command (for the TUI tail).
	Output func(line string)
	// Eval evaluates a bare expression against the task's variables.
	Eval func(expr string) (any, error)
	// Render expands {{ }} in text with the task's variables (template module).
	Render func(text string) (string, error)
	// State is per-host memory that lasts the whole run (e.g. what elb drained).
	State map[string]any
	// Journal, when set, records in the run's journal (synced to disk) what
	// a change is about to leave undone, under a State key, before the
	// module makes it; an error means the change must not be made.
	Journal func(key string, data any) error
	// Controller gives controller-side modules what they need (AWS, approval).
	Controller *Controller
	// Timeout is the task's own timeout (0: none beyond ctx).
	Timeout time.Duration
	// Rollback says the task belongs to the play's rollback list: modules
	// then undo only what this run did on the host (see release).
	Rollback bool
	// Dir is the directory that relative local paths (copy, template and
	// script `src`) resolve against: the playbook's directory. "" means the
	// process's working directory.
	Dir string
	// Fallback are the directories searched next, in order, for a relative
	// local path not found in Dir: for a role's task, the role's own
	// directory and its tasks/, then the playbook's (Ansible's search path).
	Fallback []string
}

// Controller holds what controller-side modules share across hosts.
type Controller struct {
	// Approve asks the operator to approve msg (pause module); false means abort.
	Approve func(ctx context.Context, msg string) (bool, error)
	// AWS is filled by the runner when an AWS module is used (Spec.AWS); see elb.go/asg.go.
	AWS AWS
}

// Outcome is the result of one module run.
type Outcome struct {
	Changed bool
	Failed  bool
	Skipped bool
	Msg     string         // one line for the operator
	Result  map[string]any // what `register` stores (stdout, stderr, rc, status, json, ...)
	Facts   map[string]any // set_fact: variables to set on the host
	Diff    string         // --check / changed: what would change / changed, human-readable
	// Untouched: the call failed before it changed anything on the host (a
	// unit that does not exist), so what Spec.Leaves said it was about to
	// leave was never left.
	Untouched bool
	// Inventory lists the changes to the run's inventory (Spec.Inventory).
	Inventory []InventoryChange
}

// InventoryChange puts Host (created if needed, with Vars set over its
// own) in Groups, creating them; Parents become parents of each of Groups.
type InventoryChange struct {
	Host    string
	Vars    map[string]any
	Groups  []string
	Parents []string
}

var registry = map[string]Module{}

// Register adds a module under its Spec().Name; modules call it from init.
func Register(m Module) { registry[m.Spec().Name] = m }

// Lookup returns the module called name.
func Lookup(name string) (Module, bool) {
	m, ok := registry[name]
	return m, ok
}

// Specs returns every module's Spec, sorted by name.
func Specs() []Spec {
	out := make([]Spec, 0, len(registry))
	for _, n := range Names() {
		out = append(out, registry[n].Spec())
	}
	return out
}

// Names lists every module, sorted (for "did you mean").
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

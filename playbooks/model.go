// Package playbooks reads ferry playbooks: the YAML model with positions,
// validation that reports every problem at once (file:line:column, snippet,
// "did you mean"), the expression layer, variable precedence, `-e` parsing and
// batch planning. The runner executes what this package loads.
//
// # Expressions
//
// The expression language is expr (https://expr-lang.org), not Jinja:
// `{{ expr }}` may appear in any string, and `when`, `until`, `changed_when`,
// `failed_when` and assert's `that` are bare expressions. A string that is
// exactly one `{{ expr }}` keeps the value's type (a list stays a list, an int
// an int); otherwise the parts are rendered as text (lists and maps as JSON).
// expr's pipe works on its own functions: `{{ name | upper() }}`.
//
// Reading an undefined variable is an error naming it; `??` gives a default and
// makes the whole chain on its left nil-safe: `extra.version ?? 'dev'` is 'dev'
// when extra has no version, and `a.b.c ?? 0` is 0 when a is undefined.
// A `{{ }}` whose value is nil (a missing map key) is an error unless it ends
// in `??`. `"name" in $env` tests whether a variable exists.
//
// Functions, besides expr's builtins (lower, upper, trim, split, join, len,
// filter, map, keys, toJSON, fromJSON, ...): basename(p), dirname(p),
// to_json(v), from_json(s), quote(s) (POSIX shell quoting) and default(v, d)
// (d when v is undefined or nil).
package playbooks

import (
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/tasks"
)

// Playbook is a loaded playbook file.
type Playbook struct {
	Path  string
	Plays []*Play
	// Warnings are things that load but will change (deprecated spellings),
	// for `ferry check` and the start of a run.
	Warnings []*diag.Error
	src      []byte
}

// Order is the order in which a play's hosts are taken into batches.
type Order string

const (
	OrderInventory     Order = "inventory"
	OrderSorted        Order = "sorted"
	OrderReverseSorted Order = "reverse_sorted"
	OrderShuffle       Order = "shuffle"
	OrderByZone        Order = "by_zone"
)

var orders = []string{string(OrderInventory), string(OrderSorted), string(OrderReverseSorted), string(OrderShuffle), string(OrderByZone)}

// Play is one play of a playbook.
type Play struct {
	Name              string
	Hosts             string       // host pattern (a YAML list is joined with ",")
	Serial            []SerialStep // empty: one batch of every host
	Order             Order        // OrderInventory when absent
	MaxFailPercentage float64      // 0..100; default 0: any failure halts
	MaxFailures       *int         // nil: no cap over the run
	RollbackCompleted bool
	PauseAfter        []int // batch numbers (1-based) after which the operator approves
	Vars              []*VarDef
	Secrets           []string // names of variables whose values are masked
	Before            []*Task  // once, on the controller, before batch 1
	Stage             []*Task  // on every host of the play in parallel, before batch 1: nothing that changes service
	Verify            *Verify  // the gate after batches (nil: none)
	PreTasks          []*Task
	Tasks             []*Task
	PostTasks         []*Task
	Rollback          []*Task // per host, when one of its tasks fails
	After             []*Task // once, on the controller, always
	Become            bool
	BecomeUser        string
	Environment       map[string]any // raw; render with template.RenderValue
	Tags              []string
	Handlers          []*Task // run at the end of a host's tasks when notified (and at meta: flush_handlers)
	RemoteUser        string  // SSH user for hosts whose inventory names none
	// Local: `connection: local`, accepted on a play on localhost (its
	// hosts must connect locally: the implicit localhost does).
	Local   bool
	localAt *yaml.Node
	// GatherFacts is the play's gather_facts: nil when the key is absent,
	// and then facts are gathered only when the play reads one (UsesFacts).
	GatherFacts  *bool
	GatherSubset []string
	// Prompts: vars_prompt, answered with -e (a prompt with a default may be left out).
	Prompts []Prompt
	Pos     diag.Pos

	roleTasks []*Task            // tasks of `roles:`, run before `tasks:`
	hostsTmpl *template.Template // when Hosts holds {{ }}
	envTmpls  []*template.Template
}

// HostTasks is the task list every host runs in a batch: pre_tasks, tasks, post_tasks.
func (p *Play) HostTasks() []*Task {
	out := make([]*Task, 0, len(p.PreTasks)+len(p.Tasks)+len(p.PostTasks))
	out = append(out, p.PreTasks...)
	out = append(out, p.Tasks...)
	return append(out, p.PostTasks...)
}

// AllTasks is every task of the play: before, the host tasks, rollback, after.
// Blocks are opened: their tasks are listed in place of the block; handlers come last.
func (p *Play) AllTasks() []*Task {
	out := append([]*Task{}, p.Before...)
	out = append(out, p.Stage...)
	out = append(out, p.HostTasks()...)
	out = append(out, p.Rollback...)
	out = append(out, p.After...)
	return flattenTasks(append(out, p.Handlers...))
}

// flattenTasks lists tasks with every block replaced by its tasks (block, rescue, always).
func flattenTasks(list []*Task) []*Task {
	var out []*Task
	for _, t := range list {
		if !t.IsBlock {
			out = append(out, t)
			continue
		}
		out = append(out, flattenTasks(t.Block)...)
		out = append(out, flattenTasks(t.Rescue)...)
		out = append(out, flattenTasks(t.Always)...)
	}
	return out
}

// VarDef is one entry of a play's `vars`, in file order. Value is raw (it may
// hold {{ }}); ResolveVars renders it.
type VarDef struct {
	Name  string
	Value any
	Pos   diag.Pos // of the name
	// Default: a role default, below the inventory (Ansible's lowest precedence).
	Default bool

	templates []*template.Template // every {{ }} string inside Value
	nodes     map[string]*yaml.Node
	path      string
	src       []byte
}

// Conds is a list of bare expressions that must all be true (a YAML list of
// conditions, or one).
type Conds []*template.Expr

// True reports whether every condition holds (true for an empty list).
func (c Conds) True(vars map[string]any) (bool, error) {
	for _, e := range c {
		ok, err := e.Bool(vars)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// Task is one task.
type Task struct {
	Name         string // raw; may hold {{ }} (render with template.RenderValue)
	Module       string // canonical module name (ansible.builtin.X is accepted as X)
	Spec         tasks.Spec
	Args         map[string]any // raw module arguments, {{ }} not yet rendered
	When         Conds
	Register     string
	Loop         any  // raw: a list, or a "{{ }}" string giving one
	HasLoop      bool // the task has `loop`
	Retries      int
	Delay        time.Duration
	Until        Conds
	Timeout      time.Duration
	IgnoreErrors bool
	Become       *bool  // nil: the play's
	BecomeUser   string // "": the play's
	Tags         []string
	NoLog        bool
	ChangedWhen  Conds
	FailedWhen   Conds
	Environment  map[string]any // raw; render with template.RenderValue
	Pos          diag.Pos       // the task's first key
	ModulePos    diag.Pos       // the module key

	// Ansible keywords (see ansible.go, blocks.go).
	Notify     []string       // handlers to run when the task changed something
	Listen     []string       // a handler's other names
	DelegateTo string         // raw; "localhost": the controller
	RunOnce    bool           // once per batch; every host gets the result
	LoopVar    string         // loop_control.loop_var ("item" when empty)
	Vars       map[string]any // task vars, raw
	Block      []*Task        // block (or include_tasks/import_tasks): the task is a group
	Rescue     []*Task        // run when a task of Block fails
	Always     []*Task        // run after Block (and Rescue) whatever happened
	IsBlock    bool
	Meta       string // meta: flush_handlers, noop, end_play, end_host
	Dir        string // directory relative src paths resolve against ("" = the playbook's)

	// Include: which keyword made this block (include_tasks, import_role, ...; "" for block:).
	Include string

	// loopWith: with_nested or with_subelements, applied to the rendered loop.
	loopWith string

	// retriesTmpl, delayTmpl: retries/delay written as {{ }}.
	retriesTmpl, delayTmpl *template.Template

	// deferred: an include_tasks whose templated file name could not be
	// rendered when the task was read; finishBlock settles it.
	deferred *deferredInclude

	// outerLoops: loop variables of the includes this task is in (include_tasks with a loop).
	outerLoops []string

	argNodes  map[string]*yaml.Node // path in Args ("json.version", "cmd[0]") → its node
	templates []*template.Template  // every {{ }} string of the task but conditions
	argExprs  Conds                 // bare expressions among the arguments (assert's that)
	path      string
	src       []byte
}

// DisplayName is the task's name, or its module when it has none.
func (t *Task) DisplayName() string {
	switch {
	case t.Name != "":
		return t.Name
	case t.Meta != "":
		return "meta: " + t.Meta
	case t.IsBlock:
		return "block"
	}
	return t.Module
}

// RenderArgs renders the task's module arguments with vars, just before the
// task runs. Parameters of type tasks.Expr are left as written (the module
// evaluates them through Host.Eval). Errors are *EvalError with the position
// of the argument in the playbook.
func (t *Task) RenderArgs(vars map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(t.Args))
	for k, v := range t.Args {
		if p, ok := t.Spec.Params[k]; ok && p.Type == tasks.Expr {
			out[k] = v
			continue
		}
		r, err := template.RenderValueAt(v, vars, k, t.posOf)
		if err != nil {
			return nil, err
		}
		out[k] = r
	}
	return out, nil
}

// LoopItems renders `loop` and returns its items (nil when the task has no loop).
func (t *Task) LoopItems(vars map[string]any) ([]any, error) {
	if !t.HasLoop {
		return nil, nil
	}
	v, err := template.RenderValueAt(t.Loop, vars, "\x00loop", t.posOf)
	if err != nil {
		return nil, err
	}
	if t.loopWith != "" {
		if v, err = template.WithLoop(t.loopWith, v); err != nil {
			return nil, &template.EvalError{Pos: t.Pos, Expr: template.Text(t.Loop), Msg: err.Error()}
		}
	}
	switch x := v.(type) {
	case []any:
		return x, nil
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, nil
	case map[string]any:
		// a mapping loops over {key, value} pairs, sorted by key
		return mapItems(x), nil
	case nil:
		return nil, nil
	default:
		return nil, &template.EvalError{Pos: t.Pos, Expr: template.Text(t.Loop), Msg: "loop: want a list, got " + template.Describe(v)}
	}
}

// RenderName renders the task's name (which may hold {{ }}).
func (t *Task) RenderName(vars map[string]any) (string, error) {
	v, err := template.RenderValueAt(t.Name, vars, "\x00name", t.posOf)
	if err != nil {
		return "", err
	}
	return template.Text(v), nil
}

func (t *Task) posOf(path string) (diag.Pos, func(int) diag.Pos) {
	n := t.argNodes[path]
	if n == nil {
		return t.ModulePos, nil
	}
	return nodePos(t.path, n), scalarPosAt(t.path, t.src, n)
}

// SerialStep is one entry of `serial`: a host count or a percentage of the play's hosts.
type SerialStep struct {
	Count   int
	Percent float64 // > 0 for a percentage step
}

// BecomeFor is the effective become setting of t in this play: the task's
// own when set, else the play's.
func (p *Play) BecomeFor(t *Task) (become bool, user string) {
	become, user = p.Become, p.BecomeUser
	if t.Become != nil {
		become = *t.Become
	}
	if t.BecomeUser != "" {
		user = t.BecomeUser
	}
	return become, user
}

// RenderHosts renders the play's host pattern (it may hold {{ }}, e.g. from -e).
func (p *Play) RenderHosts(vars map[string]any) (string, error) {
	if p.hostsTmpl == nil {
		return p.Hosts, nil
	}
	v, err := p.hostsTmpl.Render(vars)
	if err != nil {
		return "", err
	}
	return template.Text(v), nil
}

// Selected reports whether a task with these tags (the play's and its own)
// runs under --tags only and --skip-tags skip, as in Ansible: skip wins; with
// only set, a task runs when it has one of those tags or the tag "always";
// "all" in only selects every task.
func Selected(tags, only, skip []string) bool {
	for _, t := range tags {
		if slices.Contains(skip, t) {
			return false
		}
	}
	if len(only) == 0 || slices.Contains(only, "all") {
		return true
	}
	for _, t := range tags {
		if t == "always" || slices.Contains(only, t) {
			return true
		}
	}
	return false
}

// LookupModule finds a module as a playbook names it (ansible.builtin.X
// and the like are ferry's X).
func LookupModule(name string) (tasks.Module, bool) { return lookupModule(name) }

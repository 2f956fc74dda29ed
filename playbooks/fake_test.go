package playbooks

import (
	"context"
	"strings"

	"github.com/ferrydeploy/ferry/tasks"
)

// fakeModule is a test-only module: the loader needs only its Spec.
type fakeModule struct{ spec tasks.Spec }

func (f fakeModule) Spec() tasks.Spec { return f.spec }
func (f fakeModule) Run(context.Context, *tasks.Host, map[string]any) (tasks.Outcome, error) {
	return tasks.Outcome{}, nil
}

func init() {
	for _, s := range []tasks.Spec{
		{Name: "fx_shell", FreeForm: "cmd", Params: map[string]tasks.Param{
			"cmd": {Type: tasks.String, Required: true}, "chdir": {Type: tasks.String}, "creates": {Type: tasks.String}}},
		{Name: "fx_copy", Params: map[string]tasks.Param{
			"src": {Type: tasks.String}, "content": {Type: tasks.String}, "dest": {Type: tasks.String, Required: true},
			"mode": {Type: tasks.String}, "backup": {Type: tasks.Bool}},
			OneOf: [][]string{{"src", "content"}}},
		{Name: "fx_svc", Params: map[string]tasks.Param{
			"name":    {Type: tasks.String, Required: true},
			"state":   {Type: tasks.String, Choices: []string{"started", "stopped", "restarted", "reloaded"}},
			"enabled": {Type: tasks.Bool}, "timeout": {Type: tasks.Duration}, "retries": {Type: tasks.Int}}},
		{Name: "fx_assert", Params: map[string]tasks.Param{
			"that": {Type: tasks.Expr, Required: true}, "msg": {Type: tasks.String}}},
		{Name: "fx_http", Params: map[string]tasks.Param{
			"url": {Type: tasks.String, Required: true}, "status": {Type: tasks.Int}, "json": {Type: tasks.Map},
			"retries": {Type: tasks.Int}, "delay": {Type: tasks.Duration}}},
		{Name: "fx_asg", Controller: true, Params: map[string]tasks.Param{
			"suspend": {Type: tasks.List}, "resume": {Type: tasks.List}}},
		{Name: "fx_debug", Params: map[string]tasks.Param{"msg": {Type: tasks.Any}}},
	} {
		tasks.Register(fakeModule{spec: s})
	}
	tasks.Register(envModule{})
	if _, ok := tasks.Lookup("set_fact"); !ok {
		tasks.Register(fakeModule{spec: tasks.Spec{Name: "set_fact", AnyParams: true}})
	}
}

// connModule runs one command on the host: fx_run runs its cmd; fx_stop
// and fx_start run "stop NAME" and "start NAME" and, like systemd, journal
// a stopped unit (Spec.Leaves) and close it when started (Spec.Restores).
type connModule struct {
	spec tasks.Spec
	cmd  func(args map[string]any) string
}

func (m connModule) Spec() tasks.Spec { return m.spec }

func (m connModule) Run(ctx context.Context, h *tasks.Host, args map[string]any) (tasks.Outcome, error) {
	cmd := m.cmd(args)
	if h.Check {
		return tasks.Outcome{Changed: true, Msg: "would run " + cmd}, nil
	}
	res, err := h.Conn.Run(ctx, cmd, h.Become)
	if err != nil {
		return tasks.Outcome{}, err
	}
	if res.ExitCode != 0 {
		return tasks.Outcome{Failed: true, Msg: strings.TrimSpace(string(res.Stderr)), Result: map[string]any{"rc": res.ExitCode}}, nil
	}
	return tasks.Outcome{Changed: true, Msg: cmd, Result: map[string]any{"rc": 0, "stdout": strings.TrimSpace(string(res.Stdout))}}, nil
}

func init() {
	name := func(args map[string]any) string { s, _ := args["name"].(string); return s }
	unit := map[string]tasks.Param{"name": {Type: tasks.String, Required: true}}
	tasks.Register(connModule{
		spec: tasks.Spec{Name: "fx_run", FreeForm: "cmd", Params: map[string]tasks.Param{"cmd": {Type: tasks.String, Required: true}}},
		cmd:  func(args map[string]any) string { s, _ := args["cmd"].(string); return s },
	})
	tasks.Register(connModule{
		spec: tasks.Spec{Name: "fx_stop", Params: unit, Leaves: func(args, _ map[string]any) (tasks.Change, bool) {
			n := name(args)
			return tasks.Change{Key: "unit:" + n, What: "unit " + n + " stopped", Module: "fx_start", Args: map[string]any{"name": n}}, n != ""
		}},
		cmd: func(args map[string]any) string { return "stop " + name(args) },
	})
	tasks.Register(connModule{
		spec: tasks.Spec{Name: "fx_start", Params: unit, Restores: func(args map[string]any) []string {
			return []string{"unit:" + name(args)}
		}},
		cmd: func(args map[string]any) string { return "start " + name(args) },
	})
}

// envModule returns the environment the runner gave the task, as `env`.
type envModule struct{}

func (envModule) Spec() tasks.Spec { return tasks.Spec{Name: "fx_env", Controller: true} }
func (envModule) Run(_ context.Context, h *tasks.Host, _ map[string]any) (tasks.Outcome, error) {
	env := map[string]any{}
	for k, v := range h.Become.Env {
		env[k] = v
	}
	return tasks.Outcome{Result: map[string]any{"env": env}}, nil
}

package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

func init() { Register(debugModule{}) }

// debugModule prints a message or a variable's value.
type debugModule struct{}

func (debugModule) Spec() Spec {
	return Spec{
		Name:       "debug",
		Doc:        "Print a message or the value of an expression",
		Controller: true,
		FreeForm:   "msg",
		Params: map[string]Param{
			"msg": {Type: Any, Doc: "message to print"},
			"var": {Type: String, Doc: "expression whose value to print"},
		},
		OneOf: [][]string{{"msg", "var"}},
	}
}

func (debugModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("debug", args)
	if a.Has("var") {
		expr := a.String("var", "")
		if err := a.Err(); err != nil {
			return Outcome{}, err
		}
		if h.Eval == nil {
			return Outcome{}, errors.New("debug: no expression evaluator for this task")
		}
		v, err := h.Eval(expr)
		if err != nil {
			return Outcome{Failed: true, Msg: fmt.Sprintf("debug %s: %v", expr, err)}, nil
		}
		return Outcome{Msg: expr + " = " + show(v), Result: map[string]any{expr: v}}, nil
	}
	v := a.Raw("msg")
	if v == nil {
		v = "Hello world!"
	}
	return Outcome{Msg: show(v), Result: map[string]any{"msg": v}}, nil
}

// show prints a value on one line: strings as they are, the rest as JSON.
func show(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

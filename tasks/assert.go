package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

func init() { Register(assertModule{}) }

// assertModule checks expressions against the task's variables.
type assertModule struct{}

func (assertModule) Spec() Spec {
	return Spec{
		Name:       "assert",
		Doc:        "Fail the host unless every expression is true",
		Controller: true,
		Params: map[string]Param{
			"that":        {Type: Expr, Required: true, Doc: "expressions that must all be true (one or a list)"},
			"fail_msg":    {Type: String, Doc: "message when one is false"},
			"success_msg": {Type: String, Doc: "message when all are true"},
			"quiet":       {Type: Bool, Doc: "do not list the checked expressions"},
		},
	}
}

func (assertModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("assert", args)
	that := a.StringList("that")
	failMsg, okMsg := a.String("fail_msg", ""), a.String("success_msg", "")
	quiet := a.Bool("quiet", false)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if h.Eval == nil {
		return Outcome{}, errors.New("assert: no expression evaluator for this task")
	}
	for _, expr := range that {
		v, err := h.Eval(expr)
		if err != nil {
			return Outcome{Failed: true, Msg: fmt.Sprintf("assert %s: %v", expr, err), Result: map[string]any{"assertion": expr}}, nil
		}
		b, ok := v.(bool)
		if !ok {
			return Outcome{Failed: true, Msg: fmt.Sprintf("assert %s: got %v (%T), want true or false", expr, v, v), Result: map[string]any{"assertion": expr}}, nil
		}
		if !b {
			msg := failMsg
			if msg == "" {
				msg = "assertion failed: " + expr
			}
			return Outcome{Failed: true, Msg: msg, Result: map[string]any{"assertion": expr, "evaluated_to": false, "msg": msg}}, nil
		}
	}
	msg := okMsg
	if msg == "" {
		msg = "all assertions passed"
		if !quiet {
			msg += ": " + strings.Join(that, "; ")
		}
	}
	return Outcome{Msg: msg, Result: map[string]any{"msg": msg}}, nil
}

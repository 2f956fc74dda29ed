package tasks

import "context"

func init() { Register(failModule{}) }

// failModule fails the host with a message.
type failModule struct{}

func (failModule) Spec() Spec {
	return Spec{
		Name:       "fail",
		Doc:        "Fail the host with a message",
		Controller: true,
		FreeForm:   "msg",
		Params:     map[string]Param{"msg": {Type: String, Doc: "why"}},
	}
}

func (failModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("fail", args)
	msg := a.String("msg", "failed as requested")
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	return Outcome{Failed: true, Msg: msg, Result: map[string]any{"msg": msg}}, nil
}

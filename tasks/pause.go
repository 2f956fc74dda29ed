package tasks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydeploy/ferry/internal/value"
)

func init() { Register(pauseModule{}) }

// pauseModule waits a fixed time, or until the operator approves.
type pauseModule struct{}

// maxPause bounds a timed pause: a typo must not park a rollout for days.
const maxPause = 24 * time.Hour

func (pauseModule) Spec() Spec {
	return Spec{
		Name:       "pause",
		Doc:        "Wait a fixed time, or until the operator approves (the TUI, a terminal prompt, or --yes)",
		Controller: true,
		// Without seconds or minutes, pause asks the operator.
		Approval: func(args map[string]any) bool { return args["seconds"] == nil && args["minutes"] == nil },
		Params: map[string]Param{
			"prompt":  {Type: String, Doc: "what the operator approves"},
			"seconds": {Type: Duration, Doc: "wait this long instead of asking"},
			"minutes": {Type: Any, Doc: "wait this many minutes instead of asking"},
		},
	}
}

func (pauseModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("pause", args)
	prompt := a.String("prompt", "Continue the rollout?")
	d := a.Duration("seconds", 0)
	if a.Has("minutes") {
		m, ok := toFloat(a.Raw("minutes"))
		if !ok || m < 0 {
			return Outcome{}, errors.New("pause: minutes: want a number")
		}
		d += time.Duration(m * float64(time.Minute))
	}
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	timed := a.Has("seconds") || a.Has("minutes")
	if d > maxPause {
		return Outcome{}, fmt.Errorf("pause: %s is longer than %s", d, maxPause)
	}
	if timed {
		if h.Check {
			return Outcome{Msg: fmt.Sprintf("check mode: would pause %s", d)}, nil
		}
		select {
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		case <-time.After(d):
		}
		return Outcome{Msg: fmt.Sprintf("paused %s", d), Result: map[string]any{"delta": d.Seconds()}}, nil
	}
	if h.Check {
		return Outcome{Msg: "check mode: would ask: " + prompt}, nil
	}
	if h.Controller == nil || h.Controller.Approve == nil {
		return Outcome{Failed: true, Msg: "pause needs an operator: run in a terminal, or pass --yes to approve"}, nil
	}
	ok, err := h.Controller.Approve(ctx, prompt)
	if err != nil {
		return Outcome{}, fmt.Errorf("pause: %w", err)
	}
	if !ok {
		return Outcome{Failed: true, Msg: "aborted by the operator: " + prompt, Result: map[string]any{"approved": false}}, nil
	}
	return Outcome{Msg: "approved: " + prompt, Result: map[string]any{"approved": true}}, nil
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	if n, ok := value.Int(v); ok {
		return float64(n), true
	}
	return 0, false
}

package tasks

import (
	"context"
	"fmt"
)

func init() { Register(waitForConnectionModule{}) }

// waitForConnectionModule is Ansible's wait_for_connection: the host answers
// a command over its connection (ferry's preflight already connected it).
type waitForConnectionModule struct{}

func (waitForConnectionModule) Spec() Spec {
	return Spec{
		Name: "wait_for_connection",
		Doc:  "Wait until the host answers a command over its SSH connection (after a reboot or a restart of sshd)",
		Params: map[string]Param{
			"timeout":         {Type: Duration, Doc: "give up after (default 600s)"},
			"delay":           {Type: Duration, Doc: "accepted for Ansible"},
			"sleep":           {Type: Duration, Doc: "accepted for Ansible"},
			"connect_timeout": {Type: Duration, Doc: "accepted for Ansible"},
		},
	}
}

func (waitForConnectionModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("wait_for_connection", args)
	timeout := a.Duration("timeout", 600_000_000_000)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := h.Conn.Run(ctx, "true", RunOptions{})
	if err != nil || res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: fmt.Sprintf("the host does not answer: %v", err)}, nil
	}
	return Outcome{Msg: "connected"}, nil
}

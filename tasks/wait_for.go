package tasks

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/ferrydeploy/ferry/internal/shell"
)

func init() { Register(waitForModule{}) }

// waitForModule waits, bounded by timeout, for a port on the host to open
// or close (dialled through the SSH connection) or for a path to appear or
// go away (one remote loop, not one round trip per check).
type waitForModule struct{}

func (waitForModule) Spec() Spec {
	return Spec{
		Name: "wait_for",
		Doc:  "Wait on the host until a port accepts connections (or stops), or a path appears (or goes)",
		Params: map[string]Param{
			"port":            {Type: Int, Doc: "TCP port, dialled from the host"},
			"host":            {Type: String, Doc: "address to dial, as seen from the host (default 127.0.0.1)"},
			"path":            {Type: String, Doc: "file or directory on the host"},
			"state":           {Type: String, Choices: []string{"started", "stopped", "present", "absent"}, Doc: "started/stopped for a port, present/absent for a path"},
			"timeout":         {Type: Duration, Doc: "give up after (default 300s)"},
			"delay":           {Type: Duration, Doc: "wait this long before the first check"},
			"sleep":           {Type: Duration, Doc: "between checks (default 1s)"},
			"connect_timeout": {Type: Duration, Doc: "per connection attempt (default 5s)"},
		},
	}
}

func (waitForModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("wait_for", args)
	port := a.Int("port", 0)
	host := a.String("host", "127.0.0.1")
	p := a.String("path", "")
	state := a.String("state", "")
	timeout := a.Duration("timeout", 300*time.Second)
	delay := a.Duration("delay", 0)
	interval := a.Duration("sleep", time.Second)
	connTimeout := a.Duration("connect_timeout", 5*time.Second)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if port != 0 && p != "" {
		return Outcome{}, errors.New("wait_for: give port or path, not both")
	}
	if port == 0 && p == "" {
		// Ansible's wait_for with neither: sleep delay, then timeout
		if h.Check {
			return Outcome{Skipped: true, Msg: fmt.Sprintf("check mode: would sleep %s", delay+timeout)}, nil
		}
		t := time.NewTimer(delay + timeout)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		case <-t.C:
		}
		return Outcome{Msg: fmt.Sprintf("slept %s", delay+timeout), Result: map[string]any{"elapsed": (delay + timeout).Seconds()}}, nil
	}
	if port != 0 && (port < 1 || port > 65535) {
		return Outcome{}, fmt.Errorf("wait_for: port %d is out of range", port)
	}
	if interval <= 0 {
		interval = time.Second
	}
	if state == "" {
		state = map[bool]string{true: "started", false: "present"}[port != 0]
	}
	if port != 0 && state != "started" && state != "stopped" || p != "" && state != "present" && state != "absent" {
		return Outcome{}, fmt.Errorf("wait_for: state %s does not apply to a %s", state, map[bool]string{true: "port (started, stopped)", false: "path (present, absent)"}[port != 0])
	}
	what := p
	if port != 0 {
		what = net.JoinHostPort(host, strconv.Itoa(port))
	}
	if h.Check {
		return Outcome{Skipped: true, Msg: fmt.Sprintf("check mode: would wait for %s to be %s", what, state)}, nil
	}
	if h.Conn == nil {
		return Outcome{}, errors.New("wait_for: no connection to the host")
	}
	start := time.Now()
	if delay > 0 {
		select {
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		case <-time.After(delay):
		}
	}
	result := map[string]any{"state": state}
	if port != 0 {
		result["port"], result["host"] = port, host
		ok, err := waitPort(ctx, h, what, state == "started", timeout, interval, connTimeout)
		result["elapsed"] = time.Since(start).Seconds()
		if err != nil {
			return Outcome{}, fmt.Errorf("wait_for %s: %w", what, err)
		}
		if !ok {
			return Outcome{Failed: true, Msg: fmt.Sprintf("%s is not %s after %s", what, state, timeout), Result: result}, nil
		}
		return Outcome{Msg: fmt.Sprintf("%s is %s", what, state), Result: result}, nil
	}
	result["path"] = p
	polls := int(math.Ceil(timeout.Seconds() / interval.Seconds()))
	if polls < 1 {
		polls = 1
	}
	test := `[ -e "$p" ]`
	if state == "absent" {
		test = `[ ! -e "$p" ]`
	}
	cmd := fmt.Sprintf(`p=%s; i=0; while ! %s; do i=$((i+1)); [ $i -ge %d ] && exit 3; sleep %s; done; exit 0`,
		shell.Quote(p), test, polls, strconv.FormatFloat(interval.Seconds(), 'f', -1, 64))
	res, err := runOn(ctx, h, cmd, false)
	result["elapsed"] = time.Since(start).Seconds()
	if err != nil {
		return Outcome{}, fmt.Errorf("wait_for %s: %w", p, err)
	}
	switch res.ExitCode {
	case 0:
		return Outcome{Msg: fmt.Sprintf("%s is %s", p, state), Result: result}, nil
	case 3:
		return Outcome{Failed: true, Msg: fmt.Sprintf("%s is not %s after %s", p, state, timeout), Result: result}, nil
	}
	return Outcome{Failed: true, Msg: failMsg("wait for "+p, res), Result: result}, nil
}

// waitPort dials addr from the host until it answers (open) or refuses
// (!open), at most until timeout.
func waitPort(ctx context.Context, h *Host, addr string, open bool, timeout, interval, connTimeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		dctx, cancel := context.WithTimeout(ctx, connTimeout)
		c, err := h.Conn.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if (err == nil) == open {
			return true, nil
		}
		if !time.Now().Add(interval).Before(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(interval):
		}
	}
}

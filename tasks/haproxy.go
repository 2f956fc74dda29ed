package tasks

import (
	"context"
	"encoding/csv"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ferrydeploy/ferry/internal/shell"
)

func init() { Register(haproxyModule{}) }

// haproxyModule takes a server out of an HAProxy backend and puts it back,
// through HAProxy's admin socket on the host the task runs on (usually the
// load balancer, with delegate_to), as Ansible's community.general.haproxy
// does. The socket is spoken to with socat, perl or nc -U, whichever the
// host has, so nothing needs installing and become applies as for shell.
type haproxyModule struct{}

func (haproxyModule) Spec() Spec {
	return Spec{
		Name:    "haproxy",
		Service: true,
		Doc:     "Drain, disable or enable a server in HAProxy backends through the admin socket (delegate_to the load balancer), optionally waiting until HAProxy reports the new state",
		Params: map[string]Param{
			"state":             {Type: String, Required: true, Choices: []string{"enabled", "disabled", "drain"}, Doc: "enabled: back in service; drain: no new sessions; disabled: maintenance"},
			"host":              {Type: String, Required: true, Doc: "the server's name in the HAProxy configuration"},
			"backend":           {Type: String, Doc: "the backend; default: every backend that has the server"},
			"socket":            {Type: String, Default: "/var/run/haproxy.sock", Doc: "path of HAProxy's admin socket (stats socket ... level admin)"},
			"wait":              {Type: Bool, Default: "false", Doc: "wait until HAProxy reports the state (drain and disabled with drain: also until no session is left)"},
			"wait_interval":     {Type: Duration, Default: "5s", Doc: "time between two looks at the server's state"},
			"wait_retries":      {Type: Int, Default: "25", Doc: "how many times to look before failing"},
			"drain":             {Type: Bool, Default: "false", Doc: "state: disabled drains the server first (with wait: until its sessions are gone)"},
			"shutdown_sessions": {Type: Bool, Default: "false", Doc: "state: disabled also closes the server's open sessions"},
			"fail_on_not_found": {Type: Bool, Default: "false", Doc: "fail when the server is not in the backend (default: report it and change nothing)"},
			"weight":            {Type: String, Doc: "also set the server's weight (a number, or a percentage of its configured weight like 50%)"},
			"agent":             {Type: Bool, Default: "false", Doc: "also enable/disable the server's agent checks"},
			"health":            {Type: Bool, Default: "false", Doc: "also enable/disable the server's health checks"},
		},
		Returns: map[string]string{
			"backends": "the backends the server was found in",
			"status":   "backend → the server's status as HAProxy reports it after the task",
		},
	}
}

// haproxyServer is one line of `show stat` for a server.
type haproxyServer struct {
	status, scur, weight string
}

type haproxyCall struct {
	h                  *Host
	sock, server       string
	state              string
	wait, drain        bool
	interval           time.Duration
	retries            int
	shutdown, notFound bool
	weight             string
	agent, health      bool
}

func (haproxyModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("haproxy", args)
	c := haproxyCall{h: h}
	c.state = a.String("state", "")
	c.server = a.String("host", "")
	backend := a.String("backend", "")
	c.sock = a.String("socket", "/var/run/haproxy.sock")
	c.wait, c.drain = a.Bool("wait", false), a.Bool("drain", false)
	c.interval = a.Duration("wait_interval", 5*time.Second)
	c.retries = a.Int("wait_retries", 25)
	c.shutdown, c.notFound = a.Bool("shutdown_sessions", false), a.Bool("fail_on_not_found", false)
	c.weight = a.String("weight", "")
	c.agent, c.health = a.Bool("agent", false), a.Bool("health", false)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if c.server == "" {
		return Outcome{}, fmt.Errorf("haproxy: host (the server's name in HAProxy) is required")
	}
	if c.retries < 1 || c.retries > 10000 {
		return Outcome{}, fmt.Errorf("haproxy: wait_retries must be between 1 and 10000")
	}
	if strings.ContainsAny(c.server+backend+c.weight, " \t\n;/") {
		return Outcome{}, fmt.Errorf("haproxy: host, backend and weight must not contain spaces, ; or /")
	}

	stats, out, err := c.show(ctx)
	if err != nil || out.Failed {
		return out, err
	}
	var backends, missing []string
	if backend != "" {
		if _, ok := stats[backend]; ok {
			backends = []string{backend}
		} else {
			missing = []string{backend}
		}
	} else {
		for b := range stats {
			backends = append(backends, b)
		}
		sort.Strings(backends)
	}
	result := map[string]any{"backends": toAnyList(backends), "status": c.statusMap(stats, backends)}
	if len(backends) == 0 {
		where := "any backend"
		if backend != "" {
			where = "backend " + strings.Join(missing, ", ")
		}
		msg := fmt.Sprintf("server %s is not in %s of %s", c.server, where, c.sock)
		if c.notFound {
			return Outcome{Failed: true, Msg: msg + ": check host and backend against the HAProxy configuration", Result: result}, nil
		}
		return Outcome{Msg: msg + "; nothing to do", Result: result}, nil
	}

	var pre, cmds, todo []string // pre: drain before disabling
	for _, b := range backends {
		s := stats[b]
		id := b + "/" + c.server
		switch c.state {
		case "enabled":
			if c.agent {
				cmds = append(cmds, "enable agent "+id)
			}
			if c.health {
				cmds = append(cmds, "enable health "+id)
			}
			if !c.reached(s, "enabled") {
				cmds = append(cmds, "set server "+id+" state ready")
			}
		case "drain":
			if !c.reached(s, "drain") {
				cmds = append(cmds, "set server "+id+" state drain")
			}
		case "disabled":
			if c.agent {
				cmds = append(cmds, "disable agent "+id)
			}
			if c.health {
				cmds = append(cmds, "disable health "+id)
			}
			if !c.reached(s, "disabled") {
				if c.drain && !c.reached(s, "drain") {
					pre = append(pre, "set server "+id+" state drain")
				}
				cmds = append(cmds, "disable server "+id)
			}
			if c.shutdown {
				cmds = append(cmds, "shutdown sessions server "+id)
			}
		}
		// A percentage is relative to the configured weight, which show
		// stat does not give: it is always sent.
		weightChange := c.weight != "" && (strings.HasSuffix(c.weight, "%") || c.weight != s.weight)
		if weightChange {
			cmds = append(cmds, "set weight "+id+" "+c.weight)
		}
		// agent/health/shutdown_sessions alone do not count as a change.
		if !c.reached(s, c.state) || weightChange {
			todo = append(todo, b)
		}
	}
	if len(todo) == 0 && !c.wait && len(cmds)+len(pre) == 0 {
		return Outcome{Msg: fmt.Sprintf("server %s is %s in %s", c.server, c.state, strings.Join(backends, ", ")), Result: result}, nil
	}
	if h.Check {
		if len(todo) == 0 {
			return Outcome{Msg: fmt.Sprintf("server %s is %s in %s", c.server, c.state, strings.Join(backends, ", ")), Result: result}, nil
		}
		return Outcome{Changed: true, Msg: checkMsg("set server %s %s in %s", c.server, c.state, strings.Join(todo, ", ")),
			Diff: strings.Join(append(pre, cmds...), "\n") + "\n", Result: result}, nil
	}
	if len(pre) > 0 {
		if out, err := c.send(ctx, pre); err != nil || out.Failed {
			out.Result = result
			return out, err
		}
		if c.wait {
			// Sessions finish on the draining server before it goes down.
			if _, out, err := c.waitFor(ctx, backends, "drain"); err != nil || out.Failed {
				out.Result = result
				return out, err
			}
		}
	}
	if len(cmds) > 0 {
		if out, err := c.send(ctx, cmds); err != nil || out.Failed {
			out.Result = result
			return out, err
		}
	}
	if c.wait {
		stats, out, err = c.waitFor(ctx, backends, c.state)
		if err != nil || out.Failed {
			if out.Result == nil {
				out.Result = result
			}
			return out, err
		}
	} else if stats, out, err = c.show(ctx); err != nil || out.Failed {
		return out, err
	}
	result["status"] = c.statusMap(stats, backends)
	if len(todo) == 0 {
		return Outcome{Msg: fmt.Sprintf("server %s is %s in %s", c.server, c.state, strings.Join(backends, ", ")), Result: result}, nil
	}
	return Outcome{Changed: true, Msg: fmt.Sprintf("server %s %s in %s", c.server, c.state, strings.Join(todo, ", ")),
		Diff: strings.Join(append(pre, cmds...), "\n") + "\n", Result: result}, nil
}

// reached reports whether a server's status is what state asks for;
// HAProxy's status may carry more ("UP 1/3", "MAINT (via b/s)").
func (c *haproxyCall) reached(s haproxyServer, state string) bool {
	switch state {
	case "enabled":
		return !strings.Contains(s.status, "MAINT") && !strings.Contains(s.status, "DRAIN")
	case "drain":
		return strings.Contains(s.status, "DRAIN")
	default:
		return strings.Contains(s.status, "MAINT")
	}
}

// settled is reached plus, for wait: UP (or no checks) when enabling, and
// no sessions left when draining.
func (c *haproxyCall) settled(s haproxyServer, state string) bool {
	if !c.reached(s, state) {
		return false
	}
	switch {
	case state == "enabled":
		return strings.Contains(s.status, "UP") || s.status == "no check"
	case state == "drain", state == "disabled" && c.drain:
		return s.scur == "0" || s.scur == ""
	}
	return true
}

// waitFor looks at the server's state up to wait_retries times, wait_interval apart.
func (c *haproxyCall) waitFor(ctx context.Context, backends []string, state string) (map[string]haproxyServer, Outcome, error) {
	var stats map[string]haproxyServer
	for i := 0; i < c.retries; i++ {
		var out Outcome
		var err error
		if stats, out, err = c.show(ctx); err != nil || out.Failed {
			return nil, out, err
		}
		done := true
		for _, b := range backends {
			if !c.settled(stats[b], state) {
				done = false
			}
		}
		if done {
			return stats, Outcome{}, nil
		}
		if i == c.retries-1 {
			break
		}
		t := time.NewTimer(c.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, Outcome{}, ctx.Err()
		case <-t.C:
		}
	}
	var left []string
	for _, b := range backends {
		if s := stats[b]; !c.settled(s, state) {
			left = append(left, fmt.Sprintf("%s/%s is %q with %s sessions", b, c.server, s.status, s.scur))
		}
	}
	return stats, Outcome{Failed: true, Msg: fmt.Sprintf("server not %s after %d looks %s apart: %s (raise wait_retries or wait_interval, or check the server)",
		state, c.retries, c.interval, strings.Join(left, "; "))}, nil
}

func (c *haproxyCall) statusMap(stats map[string]haproxyServer, backends []string) map[string]any {
	m := map[string]any{}
	for _, b := range backends {
		if s, ok := stats[b]; ok {
			m[b] = s.status
		}
	}
	return m
}

// haproxyClient defines hx, which sends one command to the socket $s and
// prints the answer, with whichever client the host has.
const haproxyClient = `[ -S "$s" ] || { echo "$s is not a socket: give socket: the path of HAProxy's admin socket (stats socket ... level admin)" >&2; exit 3; }; ` +
	`if command -v socat >/dev/null 2>&1; then hx() { printf '%s\n' "$1" | socat -t 10 stdio "UNIX-CONNECT:$s"; }; ` +
	`elif command -v perl >/dev/null 2>&1; then hx() { perl -MIO::Socket::UNIX -e '$c = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect $ARGV[0]: $!\n"; print $c "$ARGV[1]\n"; shutdown($c, 1); print while <$c>;' "$s" "$1"; }; ` +
	`elif command -v nc >/dev/null 2>&1; then hx() { printf '%s\n' "$1" | nc -U "$s"; }; ` +
	`else echo "the host has no socat, perl or nc to talk to $s: install socat" >&2; exit 3; fi; `

// show reads `show stat` and returns the server's line per backend.
func (c *haproxyCall) show(ctx context.Context) (map[string]haproxyServer, Outcome, error) {
	res, err := runOn(ctx, c.h, "s="+shell.Quote(c.sock)+"; "+haproxyClient+`hx "show stat"`, false)
	if err != nil {
		return nil, Outcome{}, fmt.Errorf("haproxy: read %s: %w", c.sock, err)
	}
	if res.ExitCode != 0 {
		return nil, Outcome{Failed: true, Msg: failMsg("haproxy show stat", res)}, nil
	}
	stats, err := parseHAProxyStat(string(res.Stdout), c.server)
	if err != nil {
		return nil, Outcome{Failed: true, Msg: fmt.Sprintf("haproxy: %s: %v", c.sock, err)}, nil
	}
	return stats, Outcome{}, nil
}

// send runs each command, failing on the first one HAProxy answers (it
// answers nothing when a command works).
func (c *haproxyCall) send(ctx context.Context, cmds []string) (Outcome, error) {
	var b strings.Builder
	b.WriteString("s=" + shell.Quote(c.sock) + "; " + haproxyClient)
	for _, cmd := range cmds {
		fmt.Fprintf(&b, `r=$(hx %s) || exit 1; if [ -n "$(printf '%%s' "$r" | tr -d '[:space:]')" ]; then printf '%%s: %%s\n' %s "$r" >&2; exit 2; fi; `,
			shell.Quote(cmd), shell.Quote(cmd))
	}
	b.WriteString("exit 0")
	res, err := runOn(ctx, c.h, b.String(), false)
	if err != nil {
		return Outcome{}, fmt.Errorf("haproxy: %s: %w", c.sock, err)
	}
	if res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: failMsg("haproxy", res)}, nil
	}
	return Outcome{}, nil
}

// parseHAProxyStat reads `show stat` CSV (a "# pxname,svname,..." header)
// and returns server's line per backend.
func parseHAProxyStat(text, server string) (map[string]haproxyServer, error) {
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, "# ") {
		first, _, _ := strings.Cut(text, "\n")
		return nil, fmt.Errorf("unexpected answer to show stat: %q (is it the admin socket?)", first)
	}
	r := csv.NewReader(strings.NewReader(text[2:]))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("show stat: %w", err)
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	for _, need := range []string{"pxname", "svname", "status"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("show stat has no %s column", need)
		}
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	out := map[string]haproxyServer{}
	for _, rec := range recs[1:] {
		if get(rec, "svname") == server {
			out[get(rec, "pxname")] = haproxyServer{status: get(rec, "status"), scur: get(rec, "scur"), weight: get(rec, "weight")}
		}
	}
	return out, nil
}

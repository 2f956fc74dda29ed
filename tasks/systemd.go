package tasks

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ferrydeploy/ferry/internal/shell"
)

func init() { Register(systemdModule{}) }

// systemdModule drives systemctl on the host. Like Ansible it adds no
// become of its own: tasks set `become: true`. The whole job (reload,
// enable, act, wait until `is-active` agrees) is one remote command.
type systemdModule struct{}

func (systemdModule) Spec() Spec {
	return Spec{
		Name: "systemd",
		Doc:  "Start, stop, restart or reload a systemd unit, enable it at boot, and daemon-reload",
		Params: map[string]Param{
			"name":          {Type: String, Doc: "unit name (api or api.service)"},
			"state":         {Type: String, Choices: []string{"started", "stopped", "restarted", "reloaded"}, Doc: "what to do with the unit (restarted and reloaded always act)"},
			"enabled":       {Type: Bool, Doc: "start at boot"},
			"daemon_reload": {Type: Bool, Doc: "systemctl daemon-reload first (after changing unit files)"},
			"wait_timeout":  {Type: Duration, Doc: "how long to wait for is-active to agree (default 60s)"},
		},
		Leaves:   systemdLeaves,
		Restores: systemdRestores,
	}
}

// systemdLeaves: a stopped unit is started again if the run dies.
func systemdLeaves(args, _ map[string]any) (Change, bool) {
	name, _ := args["name"].(string)
	if state, _ := args["state"].(string); state != "stopped" || name == "" {
		return Change{}, false
	}
	return Change{Key: unitPrefix + unitName(name), What: "unit " + unitName(name) + " stopped",
		Module: "systemd", Args: map[string]any{"name": name, "state": "started"}}, true
}

func systemdRestores(args map[string]any) []string {
	name, _ := args["name"].(string)
	switch state, _ := args["state"].(string); state {
	case "started", "restarted", "reloaded":
		return []string{unitPrefix + unitName(name)}
	}
	return nil
}

// unitPrefix starts the Change key of a stopped unit.
const unitPrefix = "unit:"

func unitName(n string) string { return strings.TrimSuffix(n, ".service") }

func (systemdModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("systemd", args)
	name := a.String("name", "")
	state := a.String("state", "")
	reload := a.Bool("daemon_reload", false)
	hasEnabled := a.Has("enabled")
	enabled := a.Bool("enabled", false)
	wait := a.Duration("wait_timeout", 60*time.Second)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if name == "" && !(reload && state == "" && !hasEnabled) {
		return Outcome{}, fmt.Errorf("systemd: name is required")
	}
	if strings.HasPrefix(name, "-") || strings.ContainsAny(name, "\n\x00") {
		return Outcome{}, fmt.Errorf("systemd: %q is not a unit name", name)
	}
	if state == "" && !hasEnabled && !reload {
		return Outcome{}, fmt.Errorf("systemd: nothing to do: give state, enabled or daemon_reload")
	}
	script := systemdScript(name, state, hasEnabled, enabled, reload, wait, h.Check)
	res, err := runOn(ctx, h, script, false)
	if err != nil {
		return Outcome{}, fmt.Errorf("systemd %s: %w", name, err)
	}
	var changes []string
	active := ""
	missing := false
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		if c, ok := strings.CutPrefix(l, "changed: "); ok {
			changes = append(changes, c)
		} else if s, ok := strings.CutPrefix(l, "state: "); ok {
			active = s
		} else if strings.HasPrefix(l, "missing: ") {
			missing = true
		}
	}
	result := map[string]any{"name": name, "state": active, "changes": toAnyList(changes)}
	if hasEnabled {
		result["enabled"] = enabled
	}
	if missing {
		// --check: an earlier task may install the unit, which --check did not do.
		result["found"] = false
		return Outcome{Msg: fmt.Sprintf("unit %s does not exist on the host: the run fails here unless an earlier task installs it", name), Result: result}, nil
	}
	if res.ExitCode != 0 {
		msg := lastLine(res.Stderr)
		if msg == "" {
			msg = failMsg("systemctl", res)
		}
		// Exit 3: the unit does not exist, so nothing was stopped.
		return Outcome{Failed: true, Untouched: res.ExitCode == 3, Msg: msg, Result: result, Diff: strings.Join(changes, "\n")}, nil
	}
	if len(changes) == 0 {
		return Outcome{Msg: fmt.Sprintf("%s is %s", name, orNone(active)), Result: result}, nil
	}
	msg := name + ": " + strings.Join(changes, ", ")
	if h.Check {
		msg = "would change " + msg
	}
	return Outcome{Changed: true, Msg: msg, Diff: strings.Join(changes, "\n") + "\n", Result: result}, nil
}

// systemdScript prints "changed: X" for each change and "state: Y" (the
// final is-active answer); it fails with a message on stderr when a unit
// is missing or does not reach the state in time.
func systemdScript(name, state string, hasEnabled, enabled, reload bool, wait time.Duration, check bool) string {
	var b strings.Builder
	c := "0"
	if check {
		c = "1"
	}
	polls := int(math.Ceil(wait.Seconds() / 0.2))
	if polls < 1 {
		polls = 1
	}
	fmt.Fprintf(&b, "c=%s; u=%s; ", c, shell.Quote(name))
	b.WriteString(`ch() { echo "changed: $*"; }; ` +
		`act() { [ "$c" = 1 ] && return 0; out=$(systemctl "$@" 2>&1) || { [ -n "$out" ] && echo "$out" >&2; echo "systemctl $* failed" >&2; exit 1; }; }; `)
	if reload {
		b.WriteString(`act daemon-reload; `)
	}
	if name == "" {
		b.WriteString("exit 0")
		return b.String()
	}
	// A unit that does not exist fails at once, not after the wait.
	// One call reads whether the unit exists, its state (ActiveState
	// is what is-active prints) and its type; is-active only when show
	// said nothing.
	b.WriteString(`l=; a=; ty=; for kv in $(systemctl show -p LoadState -p ActiveState -p Type "$u" 2>/dev/null); do case $kv in LoadState=*) l=${kv#*=};; ActiveState=*) a=${kv#*=};; Type=*) ty=${kv#*=};; esac; done; ` +
		`if [ "$l" = not-found ]; then if [ "$c" = 1 ]; then echo "missing: $u"; exit 0; fi; echo "unit $u not found: check the name (systemctl list-unit-files)" >&2; exit 3; fi; `)
	if hasEnabled {
		b.WriteString(`e=$(systemctl is-enabled "$u" 2>/dev/null) || true; `)
		if enabled {
			b.WriteString(`case "$e" in enabled|enabled-runtime|alias|static|indirect|generated) ;; *) ch "enabled"; act enable "$u";; esac; `)
		} else {
			b.WriteString(`case "$e" in enabled|enabled-runtime) ch "disabled"; act disable "$u";; esac; `)
		}
	}
	b.WriteString(`[ -n "$a" ] || a=$(systemctl is-active "$u" 2>/dev/null) || true; `)
	if state == "" {
		b.WriteString(`echo "state: $a"; exit 0`)
		return b.String()
	}
	want := "active"
	switch state {
	case "started":
		b.WriteString(`case "$a" in active|activating|reloading) ;; *) ch "started"; act start "$u";; esac; `)
	case "stopped":
		want = "inactive"
		b.WriteString(`case "$a" in active|activating|reloading|deactivating) ch "stopped"; act stop "$u";; esac; `)
	case "restarted":
		b.WriteString(`ch "restarted"; act restart "$u"; `)
	case "reloaded":
		b.WriteString(`if [ "$a" = active ]; then ch "reloaded"; act reload "$u"; else ch "started"; act start "$u"; fi; `)
	}
	b.WriteString(`if [ "$c" = 1 ]; then echo "state: $a"; exit 0; fi; `)
	// Bounded wait until is-active agrees.
	fmt.Fprintf(&b, `i=0; while :; do a=$(systemctl is-active "$u" 2>/dev/null) || true; `)
	if want == "active" {
		// A oneshot unit's start job ends when its command has run: then it
		// is inactive (active only with RemainAfterExit=yes), and done.
		b.WriteString(`[ "$a" = active ] && break; [ "$ty" = oneshot ] && [ "$a" = inactive ] && break; ` +
			`if [ "$a" = failed ]; then journalctl -u "$u" -n 5 --no-pager >&2 2>/dev/null; echo "$u failed to start: see journalctl -u $u" >&2; echo "state: $a"; exit 4; fi; `)
	} else {
		b.WriteString(`case "$a" in inactive|failed|unknown|"") break;; esac; `)
	}
	fmt.Fprintf(&b, `i=$((i+1)); if [ $i -ge %d ]; then echo "state: $a"; echo "$u is $a after %s, not %s: see journalctl -u $u" >&2; exit 4; fi; sleep 0.2; done; echo "state: $a"`,
		polls, wait, want)
	return b.String()
}

package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

func init() { Register(serviceFactsModule{}) }

// serviceFactsModule lists the host's services as Ansible's service_facts
// does (ansible_facts.services), from systemctl's unit list and unit files,
// in one command.
type serviceFactsModule struct{}

func (serviceFactsModule) Spec() Spec {
	return Spec{
		Name: "service_facts", GathersFacts: true,
		Doc:     "Gather the host's services (systemd units, or /etc/init.d scripts) into ansible_facts.services, in one command",
		Returns: map[string]string{"ansible_facts": "services: name.service → {name, state (running, stopped, ...), status (enabled, disabled, static, masked, ...), source}"},
	}
}

const serviceFactsScript = `if command -v systemctl >/dev/null 2>&1; then
echo @@units; systemctl list-units --no-pager --no-legend --plain --type service --all 2>/dev/null
echo @@files; systemctl list-unit-files --no-pager --no-legend --type service 2>/dev/null
else echo @@sysv; ls /etc/init.d 2>/dev/null; fi`

func (serviceFactsModule) Run(ctx context.Context, h *Host, _ map[string]any) (Outcome, error) {
	if h.Conn == nil {
		return Outcome{}, errors.New("service_facts: no connection to the host")
	}
	res, err := h.Conn.Run(ctx, serviceFactsScript, RunOptions{Become: h.Become.Become, BecomeUser: h.Become.BecomeUser, BecomePass: h.Become.BecomePass})
	if err != nil {
		return Outcome{}, fmt.Errorf("service_facts: %w", err)
	}
	services := ParseServices(string(res.Stdout))
	prev, _ := h.Vars["ansible_facts"].(map[string]any)
	facts := map[string]any{"services": services}
	return Outcome{Msg: fmt.Sprintf("%d services", len(services)), Facts: FactVars(prev, facts), Result: map[string]any{"ansible_facts": facts}}, nil
}

// badUnitStates win over what the unit file says, as in Ansible.
var badUnitStates = map[string]bool{"not-found": true, "masked": true, "failed": true}

// ParseServices reads the service facts script's output.
func ParseServices(out string) map[string]any {
	services := map[string]any{}
	sec := ""
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(line, "@@"); ok {
			sec = name
			continue
		}
		fs := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "●"))
		if len(fs) == 0 {
			continue
		}
		switch sec {
		case "units": // NAME LOAD ACTIVE SUB DESCRIPTION
			if len(fs) < 4 || !strings.HasSuffix(fs[0], ".service") {
				continue
			}
			state, status := "stopped", "unknown"
			if fs[3] == "running" {
				state = "running"
			}
			for _, f := range fs[1:4] {
				if badUnitStates[f] {
					status = f
				}
			}
			services[fs[0]] = map[string]any{"name": fs[0], "state": state, "status": status, "source": "systemd"}
		case "files": // NAME STATE [PRESET]
			if len(fs) < 2 || !strings.HasSuffix(fs[0], ".service") {
				continue
			}
			s, ok := services[fs[0]].(map[string]any)
			if !ok {
				services[fs[0]] = map[string]any{"name": fs[0], "state": "inactive", "status": fs[1], "source": "systemd"}
			} else if !badUnitStates[s["status"].(string)] {
				s["status"] = fs[1]
			}
		case "sysv":
			if !strings.HasPrefix(fs[0], ".") && fs[0] != "README" && fs[0] != "skeleton" {
				services[fs[0]] = map[string]any{"name": fs[0], "state": "unknown", "status": "unknown", "source": "sysv"}
			}
		}
	}
	return services
}

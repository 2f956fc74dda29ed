package tasks

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
)

func init() { Register(dockerNetworkModule{}) }

// dockerNetworkModule makes a named network present or absent on the host,
// in one command, with the docker CLI (or podman's).
type dockerNetworkModule struct{}

func (dockerNetworkModule) Spec() Spec {
	return Spec{
		Name: "docker_network",
		Doc:  "Create or remove a container network on the host with docker or podman, in one command",
		Params: map[string]Param{
			"name":    {Type: String, Required: true, Doc: "network name"},
			"state":   {Type: String, Choices: []string{"present", "absent"}, Default: "present", Doc: "present or absent"},
			"driver":  {Type: String, Doc: "driver when creating (default the CLI's: bridge)"},
			"runtime": {Type: String, Choices: []string{"docker", "podman"}, Doc: "CLI to drive (default docker)"},
		},
	}
}

func (dockerNetworkModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("docker_network", args)
	name, state, driver := a.String("name", ""), a.String("state", "present"), a.String("driver", "")
	rt := a.String("runtime", "docker")
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if strings.HasPrefix(name, "-") || strings.HasPrefix(driver, "-") {
		return Outcome{}, fmt.Errorf("docker_network: name and driver cannot start with '-'")
	}
	q := shell.Quote(name)
	create := fmt.Sprintf("%s network create %s >/dev/null", rt, q)
	if driver != "" {
		create = fmt.Sprintf("%s network create --driver %s %s >/dev/null", rt, shell.Quote(driver), q)
	}
	var cmd string
	switch {
	case h.Check:
		cmd = fmt.Sprintf(`%s network inspect %s >/dev/null 2>&1 && echo present || echo missing`, rt, q)
	case state == "absent":
		cmd = fmt.Sprintf(`if %[1]s network inspect %[2]s >/dev/null 2>&1; then %[1]s network rm %[2]s >/dev/null && echo changed; else echo ok; fi`, rt, q)
	default:
		cmd = fmt.Sprintf(`if %s network inspect %s >/dev/null 2>&1; then echo ok; else %s && echo changed; fi`, rt, q, create)
	}
	res, err := runOn(ctx, h, cmd, false)
	if err != nil {
		return Outcome{}, fmt.Errorf("docker_network: %w", err)
	}
	out := strings.TrimSpace(string(res.Stdout))
	if res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: fmt.Sprintf("docker_network %s: %s", name, strings.TrimSpace(string(res.Stderr)))}, nil
	}
	if h.Check {
		return Outcome{Changed: (state == "present") == (out == "missing"), Msg: fmt.Sprintf("check mode: network %s is %s", name, out)}, nil
	}
	return Outcome{Changed: out == "changed", Msg: fmt.Sprintf("network %s %s", name, state)}, nil
}

package tasks

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
)

func init() { Register(dockerImageModule{}) }

// dockerImageModule makes an image present on the host (pulled when
// missing, or always with force) or absent, in one command, with the
// docker CLI (or podman's).
type dockerImageModule struct{}

func (dockerImageModule) Spec() Spec {
	return Spec{
		Name: "docker_image",
		Doc:  "Pull an image onto the host (when missing, or always with force_source) or remove it, with docker or podman, in one command",
		Params: map[string]Param{
			"name":         {Type: String, Required: true, Doc: "image, with its tag (app:1.2) or separately in tag"},
			"tag":          {Type: String, Doc: "tag, when name has none (default latest)"},
			"state":        {Type: String, Choices: []string{"present", "absent"}, Default: "present", Doc: "present: pulled; absent: removed"},
			"source":       {Type: String, Choices: []string{"pull", "local"}, Doc: "pull (the default) or local (only check it is there)"},
			"force_source": {Type: Bool, Doc: "pull even when the image is present (a moving tag)"},
			"runtime":      {Type: String, Choices: []string{"docker", "podman"}, Doc: "CLI to drive (default docker)"},
		},
	}
}

func (dockerImageModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("docker_image", args)
	name, tag := a.String("name", ""), a.String("tag", "")
	state, source := a.String("state", "present"), a.String("source", "pull")
	force := a.Bool("force_source", false)
	rt := a.String("runtime", "docker")
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if strings.HasPrefix(name, "-") {
		return Outcome{}, fmt.Errorf("docker_image: name cannot start with '-'")
	}
	image := name
	if tag != "" && !strings.Contains(name[strings.LastIndex(name, "/")+1:], ":") {
		image = name + ":" + tag
	}
	q := shell.Quote(image)
	var cmd string
	switch {
	case h.Check:
		cmd = fmt.Sprintf(`%s image inspect %s >/dev/null 2>&1 && echo present || echo missing`, rt, q)
	case state == "absent":
		cmd = fmt.Sprintf(`if %[1]s image inspect %[2]s >/dev/null 2>&1; then %[1]s rmi %[2]s >/dev/null && echo changed; else echo ok; fi`, rt, q)
	case source == "local":
		cmd = fmt.Sprintf(`%s image inspect %s >/dev/null 2>&1 && echo ok || { echo "no image %s on the host" >&2; exit 1; }`, rt, q, image)
	case force:
		cmd = fmt.Sprintf(`old=$(%[1]s image inspect -f '{{.Id}}' %[2]s 2>/dev/null); %[1]s pull %[2]s >/dev/null || exit 1; new=$(%[1]s image inspect -f '{{.Id}}' %[2]s); [ "$old" = "$new" ] && echo ok || echo changed`, rt, q)
	default:
		cmd = fmt.Sprintf(`if %[1]s image inspect %[2]s >/dev/null 2>&1; then echo ok; else %[1]s pull %[2]s >/dev/null && echo changed; fi`, rt, q)
	}
	res, err := runOn(ctx, h, cmd, false)
	if err != nil {
		return Outcome{}, fmt.Errorf("docker_image: %w", err)
	}
	out := strings.TrimSpace(string(res.Stdout))
	if res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: fmt.Sprintf("docker_image %s: %s", image, strings.TrimSpace(string(res.Stderr)))}, nil
	}
	if h.Check {
		would := (state == "present") == (out == "missing") || force && state == "present"
		return Outcome{Changed: would, Msg: fmt.Sprintf("check mode: %s is %s", image, out)}, nil
	}
	return Outcome{Changed: out == "changed", Msg: fmt.Sprintf("%s %s", image, map[bool]string{true: state + " (changed)", false: state}[out == "changed"])}, nil
}

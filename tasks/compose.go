package tasks

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/tasks/hostfs"
)

func init() { Register(composeModule{}) }

// composeModule drives a Docker Compose project on the host with the
// `docker compose` CLI plugin, as community.docker's docker_compose_v2:
// up (present), stop, restart or down, in one command. Whether anything
// changed is read from what compose reports per container and network
// (Created, Recreated, Started, Pulled, ...; "Running" is no change).
type composeModule struct{}

func (composeModule) Spec() Spec {
	return Spec{
		Name:    "compose",
		Service: true,
		Doc:     "Bring a Docker Compose project on the host up, stop, restart or down with `docker compose`, in one command",
		Params: map[string]Param{
			"project_src":    {Type: String, Required: true, Doc: "absolute directory on the host holding the compose file; it, the directories above it, the compose and env files must be writable only by root, the become user or the connecting user (else refused: their writer would choose what root runs)"},
			"project_name":   {Type: String, Doc: "project name (default: compose's, from the directory)"},
			"files":          {Type: List, Doc: "compose files, relative to project_src (default: compose's)"},
			"env_files":      {Type: List, Doc: "--env-file files"},
			"profiles":       {Type: List, Doc: "profiles to enable"},
			"services":       {Type: List, Doc: "only these services (default all)"},
			"state":          {Type: String, Default: "present", Choices: []string{"present", "stopped", "restarted", "absent"}, Doc: "present: up -d; stopped: stop; restarted: restart; absent: down"},
			"pull":           {Type: String, Default: "policy", Choices: []string{"always", "missing", "never", "policy"}, Doc: "pull images before up (policy: as the compose file's pull_policy says)"},
			"build":          {Type: String, Default: "policy", Choices: []string{"always", "never", "policy"}, Doc: "build images before up"},
			"recreate":       {Type: String, Default: "auto", Choices: []string{"always", "never", "auto"}, Doc: "always: --force-recreate; never: --no-recreate; auto: when the configuration or image changed"},
			"remove_orphans": {Type: Bool, Doc: "remove containers of services no longer in the file"},
			"remove_volumes": {Type: Bool, Doc: "absent: also remove the project's volumes"},
			"wait":           {Type: Bool, Doc: "present: wait for the services to be running or healthy"},
			"wait_timeout":   {Type: Int, Default: "300", Doc: "with wait, seconds to wait (compose alone would wait for ever on a service that never turns healthy)"},
			"timeout":        {Type: Int, Doc: "seconds to let containers stop before they are killed"},
		},
	}
}

// composeChange is a line of compose's progress that says something changed.
var composeChange = regexp.MustCompile(`\b(Created|Recreated|Started|Stopped|Removed|Pulled|Restarted|Built|Killed)\b`)

func (composeModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("compose", args)
	src := a.String("project_src", "")
	name := a.String("project_name", "")
	files := a.StringList("files")
	envFiles := a.StringList("env_files")
	profiles := a.StringList("profiles")
	services := a.StringList("services")
	state := a.String("state", "present")
	pull := a.String("pull", "policy")
	build := a.String("build", "policy")
	recreate := a.String("recreate", "auto")
	orphans := a.Bool("remove_orphans", false)
	volumes := a.Bool("remove_volumes", false)
	wait := a.Bool("wait", false)
	waitTimeout := a.Int("wait_timeout", 300)
	timeout := a.Int("timeout", -1)
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	for _, s := range append(append(append([]string{name}, services...), profiles...), files...) {
		if strings.HasPrefix(s, "-") {
			return Outcome{}, fmt.Errorf("compose: %q: names and files cannot start with '-'", s)
		}
	}
	cmd := []string{"compose"}
	if h.Check {
		cmd = append(cmd, "--dry-run")
	}
	if name != "" {
		cmd = append(cmd, "-p", name)
	}
	for _, f := range files {
		cmd = append(cmd, "-f", f)
	}
	for _, f := range envFiles {
		cmd = append(cmd, "--env-file", f)
	}
	for _, p := range profiles {
		cmd = append(cmd, "--profile", p)
	}
	switch state {
	case "present":
		cmd = append(cmd, "up", "-d")
		if pull != "policy" {
			cmd = append(cmd, "--pull", pull)
		}
		switch build {
		case "always":
			cmd = append(cmd, "--build")
		case "never":
			cmd = append(cmd, "--no-build")
		}
		switch recreate {
		case "always":
			cmd = append(cmd, "--force-recreate")
		case "never":
			cmd = append(cmd, "--no-recreate")
		}
		if orphans {
			cmd = append(cmd, "--remove-orphans")
		}
		if wait {
			cmd = append(cmd, "--wait")
			if waitTimeout > 0 {
				cmd = append(cmd, "--wait-timeout", fmt.Sprint(waitTimeout))
			}
		}
	case "stopped":
		cmd = append(cmd, "stop")
	case "restarted":
		cmd = append(cmd, "restart")
	case "absent":
		cmd = append(cmd, "down")
		if orphans {
			cmd = append(cmd, "--remove-orphans")
		}
		if volumes {
			cmd = append(cmd, "--volumes")
		}
	}
	if timeout >= 0 && state != "present" {
		cmd = append(cmd, "--timeout", fmt.Sprint(timeout))
	}
	if state != "absent" {
		cmd = append(cmd, services...)
	}
	if !strings.HasPrefix(src, "/") {
		return Outcome{}, fmt.Errorf("compose: project_src %q must be an absolute path on the host", src)
	}
	// progress goes to stderr; plain output names each container's step
	script := hostfs.Script(composeTrust(src, files, envFiles) +
		fmt.Sprintf("cd -- %s || exit 1; COMPOSE_PROGRESS=plain docker %s 2>&1", shell.Quote(src), shell.Join(cmd...)))
	res, err := runOn(ctx, h, script, false)
	if err != nil {
		return Outcome{}, fmt.Errorf("compose %s: %w", state, err)
	}
	out := strings.TrimRight(string(res.Stdout), "\n")
	result := map[string]any{"stdout": out, "stdout_lines": splitLines(out), "rc": res.ExitCode}
	if res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: failMsg("docker compose "+state, res), Result: result}, nil
	}
	var changes []string
	for _, l := range strings.Split(out, "\n") {
		if composeChange.MatchString(l) {
			changes = append(changes, strings.TrimSpace(l))
		}
	}
	if len(changes) == 0 {
		return Outcome{Msg: "compose project in " + src + ": nothing to change", Result: result}, nil
	}
	msg := "compose " + state + ": " + strings.Join(changes, "; ")
	if h.Check {
		msg = checkMsg("%s", msg)
	}
	return Outcome{Changed: true, Msg: msg, Diff: strings.Join(changes, "\n") + "\n", Result: result}, nil
}

// composeDefaults are the files compose reads from the project directory
// when no -f is given (and .env, always).
var composeDefaults = []string{"compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml",
	"compose.override.yaml", "compose.override.yml", "docker-compose.override.yaml", "docker-compose.override.yml"}

// composeTrust is the shell that refuses, before compose runs (as root,
// with become), a project directory, compose file or env file that a user
// other than root, the user ferry acts as or the user who connected (who
// may run anything as root already) can write, or that sits below a
// directory such a user can write: whoever can change them chooses the
// images, mounts and commands root starts (hostfs's hf_trusted, as
// OpenSSH's StrictModes).
func composeTrust(src string, files, envFiles []string) string {
	abs := func(f string) string {
		if strings.HasPrefix(f, "/") {
			return f
		}
		return strings.TrimSuffix(src, "/") + "/" + f
	}
	var check []string
	if len(files) == 0 {
		files = composeDefaults
	}
	for _, f := range append(append(append([]string{}, files...), envFiles...), ".env") {
		check = append(check, abs(f))
	}
	return `hf_quiet=1; hf_tuid=${SUDO_UID:-}; ( hf_trusted ` + shell.Quote(src) + ` || hf_die ` + shell.Quote(src+" does not exist") +
		`; for f in ` + shell.Join(check...) + `; do ( hf_trusted "$f" ) || [ $? = 1 ] || exit 2; done ) || exit 2; `
}

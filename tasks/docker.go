package tasks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/tasks/hostfs"
)

func init() { Register(dockerModule{}) }

// dockerModule manages one container through the docker CLI on the host, or
// podman's, which takes the same flags. A container is "started" when it
// runs the requested image with the requested settings; ferry labels each
// container it creates with a hash of those settings (ferry.config), so a
// change of env, ports or volumes recreates it even when the image is the
// same. Environment values go through a 0600 env file, never on argv.
type dockerModule struct{}

func (dockerModule) Spec() Spec {
	return Spec{
		Name:    "docker",
		Service: true,
		Doc:     "Run, stop or remove a container on the host with docker or podman, recreated when its image or configuration changes",
		Params: map[string]Param{
			"name":        {Type: String, Required: true, Doc: "container name"},
			"image":       {Type: String, Doc: "image (required for state: started)"},
			"state":       {Type: String, Choices: []string{"started", "stopped", "absent"}, Doc: "default started"},
			"pull":        {Type: String, Choices: []string{"always", "missing", "never"}, Doc: "default missing"},
			"env":         {Type: Map, Doc: "environment variables"},
			"ports":       {Type: List, Doc: `published ports ("8080:80")`},
			"volumes":     {Type: List, Doc: `mounts ("/data:/data:ro")`},
			"restart":     {Type: String, Doc: "restart policy (no, always, on-failure, unless-stopped)"},
			"command":     {Type: Any, Doc: "command: a string split like a shell, or a list"},
			"network":     {Type: String, Doc: "network (host, bridge, a named network)"},
			"networks":    {Type: List, Doc: "several networks: the container is created on the first and connected to the others before it starts"},
			"runtime":     {Type: String, Choices: []string{"docker", "podman"}, Doc: "CLI to drive (default docker)"},
			"etc_hosts":   {Type: Map, Doc: "extra /etc/hosts entries, name: address (--add-host)"},
			"log_driver":  {Type: String, Doc: "logging driver (json-file, journald, none, ...)"},
			"log_options": {Type: Map, Doc: "logging driver options (--log-opt key=value)"},
			"force_kill":  {Type: Bool, Doc: "stopped: kill the container instead of stopping it gracefully"},
		},
	}
}

type dockerSpec struct {
	rt, name, image, state, pull, restart, network string
	logDriver                                      string
	env, etcHosts, logOptions                      map[string]string
	ports, volumes, command, networks              []string
	forceKill                                      bool
}

// hash identifies the settings a container was created with.
func (d *dockerSpec) hash() string {
	h := sha256.New()
	fmt.Fprintf(h, "image=%s\nrestart=%s\nnetwork=%s\n", d.image, d.restart, d.network)
	for _, k := range slices.Sorted(maps.Keys(d.env)) {
		fmt.Fprintf(h, "env=%s=%s\n", k, d.env[k])
	}
	for _, l := range [][]string{d.ports, d.volumes, d.command} {
		fmt.Fprintf(h, "%q\n", l)
	}
	// settings added later enter the hash only when given, so containers
	// made before keep their hash
	if d.logDriver != "" {
		fmt.Fprintf(h, "log_driver=%s\n", d.logDriver)
	}
	if len(d.networks) > 0 {
		fmt.Fprintf(h, "networks=%q\n", d.networks)
	}
	for _, l := range []struct {
		name string
		m    map[string]string
	}{{"etc_hosts", d.etcHosts}, {"log_options", d.logOptions}} { // in a fixed order: the hash must not vary
		for _, k := range slices.Sorted(maps.Keys(l.m)) {
			fmt.Fprintf(h, "%s=%s=%s\n", l.name, k, l.m[k])
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// container is what inspect said about the existing container.
type container struct {
	exists, running   bool
	image, imageID    string // configured image name, image ID
	config, wantImage string // ferry.config label; ID of the requested image locally ("" if absent)
}

func (dockerModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("docker", args)
	d := &dockerSpec{
		rt:      a.String("runtime", "docker"),
		name:    a.String("name", ""),
		image:   a.String("image", ""),
		state:   a.String("state", "started"),
		pull:    a.String("pull", "missing"),
		restart: a.String("restart", ""),
		network: a.String("network", ""),
		env:     a.StringMap("env"),
		ports:   a.StringList("ports"),
		volumes: a.StringList("volumes"),

		logDriver:  a.String("log_driver", ""),
		etcHosts:   a.StringMap("etc_hosts"),
		logOptions: a.StringMap("log_options"),
		forceKill:  a.Bool("force_kill", false),
	}
	if nets := a.StringList("networks"); len(nets) == 1 && d.network == "" {
		d.network = nets[0] // as network: the same container, the same hash
	} else if len(nets) > 1 {
		if d.network != "" {
			return Outcome{}, fmt.Errorf("docker: give network or networks, not both")
		}
		d.network, d.networks = nets[0], nets[1:]
	}
	if s, ok := a.Raw("command").(string); ok {
		cmd, err := shell.Split(s)
		if err != nil {
			return Outcome{}, fmt.Errorf("docker: command: %w", err)
		}
		d.command = cmd
	} else {
		d.command = a.StringList("command")
	}
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if d.state == "started" && d.image == "" {
		return Outcome{}, fmt.Errorf("docker: state: started needs image")
	}
	for _, n := range d.networks {
		if strings.HasPrefix(n, "-") || n == "" {
			return Outcome{}, fmt.Errorf("docker: networks: %q is not a network name", n)
		}
	}
	if strings.HasPrefix(d.name, "-") || strings.HasPrefix(d.image, "-") {
		return Outcome{}, fmt.Errorf("docker: name and image cannot start with '-'")
	}
	for k, v := range d.env {
		if strings.ContainsAny(k, "=\n") || strings.Contains(v, "\n") {
			return Outcome{}, fmt.Errorf("docker: env %s: names cannot hold '=' or newlines, values cannot hold newlines", k)
		}
	}
	for k, v := range d.etcHosts {
		if k == "" || v == "" || strings.ContainsAny(k, ": \t\n") || strings.ContainsAny(v, " \t\n") {
			return Outcome{}, fmt.Errorf("docker: etc_hosts %q: want a host name and an address", k)
		}
	}
	for k := range d.logOptions {
		if k == "" || strings.ContainsAny(k, "=\n") {
			return Outcome{}, fmt.Errorf("docker: log_options %q: want option names without '='", k)
		}
	}

	c, res, err := inspectContainer(ctx, h, d, d.pull == "always" && d.state == "started" && !h.Check)
	if err != nil {
		return Outcome{}, err
	}
	if res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: failMsg(d.rt+" pull "+d.image, res)}, nil
	}
	result := map[string]any{"name": d.name, "image": d.image, "runtime": d.rt}
	var steps []string // what has to happen, in order
	var script strings.Builder
	fmt.Fprintf(&script, "rt=%s; n=%s; ", d.rt, shell.Quote(d.name))
	envFile, envDir := "", ""
	switch d.state {
	case "absent":
		if c.exists {
			steps = append(steps, "remove container")
			script.WriteString(`$rt rm -f "$n" >/dev/null || exit 1; `)
		}
	case "stopped":
		if c.running && d.forceKill {
			steps = append(steps, "kill container")
			script.WriteString(`$rt kill "$n" >/dev/null || exit 1; `)
		} else if c.running {
			steps = append(steps, "stop container")
			script.WriteString(`$rt stop "$n" >/dev/null || exit 1; `)
		}
	case "started":
		hash := d.hash()
		same := c.exists && c.image == d.image && c.config == hash &&
			(c.wantImage == "" || trimID(c.imageID) == trimID(c.wantImage))
		if c.wantImage == "" && d.pull == "never" {
			return Outcome{Failed: true, Msg: fmt.Sprintf("image %s is not on the host and pull is never: load it first or set pull: missing", d.image), Result: result}, nil
		}
		switch {
		case same && c.running:
		case same:
			steps = append(steps, "start container")
			script.WriteString(`$rt start "$n" >/dev/null || exit 1; `)
		default:
			if c.wantImage == "" {
				steps = append(steps, "pull "+d.image)
				fmt.Fprintf(&script, `$rt pull -q %s >/dev/null || exit 1; `, shell.Quote(d.image))
			}
			if c.exists {
				why := "settings changed"
				if c.image != d.image {
					why = "image " + orNone(c.image) + " -> " + d.image
				} else if c.wantImage != "" && trimID(c.imageID) != trimID(c.wantImage) {
					why = "newer image"
				}
				steps = append(steps, "replace container ("+why+")")
				script.WriteString(`$rt stop "$n" >/dev/null 2>&1; $rt rm -f "$n" >/dev/null || exit 1; `)
			} else {
				steps = append(steps, "create container")
			}
			run := []string{"run", "-d", "--name", d.name, "--label", "ferry.config=" + hash}
			if len(d.networks) > 0 {
				// created, connected to every network, then started
				run = []string{"create", "--name", d.name, "--label", "ferry.config=" + hash}
			}
			if d.restart != "" {
				run = append(run, "--restart", d.restart)
			}
			if d.network != "" {
				run = append(run, "--network", d.network)
			}
			for _, p := range d.ports {
				run = append(run, "-p", p)
			}
			for _, k := range slices.Sorted(maps.Keys(d.etcHosts)) {
				run = append(run, "--add-host", k+":"+d.etcHosts[k])
			}
			if d.logDriver != "" {
				run = append(run, "--log-driver", d.logDriver)
			}
			for _, k := range slices.Sorted(maps.Keys(d.logOptions)) {
				run = append(run, "--log-opt", k+"="+d.logOptions[k])
			}
			for _, v := range d.volumes {
				run = append(run, "-v", v)
			}
			if len(d.env) > 0 {
				envDir = "/tmp/.ferry-env-" + randomSuffix()
				envFile = envDir + "/env"
				run = append(run, "--env-file", envFile)
			}
			run = append(run, d.image)
			run = append(run, d.command...)
			fmt.Fprintf(&script, `$rt %s >/dev/null; rc=$?; `, shell.Join(run...))
			if envFile != "" {
				fmt.Fprintf(&script, "hf_rmtrees %s; ", shell.Quote(envDir))
			}
			script.WriteString(`[ $rc = 0 ] || exit $rc; `)
			if len(d.networks) > 0 {
				for _, n := range d.networks {
					fmt.Fprintf(&script, `$rt network connect %s "$n" || exit 1; `, shell.Quote(n))
				}
				script.WriteString(`$rt start "$n" >/dev/null || exit 1; `)
			}
		}
		if len(steps) > 0 {
			// A container that dies at once is a failed start, with its logs.
			script.WriteString(`r=$($rt inspect --format '{{.State.Running}}' "$n" 2>/dev/null); ` +
				`if [ "$r" != true ]; then $rt logs --tail 20 "$n" >&2 2>&1; echo "container $n is not running after start: see $rt logs $n" >&2; exit 1; fi; `)
		}
	}
	result["actions"] = toAnyList(steps)
	if len(steps) == 0 {
		state := "absent"
		if c.running {
			state = "running"
		} else if c.exists {
			state = "stopped"
		}
		result["state"] = state
		return Outcome{Msg: fmt.Sprintf("container %s is %s", d.name, state), Result: result}, nil
	}
	diff := strings.Join(steps, "\n") + "\n"
	if h.Check {
		return Outcome{Changed: true, Msg: checkMsg("%s: %s", d.name, strings.Join(steps, ", ")), Diff: diff, Result: result}, nil
	}
	if envFile != "" {
		if err := uploadEnv(ctx, h, envDir, envFile, d.env); err != nil {
			return Outcome{}, fmt.Errorf("docker: env file: %w", err)
		}
	}
	script.WriteString("exit 0")
	line := script.String()
	if envDir != "" {
		// The env file goes whatever step fails.
		line = hostfs.Script("trap " + shell.Quote("hf_rmtrees "+shell.Quote(envDir)) + " EXIT; " + line)
	}
	res, err = runOn(ctx, h, line, true)
	if err != nil {
		if envDir != "" {
			removeRemoteDirs(h, envDir)
		}
		return Outcome{}, fmt.Errorf("docker %s: %w", d.name, err)
	}
	result["state"] = map[string]string{"absent": "absent", "stopped": "stopped", "started": "running"}[d.state]
	if res.ExitCode != 0 {
		return Outcome{Failed: true, Msg: failMsg(d.rt+" "+strings.Join(steps, ", "), res), Diff: diff, Result: result}, nil
	}
	return Outcome{Changed: true, Msg: d.name + ": " + strings.Join(steps, ", "), Diff: diff, Result: result}, nil
}

// inspectContainer reads the container's state and the requested image's
// ID in one command, pulling first when asked to.
func inspectContainer(ctx context.Context, h *Host, d *dockerSpec, pull bool) (container, Result, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "rt=%s; n=%s; i=%s; ", d.rt, shell.Quote(d.name), shell.Quote(d.image))
	if pull {
		b.WriteString(`$rt pull -q "$i" >/dev/null || exit 1; `)
	}
	b.WriteString(`printf 'container=%s\n' "$($rt inspect --format ` +
		shell.Quote(`{{.State.Running}}|{{.Config.Image}}|{{.Image}}|{{index .Config.Labels "ferry.config"}}`) +
		` "$n" 2>/dev/null)"; `)
	if d.image != "" {
		b.WriteString(`printf 'image=%s\n' "$($rt image inspect --format '{{.Id}}' "$i" 2>/dev/null)"; `)
	}
	b.WriteString("exit 0")
	res, err := runOn(ctx, h, b.String(), false)
	if err != nil {
		return container{}, res, fmt.Errorf("docker: inspect %s: %w", d.name, err)
	}
	var c container
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		if v, ok := strings.CutPrefix(l, "container="); ok && v != "" {
			f := strings.SplitN(v, "|", 4)
			if len(f) == 4 {
				c.exists, c.running = true, f[0] == "true"
				c.image, c.imageID, c.config = f[1], f[2], f[3]
			}
		} else if v, ok := strings.CutPrefix(l, "image="); ok {
			c.wantImage = strings.TrimSpace(v)
		}
	}
	return c, res, nil
}

func trimID(id string) string { return strings.TrimPrefix(id, "sha256:") }

// uploadEnv writes the env file (mode 0600, in the private directory dir)
// through SFTP, so values never appear on a command line, and nobody else
// can open the file while it holds them.
func uploadEnv(ctx context.Context, h *Host, dir, remote string, env map[string]string) error {
	client, err := h.Conn.SFTP(ctx, sftpUser(h))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(&buf, "%s=%s\n", k, env[k])
	}
	if err := makePrivateDir(client, dir); err != nil {
		return err
	}
	if err := putFile(ctx, client, bytes.NewReader(buf.Bytes()), int64(buf.Len()), remote, 0o600, nil); err != nil {
		removeRemoteDirs(h, dir)
		return err
	}
	return nil
}

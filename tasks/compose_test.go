package tasks

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeCompose logs its arguments and its working directory, prints what the
// test put in out, and exits with rc.
const fakeCompose = `#!/bin/bash
d=$FAKE_DOCKER; echo "$(pwd) COMPOSE_PROGRESS=$COMPOSE_PROGRESS docker $*" >> "$d/log"
cat "$d/out" 2>/dev/null
exit $(cat "$d/rc" 2>/dev/null || echo 0)
`

// compose runs `docker compose` in project_src with the flags
// docker_compose_v2's options ask for, and reads changed from compose's
// per-container report.
func TestCompose(t *testing.T) {
	h, c, _ := testHost(t)
	d := t.TempDir()
	c.fakeBin(t, "docker", fakeCompose)
	c.env = append(c.env, "FAKE_DOCKER="+d)
	proj := t.TempDir()
	say := func(out string, rc int) {
		os.WriteFile(filepath.Join(d, "out"), []byte(out), 0o644)
		os.WriteFile(filepath.Join(d, "rc"), []byte(strconv.Itoa(rc)), 0o644)
		os.Remove(filepath.Join(d, "log"))
	}
	last := func() string { return strings.TrimSpace(dockerLog(d)) }

	say(" Network nginx_default  Created\n Container nginx-web-1  Recreated\n Container nginx-web-1  Started\n", 0)
	out := runModule(t, h, "compose", map[string]any{"project_src": proj, "pull": "always", "recreate": "always", "remove_orphans": true,
		"wait": true, "wait_timeout": 30, "files": []any{"docker-compose.yaml"}, "project_name": "nginx", "services": []any{"web"}})
	if !out.Changed || out.Failed || !strings.Contains(out.Msg, "Recreated") {
		t.Fatalf("up: %+v", out)
	}
	if want := proj + " COMPOSE_PROGRESS=plain docker compose -p nginx -f docker-compose.yaml up -d --pull always --force-recreate --remove-orphans --wait --wait-timeout 30 web"; last() != want {
		t.Fatalf("up ran %q\nwant %q", last(), want)
	}

	say(" Container nginx-web-1  Running\n", 0)
	if out := runModule(t, h, "compose", map[string]any{"project_src": proj}); out.Changed || out.Failed {
		t.Errorf("unchanged: %+v", out)
	}
	if last() != proj+" COMPOSE_PROGRESS=plain docker compose up -d" {
		t.Errorf("defaults ran %q", last())
	}

	say(" Container nginx-web-1  Stopped\n Container nginx-web-1  Removed\n Network nginx_default  Removed\n", 0)
	if out := runModule(t, h, "compose", map[string]any{"project_src": proj, "state": "absent", "remove_volumes": true, "services": []any{"web"}}); !out.Changed {
		t.Errorf("down: %+v", out)
	}
	if last() != proj+" COMPOSE_PROGRESS=plain docker compose down --volumes" {
		t.Errorf("down ran %q", last())
	}
	say(" Container nginx-web-1  Restarted\n", 0)
	if out := runModule(t, h, "compose", map[string]any{"project_src": proj, "state": "restarted", "timeout": 5}); !out.Changed || last() != proj+" COMPOSE_PROGRESS=plain docker compose restart --timeout 5" {
		t.Errorf("restart: %+v %q", out, last())
	}

	h.Check = true
	say(" Container nginx-web-1  Recreated\n", 0)
	if out := runModule(t, h, "compose", map[string]any{"project_src": proj, "build": "never"}); !out.Changed || last() != proj+" COMPOSE_PROGRESS=plain docker compose --dry-run up -d --no-build" {
		t.Errorf("check: %+v %q", out, last())
	}
	h.Check = false

	say("no configuration file provided: not found\n", 1)
	if out := runModule(t, h, "compose", map[string]any{"project_src": proj}); !out.Failed || !strings.Contains(out.Msg, "no configuration file") {
		t.Errorf("failure: %+v", out)
	}
	if out := runModule(t, h, "compose", map[string]any{"project_src": filepath.Join(proj, "nope")}); !out.Failed {
		t.Errorf("missing project_src: %+v", out)
	}
	if _, err := Call(t.Context(), composeModule{}, h, map[string]any{"project_src": proj, "services": []any{"--privileged"}}); err == nil {
		t.Error("a service starting with - accepted")
	}
}

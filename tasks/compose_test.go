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

// Whoever can write a compose project chooses the images, mounts and
// commands root starts: a project directory, a directory above it, a compose
// file, an env file or .env that another user can write is refused before
// compose runs, naming it and its owner (docs/security.md).
func TestComposeRefusesProjectAnotherUserCanWrite(t *testing.T) {
	h, c, _ := testHost(t)
	d := t.TempDir()
	c.fakeBin(t, "docker", fakeCompose)
	c.env = append(c.env, "FAKE_DOCKER="+d)
	top := t.TempDir() // 0700, ours
	mk := func(name string, mode os.FileMode, dir bool) string {
		p := filepath.Join(top, name)
		var err error
		if dir {
			err = os.MkdirAll(p, 0o755)
		} else {
			err = os.WriteFile(p, []byte("services: {}\n"), 0o644)
		}
		if err == nil {
			err = os.Chmod(p, mode)
		}
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ran := func() bool { _, err := os.Stat(filepath.Join(d, "log")); return err == nil }

	good := mk("good", 0o755, true)
	mk("good/compose.yaml", 0o644, false)
	if out := runModule(t, h, "compose", map[string]any{"project_src": good}); out.Failed || !ran() {
		t.Fatalf("a project only its owner can write: %+v", out)
	}
	for _, c := range []struct {
		name string
		make func() string // returns project_src
		args map[string]any
	}{
		{"world-writable project", func() string { p := mk("p1", 0o777, true); mk("p1/compose.yaml", 0o644, false); return p }, nil},
		{"group-writable compose file", func() string { p := mk("p2", 0o755, true); mk("p2/docker-compose.yml", 0o664, false); return p }, nil},
		{"world-writable .env", func() string {
			p := mk("p3", 0o755, true)
			mk("p3/compose.yaml", 0o644, false)
			mk("p3/.env", 0o666, false)
			return p
		}, nil},
		{"world-writable -f file", func() string { p := mk("p4", 0o755, true); mk("p4/prod.yml", 0o646, false); return p }, map[string]any{"files": []any{"prod.yml"}}},
		{"world-writable env_file", func() string { p := mk("p5", 0o755, true); mk("p5/prod.env", 0o666, false); return p }, map[string]any{"env_files": []any{"prod.env"}}},
		{"under a world-writable directory", func() string {
			mk("open", 0o777, true)
			p := mk("open/p6", 0o755, true)
			mk("open/p6/compose.yaml", 0o644, false)
			return p
		}, nil},
		{"a symlinked project in a world-writable directory", func() string {
			mk("open2", 0o777, true)
			p := filepath.Join(top, "open2", "p7")
			if err := os.Symlink(good, p); err != nil {
				t.Fatal(err)
			}
			return p
		}, nil},
	} {
		os.Remove(filepath.Join(d, "log"))
		args := map[string]any{"project_src": c.make()}
		for k, v := range c.args {
			args[k] = v
		}
		out := runModule(t, h, "compose", args)
		if !out.Failed || !strings.Contains(out.Msg, "user other than root") && !strings.Contains(out.Msg, "writable by its group or by everyone") || ran() {
			t.Errorf("%s: want refused before compose runs, got %+v (compose ran: %v)", c.name, out, ran())
		}
	}
	// owned by another user (a deploy directory's owner), when ferry is root
	if os.Geteuid() == 0 {
		p := mk("p8", 0o755, true)
		mk("p8/compose.yaml", 0o644, false)
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(d, "log"))
		if out := runModule(t, h, "compose", map[string]any{"project_src": p}); !out.Failed || !strings.Contains(out.Msg, "owner nobody") && !strings.Contains(out.Msg, "owner 65534") || ran() {
			t.Errorf("a project another user owns: %+v (compose ran: %v)", out, ran())
		}
	}
}

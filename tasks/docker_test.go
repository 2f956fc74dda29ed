package tasks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDocker keeps containers and images as files and logs every call.
const fakeDocker = `#!/bin/bash
d=$FAKE_DOCKER; echo "$(basename "$0") $*" >> "$d/log"
key() { echo "$1" | tr '/:' '__'; }
case "$1" in
inspect)
  f=$3; n=$4; [ -f "$d/c_$n" ] || exit 1
  IFS='|' read -r run img id cfg < "$d/c_$n"
  if [ "$f" = '{{.State.Running}}' ]; then echo "$run"; else echo "$run|$img|$id|$cfg"; fi;;
image)
  i=$5; [ -f "$d/i_$(key "$i")" ] || exit 1; cat "$d/i_$(key "$i")";;
pull)
  i=$3; [ "$i" = bad/image ] && { echo "manifest unknown" >&2; exit 1; }
  echo "sha256:pulled-$i" > "$d/i_$(key "$i")";;
network) echo ok;;
create|run)
  [ "$1" = run ] && st=true || st=false
  shift; [ "$1" = -d ] && shift
  name= cfg= envf=
  while [ $# -gt 0 ]; do case "$1" in
    --name) name=$2; shift 2;; --label) cfg=${2#ferry.config=}; shift 2;;
    --env-file) envf=$2; cp "$2" "$d/envfile"; shift 2;;
    --restart|--network|-p|-v|--add-host|--log-driver|--log-opt) shift 2;; *) break;; esac; done
  img=$1; id=$(cat "$d/i_$(key "$img")" 2>/dev/null || echo none)
  echo "$st|$img|$id|$cfg" > "$d/c_$name"; echo "$name-id";;
stop|kill) [ -f "$d/c_$2" ] && sed -i 's/^true|/false|/' "$d/c_$2";;
start) sed -i 's/^false|/true|/' "$d/c_$2";;
rm) rm -f "$d/c_$3";;
logs) ;;
*) echo "fake docker: $*" >&2; exit 1;;
esac
`

func fakeDockerHost(t *testing.T) (*Host, string) {
	h, c, _ := testHost(t)
	d := t.TempDir()
	c.fakeBin(t, "docker", fakeDocker)
	c.env = append(c.env, "FAKE_DOCKER="+d)
	return h, d
}

func dockerLog(d string) string {
	b, _ := os.ReadFile(filepath.Join(d, "log"))
	return string(b)
}

func TestDockerLifecycle(t *testing.T) {
	h, d := fakeDockerHost(t)
	args := map[string]any{"name": "api", "image": "localhost/app:v1", "env": map[string]any{"TOKEN": "s3cret value"},
		"ports": []any{"8080:8080"}, "restart": "always", "network": "host"}
	out := runModule(t, h, "docker", args)
	if !out.Changed || out.Failed {
		t.Fatalf("create: %+v", out)
	}
	log := dockerLog(d)
	if !strings.Contains(log, "docker pull -q localhost/app:v1") || !strings.Contains(log, "docker run -d --name api") {
		t.Fatalf("log %q", log)
	}
	if strings.Contains(log, "s3cret") {
		t.Fatal("an env value reached argv")
	}
	if got := mustRead(t, filepath.Join(d, "envfile")); got != "TOKEN=s3cret value\n" {
		t.Fatalf("env file %q", got)
	}
	if m, _ := filepath.Glob("/tmp/.ferry-env-*"); len(m) != 0 {
		t.Fatalf("env file left: %v", m)
	}

	out = runModule(t, h, "docker", args)
	if out.Changed {
		t.Fatalf("same settings: %+v", out)
	}
	args["env"] = map[string]any{"TOKEN": "rotated"}
	out = runModule(t, h, "docker", args)
	if !out.Changed || !strings.Contains(out.Msg, "settings changed") {
		t.Fatalf("env change: %+v", out)
	}
	args["image"] = "localhost/app:v2"
	out = runModule(t, h, "docker", args)
	if !out.Changed || !strings.Contains(out.Msg, "image localhost/app:v1 -> localhost/app:v2") {
		t.Fatalf("image change: %+v", out)
	}
	if !strings.Contains(dockerLog(d), "docker stop api\ndocker rm -f api\n") {
		t.Fatalf("no stop+rm: %q", dockerLog(d))
	}
	out = runModule(t, h, "docker", map[string]any{"name": "api", "state": "stopped"})
	if !out.Changed {
		t.Fatalf("stop: %+v", out)
	}
	out = runModule(t, h, "docker", args) // stopped, same settings: start it
	if !out.Changed || !strings.Contains(out.Msg, "start container") {
		t.Fatalf("start: %+v", out)
	}
	out = runModule(t, h, "docker", map[string]any{"name": "api", "state": "absent"})
	if !out.Changed {
		t.Fatalf("absent: %+v", out)
	}
	out = runModule(t, h, "docker", map[string]any{"name": "api", "state": "absent"})
	if out.Changed {
		t.Fatalf("absent twice: %+v", out)
	}
}

func TestDockerCheckModePullNeverAndPodman(t *testing.T) {
	h, d := fakeDockerHost(t)
	h.Check = true
	out := runModule(t, h, "docker", map[string]any{"name": "web", "image": "nginx", "pull": "always"})
	if !out.Changed || strings.Contains(dockerLog(d), "run") || strings.Contains(dockerLog(d), "pull") {
		t.Fatalf("check mode: %+v %q", out, dockerLog(d))
	}
	h.Check = false
	out = runModule(t, h, "docker", map[string]any{"name": "web", "image": "nginx", "pull": "never"})
	if !out.Failed || !strings.Contains(out.Msg, "pull is never") {
		t.Fatalf("pull never: %+v", out)
	}
	out = runModule(t, h, "docker", map[string]any{"name": "web", "image": "bad/image"})
	if !out.Failed || !strings.Contains(out.Msg, "manifest unknown") {
		t.Fatalf("bad image: %+v", out)
	}
	c := h.Conn.(*localConn)
	c.fakeBin(t, "podman", fakeDocker)
	out = runModule(t, h, "docker", map[string]any{"name": "web", "image": "nginx", "runtime": "podman", "command": "nginx -g 'daemon off;'"})
	if !out.Changed || !strings.Contains(dockerLog(d), "podman run -d --name web") || !strings.Contains(dockerLog(d), "nginx nginx -g daemon off;") {
		t.Fatalf("podman: %+v %q", out, dockerLog(d))
	}
}

// docker_container's etc_hosts, log_driver and log_options reach docker run
// (and the settings hash: changing one replaces the container); force_kill
// kills instead of stopping; a bad host entry is refused before any call.
func TestDockerHostsLogsAndKill(t *testing.T) {
	h, d := fakeDockerHost(t)
	args := map[string]any{"name": "app_blue_0", "image": "localhost/app:v1", "etc_hosts": map[string]any{"redis": "10.0.0.5", "db": "10.0.0.6"},
		"log_driver": "json-file", "log_options": map[string]any{"max-size": "10m", "tag": "app"}}
	if out := runModule(t, h, "docker", args); !out.Changed || out.Failed {
		t.Fatalf("create: %+v", out)
	}
	if log := dockerLog(d); !strings.Contains(log, "--add-host db:10.0.0.6 --add-host redis:10.0.0.5 --log-driver json-file --log-opt max-size=10m --log-opt tag=app localhost/app:v1") {
		t.Fatalf("run: %q", log)
	}
	if out := runModule(t, h, "docker", args); out.Changed {
		t.Fatalf("same settings: %+v", out)
	}
	args["log_options"] = map[string]any{"max-size": "20m"}
	if out := runModule(t, h, "docker", args); !out.Changed || !strings.Contains(out.Msg, "settings changed") {
		t.Fatalf("log option change: %+v", out)
	}
	if out := runModule(t, h, "docker", map[string]any{"name": "app_blue_0", "state": "stopped", "force_kill": true}); !out.Changed || !strings.Contains(dockerLog(d), "docker kill app_blue_0") {
		t.Fatalf("force_kill: %+v %q", out, dockerLog(d))
	}
	for _, bad := range []map[string]any{{"a b": "1.2.3.4"}, {"x:y": "1.2.3.4"}, {"h": ""}, {"h": "1.2.3.4 evil"}} {
		args["etc_hosts"] = bad
		if _, err := Call(t.Context(), dockerModule{}, h, args); err == nil {
			t.Errorf("etc_hosts %v accepted", bad)
		}
	}
}

// Several networks: the container is created on the first, connected to
// the others, then started; one network is network: (the same hash).
func TestDockerNetworks(t *testing.T) {
	h, d := fakeDockerHost(t)
	args := map[string]any{"name": "api", "image": "localhost/app:v1", "networks": []any{"front", "back", "metrics"}}
	if out := runModule(t, h, "docker", args); !out.Changed || out.Failed {
		t.Fatalf("create: %+v", out)
	}
	log := dockerLog(d)
	for _, want := range []string{"docker create --name api --label ferry.config=", "--network front localhost/app:v1\ndocker network connect back api\ndocker network connect metrics api\ndocker start api\n"} {
		if !strings.Contains(log, want) {
			t.Fatalf("log %q lacks %q", log, want)
		}
	}
	if out := runModule(t, h, "docker", args); out.Changed {
		t.Errorf("same networks: %+v", out)
	}
	args["networks"] = []any{"front", "back"}
	if out := runModule(t, h, "docker", args); !out.Changed || !strings.Contains(out.Msg, "settings changed") {
		t.Errorf("one network fewer: %+v", out)
	}
	one := map[string]any{"name": "web", "image": "localhost/app:v1", "network": "front"}
	runModule(t, h, "docker", one)
	if out := runModule(t, h, "docker", map[string]any{"name": "web", "image": "localhost/app:v1", "networks": []any{"front"}}); out.Changed {
		t.Errorf("networks: [front] is network: front: %+v", out)
	}
	for _, bad := range []map[string]any{{"network": "x", "networks": []any{"a", "b"}}, {"networks": []any{"a", "--privileged"}}} {
		bad["name"], bad["image"] = "x", "localhost/app:v1"
		if _, err := Call(t.Context(), dockerModule{}, h, bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// The settings hash is the same every time for the same settings (maps are
// walked in a fixed order), or every run would replace the container.
func TestDockerHashStable(t *testing.T) {
	d := &dockerSpec{image: "a:1", etcHosts: map[string]string{"x": "1.1.1.1", "y": "2.2.2.2"}, logOptions: map[string]string{"tag": "a", "max-size": "1m"},
		env: map[string]string{"A": "1", "B": "2"}, networks: []string{"b"}}
	first := d.hash()
	for i := 0; i < 50; i++ {
		if h := d.hash(); h != first {
			t.Fatalf("hash %s then %s", first, h)
		}
	}
}

package tasks

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDockerCLI puts a `docker` on PATH that keeps images and networks as
// files in a directory and logs its calls.
func fakeDockerCLI(t *testing.T) (state string) {
	dir := t.TempDir()
	state = filepath.Join(dir, "state")
	os.MkdirAll(filepath.Join(state, "image"), 0o755)
	os.MkdirAll(filepath.Join(state, "network"), 0o755)
	script := `#!/bin/sh
s=` + state + `
echo "$*" >> $s/calls
k() { echo "$1" | tr '/:' '__'; }
case "$1 $2" in
"image inspect") [ "$3" = -f ] && { cat "$s/image/$(k "$5")" 2>/dev/null || exit 1; exit 0; }; [ -e "$s/image/$(k "$3")" ] ;;
"pull "*) n=$(cat $s/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > $s/n; echo "sha256:$n" > "$s/image/$(k "$2")" ;;
"rmi "*) rm "$s/image/$(k "$2")" ;;
"network inspect") [ -e "$s/network/$3" ] ;;
"network create") eval last=\${$#}; touch "$s/network/$last" ;;
"network rm") rm "$s/network/$3" ;;
*) exit 2 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return state
}

func TestDockerImageAndNetwork(t *testing.T) {
	state := fakeDockerCLI(t)
	h := &Host{Conn: newLocalConn(t)}
	run := func(mod string, args map[string]any) Outcome {
		t.Helper()
		m, _ := Lookup(mod)
		out, err := Call(context.Background(), m, h, args)
		if err != nil || out.Failed {
			t.Fatalf("%s %v: %+v %v", mod, args, out, err)
		}
		return out
	}
	if !run("docker_image", map[string]any{"name": "app", "tag": "1.2"}).Changed {
		t.Error("first pull: not changed")
	}
	if run("docker_image", map[string]any{"name": "app:1.2"}).Changed {
		t.Error("present image pulled again")
	}
	if !run("docker_image", map[string]any{"name": "app:1.2", "force_source": true}).Changed {
		t.Error("force_source: a new image id is a change")
	}
	if !run("docker_image", map[string]any{"name": "app:1.2", "state": "absent"}).Changed {
		t.Error("remove: not changed")
	}
	if !run("docker_network", map[string]any{"name": "backend", "driver": "bridge"}).Changed || run("docker_network", map[string]any{"name": "backend"}).Changed {
		t.Error("network: created once")
	}
	if !run("docker_network", map[string]any{"name": "backend", "state": "absent"}).Changed {
		t.Error("network removed: not changed")
	}
	calls, _ := os.ReadFile(filepath.Join(state, "calls"))
	if n := strings.Count(string(calls), "pull app:1.2"); n != 2 {
		t.Errorf("%d pulls, want 2:\n%s", n, calls)
	}
	if !strings.Contains(string(calls), "network create --driver bridge backend") {
		t.Errorf("calls:\n%s", calls)
	}
}

package tasks_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/tasks"
)

// TestLabDockerPodmanNetworks: a container on several networks (podman, as
// docker_container's networks: [{name}, ...] asks) is attached to each of
// them, and a second run with the same networks changes nothing.
func TestLabDockerPodmanNetworks(t *testing.T) {
	if reason := podmanReady(); reason != "" {
		t.Skip(reason)
	}
	l := lab.StartT(t, lab.Options{Hosts: 1})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = l.Exec(ctx, "app1", "podman rm -f -a >/dev/null 2>&1; podman network rm -f fnet-a fnet-b >/dev/null 2>&1")
	})
	_, client := labConnect(t, l, "app1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	user := &tasks.Host{Name: "app1", Conn: client}
	root := &tasks.Host{Name: "app1", Conn: client, Become: tasks.RunOptions{Become: true}}
	dir := t.TempDir()
	tarball := filepath.Join(dir, "app-v1.tar")
	imageTar(t, buildApp(t, dir, "v1"), tarball)
	mustPass(t, "upload", runModule(t, ctx, user, "copy", map[string]any{"src": tarball, "dest": "/tmp/"}), true)
	if out := runModule(t, ctx, root, "shell", map[string]any{"cmd": `podman import --change 'CMD ["/app"]' /tmp/app-v1.tar localhost/app:v1`}); out.Failed {
		t.Fatalf("podman import: %s %v", out.Msg, out.Result["stderr"])
	}
	for _, n := range []string{"fnet-a", "fnet-b"} {
		mustPass(t, "network "+n, runModule(t, ctx, root, "docker_network", map[string]any{"name": n, "runtime": "podman"}), true)
	}
	args := map[string]any{"name": "multi", "image": "localhost/app:v1", "runtime": "podman", "pull": "never", "networks": []any{"fnet-a", "fnet-b"}}
	out := runModule(t, ctx, root, "docker", args)
	if out.Failed {
		t.Fatalf("create on two networks: %s", out.Msg)
	}
	got := labExec(t, l, "app1", `podman inspect --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}{{.State.Running}}' multi`)
	if !strings.Contains(got, "fnet-a") || !strings.Contains(got, "fnet-b") || !strings.HasSuffix(got, "true") {
		t.Fatalf("networks and state: %q", got)
	}
	mustPass(t, "again", runModule(t, ctx, root, "docker", args), false)
}

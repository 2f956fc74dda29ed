package ssh_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/ssh"
)

// TestKeepAliveHostBehindBastionLinkDown: a host behind a bastion loses its
// link while a long command runs on it. The keepalives on the host's own
// connection (through the bastion's channel) find it dead and the command
// fails as unreachable while the remote command is still running: the
// bastion's own connection stays healthy, so only host-level keepalives can
// notice. As in the lab's inventory, the target names its own ssh_config
// (-F) that says nothing of keepalives: the operator's ServerAliveInterval
// (ferry's own ssh config) still applies to it.
func TestKeepAliveHostBehindBastionLinkDown(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("lab test")
	}
	l := lab.StartT(t, lab.Options{Hosts: 1})
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(cfg, []byte("Host *\n    ServerAliveInterval 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mgr, err := ssh.NewManager(ssh.Config{SSHConfigFiles: []string{cfg}, KnownHostsFiles: []string{l.KnownHosts}, Policy: ssh.Strict, Warn: func(string) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	app := l.Hosts[0]
	c, err := mgr.Connect(ctx, ssh.Target{Name: app.Name, ConfigFile: l.SSHConfig})
	if err != nil {
		t.Fatal(err)
	}
	// The remote shell leaves its PID (that of sleep, after exec) on the
	// host, so the test can see, through the host's namespace, whether the
	// command still runs.
	const pidFile = "/tmp/ferry-keepalive.pid"
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, "echo $$ > "+pidFile+"; exec sleep 60", ssh.RunOptions{})
		done <- err
	}()
	running := func() bool {
		out, _ := l.Exec(ctx, app.Name, "p=$(cat "+pidFile+" 2>/dev/null) && [ \"$(cat /proc/$p/comm 2>/dev/null)\" = sleep ] && echo yes || true")
		return strings.TrimSpace(out) == "yes"
	}
	for i := 0; !running(); i++ {
		if i > 200 {
			t.Fatal("the remote command never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := l.SetLink(app.Name, false); err != nil {
		t.Fatal(err)
	}
	defer l.SetLink(app.Name, true)
	select {
	case err = <-done:
	case <-ctx.Done():
		t.Fatal("Run never returned")
	}
	if !running() {
		t.Fatalf("Run returned (%v) only after the remote command ended: the dead link was not noticed by the keepalives", err)
	}
	var se *ssh.Error
	if !errors.As(err, &se) || se.Kind != ssh.KindUnreachable || !strings.Contains(err.Error(), "keepalives 1s apart") {
		t.Fatalf("err = %v, want an unreachable error", err)
	}
}

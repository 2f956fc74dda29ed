package cli

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/lab"
	"github.com/ferrydeploy/ferry/ssh"
)

// BenchmarkRoundTrip measures one command on a kept connection through the
// bastion: ferry's floor for a task, to compare with one command over an
// OpenSSH ControlMaster (scripts/bench-exec.sh).
func BenchmarkRoundTrip(b *testing.B) {
	l := lab.StartT(b, lab.Options{Hosts: 1})
	mgr, err := ssh.NewManager(ssh.Config{KnownHostsFiles: []string{l.KnownHosts}, IdentityFiles: []string{l.KeyFile},
		Policy: ssh.Strict, PolicySet: true, SSHConfigFiles: []string{}, AgentSocket: "none", NoDefaultKeys: true})
	if err != nil {
		b.Fatal(err)
	}
	defer mgr.Close()
	h := l.Hosts[0]
	c, err := mgr.Connect(context.Background(), ssh.Target{Name: h.Name, Addr: h.Addr, User: l.User, Jumps: []ssh.Hop{{User: l.User, Host: l.Bastions[0].Addr}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res, err := c.Run(context.Background(), "true", ssh.RunOptions{}); err != nil || res.ExitCode != 0 {
			b.Fatalf("run: %v %d", err, res.ExitCode)
		}
	}
}

// BenchmarkTaskOverhead runs a playbook of 50 `command: true` tasks on one
// host through the CLI (parse, preflight, events, record) and reports the
// time per task; compare with BenchmarkRoundTrip for ferry's own overhead.
func BenchmarkTaskOverhead(b *testing.B) {
	l := lab.StartT(b, lab.Options{Hosts: 1})
	dir := b.TempDir()
	var pb strings.Builder
	pb.WriteString("- hosts: app\n  tasks:\n")
	const tasks = 50
	for i := 0; i < tasks; i++ {
		pb.WriteString("    - command: \"true\"\n")
	}
	path := filepath.Join(dir, "pb.yml")
	os.WriteFile(path, []byte(pb.String()), 0o600)
	b.Setenv("HOME", dir)
	b.Setenv("SSH_AUTH_SOCK", "")
	b.Setenv("FERRY_KNOWN_HOSTS", l.KnownHosts)
	b.Setenv("FERRY_RECORD_DIR", dir)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if code := run(context.Background(), []string{"run", path, "-i", l.Inventory, "-o", "json"}, strings.NewReader(""), io.Discard, io.Discard); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N*tasks), "µs/task")
}

package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
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

// BenchmarkTaskOverhead runs playbooks of 1 and 51 `command: true` tasks on
// one host through the CLI (parse, preflight, events, record) and reports
// the marginal time per task, (T51 - T1) / 50: ferry's cost per task, to
// compare with BenchmarkRoundTrip (one command on a kept connection).
func BenchmarkTaskOverhead(b *testing.B) {
	l := lab.StartT(b, lab.Options{Hosts: 1})
	dir := b.TempDir()
	write := func(n int) string {
		var pb strings.Builder
		pb.WriteString("- hosts: app\n  tasks:\n")
		for i := 0; i < n; i++ {
			pb.WriteString("    - command: \"true\"\n")
		}
		path := filepath.Join(dir, fmt.Sprintf("pb%d.yml", n))
		os.WriteFile(path, []byte(pb.String()), 0o600)
		return path
	}
	one, many := write(1), write(51)
	b.Setenv("HOME", dir)
	b.Setenv("SSH_AUTH_SOCK", "")
	b.Setenv("FERRY_KNOWN_HOSTS", l.KnownHosts)
	b.Setenv("FERRY_RECORD_DIR", dir)
	timed := func(path string) time.Duration {
		start := time.Now()
		if code := run(context.Background(), []string{"run", path, "-i", l.Inventory, "-o", "json"}, strings.NewReader(""), io.Discard, io.Discard); code != 0 {
			b.Fatalf("exit %d", code)
		}
		return time.Since(start)
	}
	b.ResetTimer()
	var d1, d51 time.Duration
	for i := 0; i < b.N; i++ {
		d1 += timed(one)
		d51 += timed(many)
	}
	b.ReportMetric(float64((d51-d1).Microseconds())/float64(b.N*50), "µs/task")
	b.ReportMetric(float64(d1.Microseconds())/float64(b.N)/1000, "ms/1-task-run")
}

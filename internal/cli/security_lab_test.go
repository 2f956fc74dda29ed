package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
)

// asNobody runs a bash script inside host as an unprivileged user (nobody),
// like another user of the machine.
func asNobody(ctx context.Context, l *lab.Lab, host, script string) (*os.Process, *bufio.Scanner, func() error, error) {
	cmd, err := l.Command(ctx, host, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", "/bin/bash", "-c", script)
	if err != nil {
		return nil, nil, nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return cmd.Process, sc, cmd.Wait, nil
}

// While a task with environment: {DB_PASSWORD: ...} and become: true runs,
// no process list on the host and no file another user can read holds the
// value (issue 8 finding 3).
func TestLabEnvironmentNeverVisibleOnHost(t *testing.T) {
	t.Parallel()
	l := lab.StartT(t, lab.Options{Hosts: 1})
	isolate(t)
	records := t.TempDir()
	secret := "s3cr3t-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "x")
	h := sha256.Sum256([]byte(secret))
	sum := hex.EncodeToString(h[:]) // the task checks the value without naming it
	dir := t.TempDir()
	pb := filepath.Join(dir, "env.yml")
	os.WriteFile(pb, []byte(`- hosts: app
  tasks:
    - name: uses the password
      become: true
      environment:
        DB_PASSWORD: "{{ db_password }}"
      shell: 'i=0; while [ ! -e /tmp/.sampler-saw ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; s=$(printf %s "$DB_PASSWORD" | sha256sum); [ "${s%% *}" = `+sum+` ] && [ "$(id -u)" = 0 ] && echo env-ok'
`), 0o600)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The sampler prints every command line on the host, again and again,
	// until the stop file appears (bounded by a count as well).
	proc, sc, wait, err := asNobody(ctx, l, "app1",
		`for i in $(seq 1 20000); do [ -e /tmp/.stop-sampler ] && break; for f in /proc/[0-9]*/cmdline; do tr '\0\n' '  ' < "$f" 2>/dev/null; echo; done; done`)
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Kill()
	var mu sync.Mutex
	var leaked, sawTask bool
	var samples int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			samples++
			if strings.Contains(line, secret) {
				leaked = true
			}
			// The task's process: a shell that runs its script as root (through
			// a sudo of its own, or the host's become shell, ssh/shell.go).
			if !sawTask && strings.Contains(line, "sha256sum") && strings.Contains(line, ".sampler-saw") {
				// The task waits until the sampler has seen it run.
				sawTask = true
				go l.Exec(ctx, "app1", "touch /tmp/.sampler-saw")
			}
			mu.Unlock()
		}
	}()

	r := ferry(t, []string{"FERRY_KNOWN_HOSTS=" + l.KnownHosts, "FERRY_RECORD_DIR=" + records},
		"run", pb, "-i", l.Inventory, "-e", "db_password="+secret, "--output", "plain", "-v")
	if _, err := l.Exec(ctx, "app1", "touch /tmp/.stop-sampler"); err != nil {
		t.Fatal(err)
	}
	<-done
	_ = wait()
	if r.code != 0 || !strings.Contains(r.stdout, "env-ok") {
		t.Fatalf("the task did not get its environment: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, secret) {
		t.Fatalf("the value came back in ferry's output (echoed by sudo or the shell):\n%s%s", r.stdout, r.stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if !sawTask {
		t.Fatalf("the sampler never saw the task's process (%d samples): the test proves nothing", samples)
	}
	if leaked {
		t.Fatalf("DB_PASSWORD's value was visible in a process's command line on the host")
	}

	// No file another user can read holds it (the value comes on stdin, so
	// grep's own command line does not show it).
	grep, err := l.Command(ctx, "app1", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
		"grep", "-rlsF", "-f", "-", "/tmp", "/var/tmp", "/var/log", "/home", "/opt", "/root", "/run", "/dev/shm", "/etc")
	if err != nil {
		t.Fatal(err)
	}
	grep.Stdin = strings.NewReader(secret + "\n")
	if out, _ := grep.Output(); len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("files readable by others hold the value:\n%s", out)
	}
}

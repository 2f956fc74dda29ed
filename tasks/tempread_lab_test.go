package tasks_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/tasks"
)

// reader opens every ferry temp entry it can see under the given
// directories (and inside them), keeps what it opened, and reports any
// that ever showed content.
const reader = `
import os, sys, time
stop = sys.argv[-1]; dirs = sys.argv[1:-1]
opened = {}; leaks = set(); scans = 0
deadline = time.time() + 240
def look(p):
    if p in opened:
        return
    try:
        opened[p] = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        pass
while not os.path.exists(stop) and time.time() < deadline:
    scans += 1
    for d in dirs:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            if 'ferry' not in n:
                continue
            p = os.path.join(d, n)
            look(p)
            try:
                for m in os.listdir(p):
                    look(os.path.join(p, m))
            except OSError:
                pass
    for p, fd in list(opened.items()):
        try:
            if os.pread(fd, 16, 0):
                leaks.add(p)
        except OSError:
            pass
    if len(opened) > 500:
        for fd in opened.values():
            os.close(fd)
        opened.clear()
print('scans', scans)
for p in sorted(leaks):
    print('LEAK', p)
`

// A user of the host never opens a temp file of copy, docker or script
// while it holds content. The 60 rounds run in parts, each on a lab of its
// own with a reader of its own, beside each other.
func TestLabTempFilesNeverReadable(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("hundreds of tasks (-short)")
	}
	const parts, rounds = 3, 20 // 60 rounds of copy, script and docker in all
	for p := 1; p <= parts; p++ {
		t.Run(fmt.Sprintf("part%d", p), func(t *testing.T) {
			t.Parallel()
			tempFilesNeverReadable(t, rounds)
		})
	}
}

// tempFilesNeverReadable runs copy, script and docker as root, rounds
// times, while nobody opens every ferry temp entry it sees.
func tempFilesNeverReadable(t *testing.T, rounds int) {
	l := lab.StartT(t, lab.Options{Hosts: 1})
	labExec(t, l, "app1", "mkdir -p /opt/app && chmod 755 /opt/app")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	wait := nobody(t, ctx, l, "app1", reader, "/opt/app", "/tmp", "/tmp/.stop-reader")

	dir := t.TempDir()
	script := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n# secret hook body\ntrue\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, client := labConnect(t, l, "app1")
	h := &tasks.Host{Name: "app1", Conn: client, Become: tasks.RunOptions{Become: true}, Dir: dir}
	began := time.Now()
	for i := 0; i < rounds; i++ {
		mustPass(t, "copy", runModule(t, ctx, h, "copy", map[string]any{"content": fmt.Sprintf("password=%d\n", i), "dest": "/opt/app/app.conf", "mode": "0640"}), true)
		mustPass(t, "script", runModule(t, ctx, h, "script", map[string]any{"src": "hook.sh"}), true)
		// The image does not exist: the env file is written, then the pull fails.
		runModule(t, ctx, h, "docker", map[string]any{"name": "api", "image": "localhost/none:1", "env": map[string]any{"DB_PASSWORD": "s3cret"}})
	}
	took := time.Since(began)
	labExec(t, l, "app1", "touch /tmp/.stop-reader")
	out := wait()
	t.Logf("reader, during %d rounds in %v: %s", rounds, took.Round(time.Millisecond), strings.SplitN(out, "\n", 2)[0])
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "LEAK") {
			t.Errorf("another user read a temp file while it held content: %s", sc.Text())
		}
	}
	if !strings.HasPrefix(out, "scans ") {
		t.Fatalf("reader output: %q", out)
	}
	if left := labExec(t, l, "app1", "ls -A /tmp /opt/app | grep ferry || true"); left != "" {
		t.Errorf("temp files left behind: %s", left)
	}
}

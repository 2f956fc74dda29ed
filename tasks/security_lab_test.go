package tasks_test

// Attacks from a user on the host (issue 8, findings 1 and 2): the owner of
// a deploy directory racing ferry's temp files, and any user trying to read
// them while they hold content.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/tasks"
)

// nobody starts a Python program inside host as user nobody (65534); its
// standard output is returned by the func, which waits for the program.
func nobody(t *testing.T, ctx context.Context, l *lab.Lab, host, prog string, args ...string) func() string {
	t.Helper()
	argv := append([]string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", "/usr/bin/python3", "-c", prog}, args...)
	cmd, err := l.Command(ctx, host, argv...)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return func() string {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v: %s", err, errb.String())
		}
		return out.String()
	}
}

// swapper renames every entry in a directory it owns (dest, and any ferry
// temp entry there: copy now stages its files where only root can write)
// back and forth with a symlink (to the secret for a file, to a directory of
// symlinks to the secret for a directory), as fast as it can.
const swapper = `
import os, sys, time
d, secret, stop = sys.argv[1], sys.argv[2], sys.argv[3]
evil = os.path.join(d, 'evil')
os.makedirs(evil, exist_ok=True)
for i in range(64):
    p = os.path.join(evil, 'f%d' % i)
    if not os.path.lexists(p):
        os.symlink(secret, p)
swaps = 0
deadline = time.time() + 240
while not os.path.exists(stop) and time.time() < deadline:
    try:
        names = os.listdir(d)
    except OSError:
        continue
    for n in names:
        if n == 'evil' or n.endswith('.saved') or n.endswith('.x'):
            continue
        e = os.path.join(d, n); s = e + '.saved'; x = e + '.x'
        try:
            if os.path.lexists(x):
                os.unlink(x)
            os.symlink(evil if os.path.isdir(e) and not os.path.islink(e) else secret, x)
            for _ in range(100):
                os.rename(e, s); os.rename(x, e)
                swaps += 1
                os.rename(e, x); os.rename(s, e)
        except OSError:
            pass
print(swaps)
`

// A racing unprivileged owner of the destination directory, swapping copy's
// temp files for symlinks hundreds of times, never changes the owner or
// mode of a file outside the destination. The 200 copies run in parts,
// each on a lab of its own with a racer of its own, beside each other.
func TestLabCopyTempSymlinkRace(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("hundreds of copies (-short)")
	}
	const parts, copies = 4, 50 // 200 copies under the race in all
	for p := 1; p <= parts; p++ {
		t.Run(fmt.Sprintf("part%d", p), func(t *testing.T) {
			t.Parallel()
			copyTempSymlinkRace(t, copies)
		})
	}
}

// copyTempSymlinkRace copies to /opt/victim as root, copies times, while
// nobody, who owns /opt/victim, swaps every entry there for a symlink.
func copyTempSymlinkRace(t *testing.T, copies int) {
	l := lab.StartT(t, lab.Options{Hosts: 1})
	labExec(t, l, "app1", "mkdir -p /opt/victim && chown nobody: /opt/victim && "+
		"printf 'old\\n' > /opt/victim/app && chown nobody: /opt/victim/app && chmod 644 /opt/victim/app && "+
		"printf 'root only\\n' > /etc/ferry-secret && chmod 600 /etc/ferry-secret")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	wait := nobody(t, ctx, l, "app1", swapper, "/opt/victim", "/etc/ferry-secret", "/tmp/.stop-swapper")

	_, client := labConnect(t, l, "app1")
	root := &tasks.Host{Name: "app1", Conn: client, Become: tasks.RunOptions{Become: true}}
	copyMod, _ := tasks.Lookup("copy")
	ok, failed := 0, 0
	began := time.Now()
	for i := 0; i < copies; i++ {
		out, err := copyMod.Run(ctx, root, map[string]any{"content": fmt.Sprintf("release %d\n", i), "dest": "/opt/victim/app"})
		if err == nil && !out.Failed {
			ok++
		} else {
			failed++
		}
		if i%20 != 19 {
			continue
		}
		if st := labExec(t, l, "app1", "stat -c '%U %a' /etc/ferry-secret"); st != "root 600" {
			t.Fatalf("after %d copies the racing owner of /opt/victim got /etc/ferry-secret changed to %q (want root 600)", i+1, st)
		}
	}
	took := time.Since(began)
	labExec(t, l, "app1", "touch /tmp/.stop-swapper")
	swaps, _ := strconv.Atoi(strings.TrimSpace(wait()))
	t.Logf("%d copies in %v: %d succeeded, %d failed; %d swaps by the racer (%d a copy)", copies, took.Round(time.Millisecond), ok, failed, swaps, swaps/copies)
	if swaps == 0 {
		t.Fatal("the racer never swapped anything: the test proves nothing")
	}
	if st := labExec(t, l, "app1", "stat -c '%U %a' /etc/ferry-secret; stat -c '%U %a' /opt/victim/evil"); st != "root 600\nnobody 755" {
		t.Fatalf("owners/modes outside the destination changed: %q", st)
	}
}

// BenchmarkLabCopySmallChanged replaces a small file through the bastion
// as root (a config file): what the private temp directory and setting
// attributes on the handle cost per changed file.
//
//	go test ./tasks/ -run '^$' -bench LabCopySmallChanged -benchtime 200x
func BenchmarkLabCopySmallChanged(b *testing.B) {
	l := lab.StartT(b, lab.Options{Hosts: 1})
	_, client := labConnect(b, l, "app1")
	root := &tasks.Host{Name: "app1", Conn: client, Become: tasks.RunOptions{Become: true}}
	ctx := context.Background()
	runModule(b, ctx, root, "copy", map[string]any{"content": "warm-up", "dest": "/opt/app.conf", "mode": "0640"})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mustPass(b, "copy", runModule(b, ctx, root, "copy", map[string]any{"content": fmt.Sprintf("setting=%d\n", i), "dest": "/opt/app.conf", "mode": "0640"}), true)
	}
}

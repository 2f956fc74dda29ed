package tasks_test

// Modules against real hosts: sshd in the lab's namespaces, reached through
// the lab's bastion with ferry's own SSH manager, as a run reaches them.
// These tests need root (the lab skips them otherwise); the docker test also
// needs podman (scripts/deps.sh containers).

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/ssh"
	"github.com/ferrydeploy/ferry/tasks"
)

// labConnect opens ferry's connection to a lab app host through the bastion.
// The Manager is closed at cleanup (closing it twice is harmless).
func labConnect(t testing.TB, l *lab.Lab, name string) (*ssh.Manager, *ssh.Client) {
	t.Helper()
	h, ok := l.Host(name)
	if !ok {
		t.Fatalf("lab has no host %s", name)
	}
	mgr, err := ssh.NewManager(ssh.Config{KnownHostsFiles: []string{l.KnownHosts}, IdentityFiles: []string{l.KeyFile}, Policy: ssh.Strict})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mgr.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := mgr.Connect(ctx, ssh.Target{Name: name, Addr: h.Addr, User: l.User, Jumps: []ssh.Hop{{User: l.User, Host: l.Bastions[0].Addr}}})
	if err != nil {
		t.Fatalf("connect %s through the bastion: %v", name, err)
	}
	return mgr, client
}

// runModule runs a module as the runner would; an error (as opposed to a
// failed outcome) ends the test.
func runModule(t testing.TB, ctx context.Context, h *tasks.Host, name string, args map[string]any) tasks.Outcome {
	t.Helper()
	m, ok := tasks.Lookup(name)
	if !ok {
		t.Fatalf("no module %s", name)
	}
	out, err := tasks.Call(ctx, m, h, args)
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return out
}

// mustPass fails the test unless the outcome succeeded with the wanted changed.
func mustPass(t testing.TB, what string, out tasks.Outcome, changed bool) {
	t.Helper()
	if out.Failed || out.Skipped || out.Changed != changed {
		t.Fatalf("%s: want changed=%v, got %+v", what, changed, out)
	}
}

// buildApp builds the example app, statically linked, with its version baked in.
func buildApp(t testing.TB, dir, version string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go tool on PATH to build the example app")
	}
	out := filepath.Join(dir, "app-"+version)
	cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags", "-X main.version="+version, "-o", out, "../playbooks/examples/app")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build app %s: %v\n%s", version, err, b)
	}
	return out
}

func labExec(t testing.TB, l *lab.Lab, host, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := l.Exec(ctx, host, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func fileSum(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// remoteSum is the SHA-256 of a file on a host, read inside the host.
func remoteSum(t testing.TB, l *lab.Lab, host, p string) string {
	t.Helper()
	out := labExec(t, l, host, "sha256sum < "+p)
	sum, _, _ := strings.Cut(out, " ")
	return sum
}

// randomFile writes size bytes that do not compress, like a real binary.
func randomFile(t testing.TB, p string, size int64) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// podmanReady says why podman cannot run containers here ("" if it can).
func podmanReady() string {
	if _, err := exec.LookPath("podman"); err != nil {
		return "needs podman: scripts/deps.sh containers"
	}
	if _, err := os.Stat("/etc/containers/containers.conf"); err != nil {
		return "podman needs /etc/containers/containers.conf (runc, cgroupfs, ulimits): scripts/deps.sh containers writes it"
	}
	return ""
}

// imageTar is a one-file root filesystem: the app at /app.
func imageTar(t testing.TB, bin, out string) {
	t.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "app", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLabDockerPodman drives real containers with podman on a lab host: a
// deploy of v1, an upgrade to v2 that replaces the running container, stop
// and removal, each checked through the host's own port and each repeated
// to see that an identical second run changes nothing.
func TestLabDockerPodman(t *testing.T) {
	t.Parallel() // beside the adversarial tests: podman's state is the host's own (/var, /run)
	if reason := podmanReady(); reason != "" {
		t.Skip(reason)
	}
	l := lab.StartT(t, lab.Options{Hosts: 1})
	// Before the lab closes (cleanups run last-registered first): killing
	// the host would end a container left by a failed test, but leave its
	// cgroups behind on the machine.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = l.Exec(ctx, "app1", "podman rm -f -a >/dev/null 2>&1")
	})
	_, client := labConnect(t, l, "app1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	user := &tasks.Host{Name: "app1", Conn: client}
	root := &tasks.Host{Name: "app1", Conn: client, Become: tasks.RunOptions{Become: true}}

	// Two images built on the host from tarballs sent with the copy module:
	// no registry is involved.
	dir := t.TempDir()
	for _, v := range []string{"v1", "v2"} {
		tarball := filepath.Join(dir, "app-"+v+".tar")
		imageTar(t, buildApp(t, dir, v), tarball)
		mustPass(t, "upload "+v, runModule(t, ctx, user, "copy", map[string]any{"src": tarball, "dest": "/tmp/"}), true)
		out := runModule(t, ctx, root, "shell", map[string]any{"cmd": fmt.Sprintf(`podman import --change 'CMD ["/app"]' /tmp/app-%s.tar localhost/app:%s`, v, v)})
		if out.Failed {
			t.Fatalf("podman import %s: %s\n%v", v, out.Msg, out.Result["stderr"])
		}
	}

	live := func(image string) map[string]any {
		return map[string]any{"name": "live", "image": image, "runtime": "podman", "network": "host", "pull": "never"}
	}
	smoke := func(version string) tasks.Outcome {
		return runModule(t, ctx, user, "http", map[string]any{
			"url": "http://127.0.0.1:8080/status", "json": map[string]any{"version": version, "hostname": "app1"},
			"retries": 50, "delay": "100ms", "timeout": "2s",
		})
	}
	containers := func() string { // "name image running", one line per container
		return labExec(t, l, "app1", `podman ps -a --format '{{.Names}}' | while read -r n; do podman inspect --format '{{.Name}} {{.ImageName}} {{.State.Running}}' "$n"; done`)
	}

	out := runModule(t, ctx, root, "docker", live("localhost/app:v1"))
	mustPass(t, "start v1", out, true)
	if got := fmt.Sprint(out.Result["actions"]); got != "[create container]" {
		t.Errorf("start v1: actions %s, want [create container]", got)
	}
	if out := smoke("v1"); out.Failed {
		t.Fatalf("v1 smoke test: %s", out.Msg)
	}
	mustPass(t, "start v1 again", runModule(t, ctx, root, "docker", live("localhost/app:v1")), false)

	// Check mode says what an upgrade would do and does none of it.
	checkRoot := *root
	checkRoot.Check = true
	out = runModule(t, ctx, &checkRoot, "docker", live("localhost/app:v2"))
	if !out.Changed || !strings.Contains(out.Diff, "replace container") {
		t.Fatalf("check v2: %+v", out)
	}
	if out := smoke("v1"); out.Failed {
		t.Fatalf("check mode touched the container: %s", out.Msg)
	}

	// The upgrade stops the running v1 container and starts v2 under the
	// same name; the new app answers the smoke test.
	before := labExec(t, l, "app1", `podman inspect --format '{{.Id}}' live`)
	out = runModule(t, ctx, root, "docker", live("localhost/app:v2"))
	mustPass(t, "upgrade to v2", out, true)
	if got := fmt.Sprint(out.Result["actions"]); !strings.Contains(got, "replace container (image localhost/app:v1 -> localhost/app:v2)") {
		t.Errorf("upgrade: actions %s", got)
	}
	if out := smoke("v2"); out.Failed {
		t.Fatalf("v2 smoke test: %s", out.Msg)
	}
	if after := labExec(t, l, "app1", `podman inspect --format '{{.Id}}' live`); after == before {
		t.Errorf("upgrade kept container %s", before)
	}
	if got := containers(); got != "live localhost/app:v2 true" {
		t.Fatalf("after the upgrade, containers are:\n%s", got)
	}
	mustPass(t, "start v2 again", runModule(t, ctx, root, "docker", live("localhost/app:v2")), false)

	// stopped: the app no longer answers; a second stop changes nothing.
	stopped := live("localhost/app:v2")
	stopped["state"] = "stopped"
	mustPass(t, "stop", runModule(t, ctx, root, "docker", stopped), true)
	if got := containers(); got != "live localhost/app:v2 false" {
		t.Fatalf("after stop, containers are:\n%s", got)
	}
	if out := runModule(t, ctx, user, "http", map[string]any{"url": "http://127.0.0.1:8080/status", "timeout": "2s"}); !out.Failed {
		t.Fatalf("a stopped container still answers: %+v", out)
	}
	mustPass(t, "stop again", runModule(t, ctx, root, "docker", stopped), false)

	// started again with the same settings: the same container is restarted.
	out = runModule(t, ctx, root, "docker", live("localhost/app:v2"))
	mustPass(t, "restart", out, true)
	if got := fmt.Sprint(out.Result["actions"]); got != "[start container]" {
		t.Errorf("restart: actions %s, want [start container]", got)
	}
	if out := smoke("v2"); out.Failed {
		t.Fatalf("smoke test after restart: %s", out.Msg)
	}

	// absent removes the (running) container; a second run changes nothing.
	absent := map[string]any{"name": "live", "runtime": "podman", "state": "absent"}
	mustPass(t, "remove", runModule(t, ctx, root, "docker", absent), true)
	if got := containers(); got != "" {
		t.Fatalf("after absent, containers are:\n%s", got)
	}
	mustPass(t, "remove again", runModule(t, ctx, root, "docker", absent), false)
}

// TestLabCopyAtomicReplace replaces the binary of a running app with a large
// file and drops the connection mid-copy: the old binary must stay whole at
// dest and keep running. A complete copy then lands, and a repeat is skipped
// by checksum.
func TestLabCopyAtomicReplace(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("copies hundreds of MB through a lab (-short)")
	}
	l := lab.StartT(t, lab.Options{Hosts: 1})
	dir := t.TempDir()
	oldBin := buildApp(t, dir, "v1")
	oldSum := fileSum(t, oldBin)
	newBin := filepath.Join(dir, "app-big")
	randomFile(t, newBin, 160<<20)
	newSum := fileSum(t, newBin)
	hostDir, err := l.HostDir("app1")
	if err != nil {
		t.Fatal(err)
	}
	binDir := filepath.Join(hostDir, "opt", "app", "bin") // the host's /opt/app/bin, seen from the machine

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	copyArgs := func(src string) map[string]any {
		return map[string]any{"src": src, "dest": "/opt/app/bin/app", "mode": "0755"}
	}
	_, client := labConnect(t, l, "app1")
	root := &tasks.Host{Name: "app1", Conn: client, Become: tasks.RunOptions{Become: true}}
	mustPass(t, "install v1", runModule(t, ctx, root, "copy", copyArgs(oldBin)), true)
	labExec(t, l, "app1", "setsid -f /opt/app/bin/app --listen 127.0.0.1:8080 >/var/log/app.log 2>&1 </dev/null")
	pid := labExec(t, l, "app1", "for i in $(seq 100); do p=$(pgrep -x app) && break; sleep 0.05; done; echo $p")
	if pid == "" {
		t.Fatalf("the app did not start: %s", labExec(t, l, "app1", "cat /var/log/app.log"))
	}
	if out := runModule(t, ctx, root, "http", map[string]any{"url": "http://127.0.0.1:8080/status", "json": map[string]any{"version": "v1"}, "retries": 50, "delay": "100ms"}); out.Failed {
		t.Fatalf("app v1: %s", out.Msg)
	}

	// A fresh connection for the copy that is cut: closing its Manager from
	// here, once the temp file on the host has grown, is a dropped link.
	mgr, cutClient := labConnect(t, l, "app1")
	cut := &tasks.Host{Name: "app1", Conn: cutClient, Become: tasks.RunOptions{Become: true}}
	type result struct {
		out tasks.Outcome
		err error
	}
	done := make(chan result, 1)
	copyMod, _ := tasks.Lookup("copy")
	go func() {
		out, err := copyMod.Run(ctx, cut, copyArgs(newBin))
		done <- result{out, err}
	}()
	var seen int64
	deadline := time.After(2 * time.Minute)
wait:
	for {
		select {
		case r := <-done:
			t.Fatalf("the copy ended before the connection was cut (temp file seen at %d bytes): %+v %v", seen, r.out, r.err)
		case <-deadline:
			t.Fatal("no temp file grew under /opt/app/bin within 2 minutes")
		case <-time.After(time.Millisecond):
		}
		ents, _ := os.ReadDir(binDir)
		for _, e := range ents {
			if !strings.Contains(e.Name(), ".ferry-tmp-") {
				continue
			}
			// The temp file lives in a private directory beside dest.
			inner, _ := os.ReadDir(filepath.Join(binDir, e.Name()))
			for _, f := range inner {
				if info, err := f.Info(); err == nil && info.Size() > 4<<20 {
					seen = info.Size()
					break wait
				}
			}
		}
	}
	if err := mgr.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the copy did not return within a minute of its connection closing")
	}
	if r.err == nil && !r.out.Failed {
		t.Fatalf("copy over a cut connection (cut at %d bytes) reported success: %+v", seen, r.out)
	}
	t.Logf("cut at %d of %d bytes: %v %s", seen, 160<<20, r.err, r.out.Msg)

	if got := remoteSum(t, l, "app1", "/opt/app/bin/app"); got != oldSum {
		t.Fatalf("dest changed by an interrupted copy: sha256 %s, want the old binary's %s", got, oldSum)
	}
	if got := labExec(t, l, "app1", "pgrep -x app"); got != pid {
		t.Fatalf("app pid %q after the cut copy, want %s", got, pid)
	}
	// What the cut copy leaves is its private temp directory beside dest
	// (the sftp-server that wrote it is gone with the connection), never dest.
	ents, _ := os.ReadDir(binDir)
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case e.Name() == "app":
		case strings.HasPrefix(e.Name(), ".app.ferry-tmp-"):
			t.Logf("left behind: %s", e.Name())
			if !info.IsDir() || info.Mode().Perm() != 0o700 {
				t.Errorf("leftover temp %s has mode %v, want a 0700 directory", e.Name(), info.Mode())
			}
		default:
			t.Errorf("unexpected file %s (%d bytes) beside dest", e.Name(), info.Size())
		}
	}

	// Over the first (healthy) connection: the app still answers, the full
	// copy replaces its binary under it, and a repeat is skipped.
	if out := runModule(t, ctx, root, "http", map[string]any{"url": "http://127.0.0.1:8080/status", "json": map[string]any{"version": "v1"}}); out.Failed {
		t.Fatalf("the app stopped answering after the cut copy: %s", out.Msg)
	}
	out := runModule(t, ctx, root, "copy", copyArgs(newBin))
	mustPass(t, "full copy", out, true)
	if out.Result["checksum"] != newSum {
		t.Errorf("copy reports checksum %v, want %s", out.Result["checksum"], newSum)
	}
	if got := remoteSum(t, l, "app1", "/opt/app/bin/app"); got != newSum {
		t.Fatalf("after the full copy dest has sha256 %s, want %s", got, newSum)
	}
	if got := labExec(t, l, "app1", "stat -c %a /opt/app/bin/app"); got != "755" {
		t.Errorf("dest mode %s, want 755", got)
	}
	// The running process kept its (now unlinked) binary: a rename never
	// writes into a file being executed.
	if got := labExec(t, l, "app1", "pgrep -x app"); got != pid {
		t.Fatalf("app pid %q after the full copy, want %s", got, pid)
	}
	if got := labExec(t, l, "app1", "readlink /proc/"+pid+"/exe"); got != "/opt/app/bin/app (deleted)" {
		t.Errorf("running app's executable is %q, want the replaced /opt/app/bin/app (deleted)", got)
	}
	out = runModule(t, ctx, root, "copy", copyArgs(newBin))
	mustPass(t, "repeat copy", out, false)
	if !strings.HasPrefix(out.Msg, "unchanged") {
		t.Errorf("repeat copy: %q, want unchanged", out.Msg)
	}
}

// BenchmarkCopy200MB copies 200 MB through the bastion to an app host with
// the copy module and with OpenSSH's scp over the same path, and reports the
// throughput of each and their ratio (ferry/scp). The copy module's time
// includes what scp does not do: hashing the source, verifying the landed
// file's SHA-256 on the host, fsync and the rename.
//
//	go test ./tasks/ -run '^$' -bench Copy200MB -benchtime 3x
func BenchmarkCopy200MB(b *testing.B) {
	scp, err := exec.LookPath("scp")
	if err != nil {
		b.Skip("needs OpenSSH's scp: apt-get install openssh-client")
	}
	const size = 200 << 20
	l := lab.StartT(b, lab.Options{Hosts: 1})
	dir := b.TempDir()
	src := filepath.Join(dir, "payload")
	randomFile(b, src, size)
	_, client := labConnect(b, l, "app1")
	h := &tasks.Host{Name: "app1", Conn: client}
	ctx := context.Background()
	// Warm up both paths (SFTP session, sudo-less login, page cache).
	mustPass(b, "warm-up", runModule(b, ctx, h, "copy", map[string]any{"content": "x", "dest": "/tmp/warm"}), true)

	var ferryTime, scpTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dest := fmt.Sprintf("/tmp/ferry-%d", i)
		start := time.Now()
		out := runModule(b, ctx, h, "copy", map[string]any{"src": src, "dest": dest})
		ferryTime += time.Since(start)
		mustPass(b, "copy", out, true)

		start = time.Now()
		cmd := exec.Command(scp, "-q", "-F", l.SSHConfig, src, fmt.Sprintf("app1:/tmp/scp-%d", i))
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("scp: %v\n%s", err, o)
		}
		scpTime += time.Since(start)
		b.StopTimer()
		labExec(b, l, "app1", fmt.Sprintf("rm -f /tmp/ferry-%d /tmp/scp-%d", i, i))
		b.StartTimer()
	}
	mb := float64(size) / 1e6 * float64(b.N)
	ferryMBs, scpMBs := mb/ferryTime.Seconds(), mb/scpTime.Seconds()
	b.ReportMetric(ferryMBs, "ferry-MB/s")
	b.ReportMetric(scpMBs, "scp-MB/s")
	b.ReportMetric(ferryMBs/scpMBs, "ferry/scp")
}

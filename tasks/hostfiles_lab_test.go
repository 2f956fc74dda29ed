package tasks_test

// The adversarial test of every module that touches host files (issue 16):
// it iterates the registry, so a new module that declares Spec.HostFiles is
// covered without test code of its own. The attacker is an unprivileged
// user, app, who owns the deploy directory /opt/app (the everyday set-up,
// often /srv/app; /opt is the lab host's own, /srv the machine's);
// ferry runs as root (become). Root-only files and directories live under
// /etc/ferry-secret; after every call they must have the same names,
// owners, modes and content, and nothing app can read may hold their
// content.

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/tasks"
)

const (
	attackDir = "/opt/app" // /opt is the lab host's own (/srv is the machine's)
	secretDir = "/etc/ferry-secret"
	secretTxt = "ROOT-ONLY-SECRET"
	// secretName is a name that exists only in the root-only tree: a module
	// that lists directories as root must never report it.
	secretName = "root-only-name-7f3a"
)

// secretSetup makes the root-only targets: files named as modules write
// them, and directories (releases would prune them) holding more.
const secretSetup = `rm -rf ` + secretDir + ` && mkdir -p ` + secretDir + ` && cd ` + secretDir + ` && ` +
	`for n in secret app.conf .env current .ferry-releases index.html f ` + secretName + `; do printf '` + secretTxt + ` %s\n' "$n" > "$n"; done && ` +
	`for d in conf www static releases v9 x r1 r2 r3 r4; do mkdir -p "$d/sub" && printf '` + secretTxt + ` %s\n' "$d" > "$d/app.conf" && printf '` + secretTxt + `\n' > "$d/sub/f" && : > "$d/sub/` + secretName + `"; done && ` +
	`chmod -R go-rwx . && chmod 700 . && chown -R root:root .`

// snapshotCmd lists every name, type, owner, mode, size and content digest
// under the root-only tree.
const snapshotCmd = `cd ` + secretDir + ` && find . -printf '%p %y %u %g %m %s\n' | sort && find . -type f -exec sha256sum {} + | sort && stat -c '%U %a' .`

// racer swaps every entry under a directory tree it owns (the deploy
// directory, its subdirectories and ferry's temp entries) with a symlink to
// the root-only directory (for a directory) or file, back and forth.
const racer = `
import os, sys, time
top, secret, stop = sys.argv[1], sys.argv[2], sys.argv[3]
swaps = 0
deadline = time.time() + 240
while not os.path.exists(stop) and time.time() < deadline:
    for d, dirs, files in os.walk(top):
        for n in dirs + files:
            if n.endswith('.saved') or n.endswith('.x'):
                continue
            e = os.path.join(d, n); s = e + '.saved'; x = e + '.x'
            try:
                if os.path.lexists(x):
                    os.unlink(x)
                isdir = os.path.isdir(e) and not os.path.islink(e)
                os.symlink(secret if isdir else os.path.join(secret, 'secret'), x)
                for _ in range(20):
                    os.rename(e, s); os.rename(x, e)
                    swaps += 1
                    os.rename(e, x); os.rename(s, e)
            except OSError:
                pass
print(swaps)
`

// attackLab is one lab host set up for the attacks, for one module's
// subtest: nothing in it is shared with another subtest.
type attackLab struct {
	t        *testing.T
	l        *lab.Lab
	root     *tasks.Host
	uid, gid string // app's
	at       tasks.FileAttack
	before   string // snapshotCmd's output before any call
}

func TestLabHostFilesAdversarial(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs every host-file module under attack (-short)")
	}
	covered := 0
	for _, spec := range tasks.Specs() {
		if spec.HostFiles == nil {
			continue
		}
		covered++
		// Each module on a lab of its own, beside the others: the calls of
		// one module run one after the other (a call's attacks build on the
		// deploy directory it prepared).
		t.Run(spec.Name, func(t *testing.T) {
			t.Parallel()
			attackModule(t, spec)
		})
	}
	if covered < 7 {
		t.Errorf("only %d modules declare HostFiles; copy, template, lineinfile, get_url, unarchive, release and file touch host files", covered)
	}
}

// attackModule runs each sample call of a module as meant, with dest and
// its parents planted as symlinks, and ten times under the owner's race.
func attackModule(t *testing.T, spec tasks.Spec) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	a := startAttackLab(t, ctx)
	calls := spec.HostFiles(a.at)
	if len(calls) == 0 {
		t.Errorf("%s declares HostFiles but gives no sample call", spec.Name)
	}
	ok := 0
	for i, c := range calls {
		// The call as meant: the deploy directory as it should be.
		a.prepare(c)
		out := a.run(ctx, spec.Name, c)
		if !out.Failed {
			ok++
		}
		t.Logf("call %d as meant: failed %v: %.200s", i, out.Failed, out.Msg)
		// (b) dest and each of its parents below the deploy directory
		// planted as a symlink to a root-only directory or file.
		rel := strings.TrimPrefix(c.Target, attackDir+"/")
		parts := strings.Split(rel, "/")
		for j := range parts {
			for _, to := range []string{secretDir, secretDir + "/secret"} {
				p := path.Join(attackDir, strings.Join(parts[:j+1], "/"))
				a.prepare(c, fmt.Sprintf("mkdir -p %s && rm -rf %s && ln -sfn %s %s", path.Dir(p), p, to, p))
				t.Logf("call %d, %s -> %s", i, p, to)
				a.run(ctx, spec.Name, c)
			}
		}
		// (a) the owner racing: every entry swapped for a symlink, in
		// a loop, while the call runs again and again.
		a.prepare(c)
		a.run(ctx, spec.Name, c) // temps and dest exist from now on
		stop := "/tmp/.stop-racer"
		labExec(t, a.l, "app1", "rm -f "+stop)
		wait := a.asUser(ctx, a.uid, a.gid, racer, attackDir, secretDir, stop)
		t.Cleanup(func() { _, _ = a.l.Exec(context.Background(), "app1", "touch "+stop) }) // also when the subtest stops early
		began := time.Now()
		for k := 0; k < 10; k++ {
			if len(c.Layout) > 0 && k%2 == 1 {
				a.asApp("cd " + attackDir + " && { " + layoutShell(c.Layout) + "; } 2>/dev/null; true") // more for a cleanup to remove, under the race
			}
			a.run(ctx, spec.Name, c)
		}
		took := time.Since(began)
		labExec(t, a.l, "app1", "touch "+stop)
		n, _ := strconv.Atoi(strings.TrimSpace(wait()))
		t.Logf("call %d: %d swaps by the racer during 10 calls (%.0f a call, in %v)", i, n, float64(n)/10, took.Round(time.Millisecond))
		if n == 0 {
			t.Errorf("call %d: the racer never swapped anything: the race proves nothing", i)
		}
		a.check(fmt.Sprintf("call %d under the race", i), tasks.Outcome{})
	}
	if ok == 0 {
		t.Errorf("no sample call of %s succeeded on an ordinary deploy directory: the attacks prove nothing", spec.Name)
	}
}

// startAttackLab starts a one-host lab for t and sets it up for the
// attacks: the app user, the root-only tree, the local sources, get_url's
// server on the host's own loopback, and a connection as root.
func startAttackLab(t *testing.T, ctx context.Context) *attackLab {
	t.Helper()
	l := lab.StartT(t, lab.Options{Hosts: 1})
	a := &attackLab{t: t, l: l}
	labExec(t, l, "app1", "id app >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin app")
	a.uid, a.gid = labExec(t, l, "app1", "id -u app"), labExec(t, l, "app1", "id -g app")
	labExec(t, l, "app1", secretSetup)

	local := t.TempDir()
	a.at = tasks.FileAttack{Dir: attackDir, Local: local, Evil: filepath.Join(local, "evil.tar"), Modes: filepath.Join(local, "modes.tar"), URL: "http://127.0.0.1:8999/file", Secret: secretDir + "/secret"}
	writeLocal(t, filepath.Join(local, "file"), "from the controller\n")
	writeLocal(t, filepath.Join(local, "tree", "app.conf"), "setting=2\n")
	writeLocal(t, filepath.Join(local, "tree", "static", "app.css"), "body{}\n")
	writeTar(t, filepath.Join(local, "archive.tar"), []tarEntry{
		{name: "static/", mode: 0o755, dir: true}, {name: "static/app.conf", mode: 0o644, body: "a=1\n"}, {name: "index.html", mode: 0o644, body: "<h1>hi</h1>\n"},
	})
	writeTar(t, a.at.Evil, []tarEntry{
		{name: "static/", mode: 0o2777, dir: true},
		{name: "static/app.conf", mode: 0o4755, body: "#!/bin/sh\nid\n"},
		{name: "setuid-root", mode: 0o6755, body: "#!/bin/sh\nid\n"},
		{name: "a\n../escape-newline", mode: 0o644, body: "x\n"},
		{name: "/escape-absolute", mode: 0o644, body: "x\n"},
	})
	writeTar(t, a.at.Modes, []tarEntry{
		{name: "static/", mode: 0o2777, dir: true},
		{name: "static/app.conf", mode: 0o4755, body: "#!/bin/sh\nid\n"},
		{name: "setuid-root", mode: 0o6755, body: "#!/bin/sh\nid\n"},
	})
	writeTar(t, filepath.Join(local, "dotdot.tar"), []tarEntry{{name: "../../escape-dotdot", mode: 0o644, body: "x\n"}})

	// get_url's server, on the host's own loopback.
	labExec(t, l, "app1", "mkdir -p /opt/www-src && printf 'from the server\\n' > /opt/www-src/file && chmod -R a+rX /opt/www-src")
	a.asUser(ctx, "65534", "65534", "import http.server, functools, sys\n"+
		"h = functools.partial(http.server.SimpleHTTPRequestHandler, directory='/opt/www-src')\n"+
		"http.server.ThreadingHTTPServer(('127.0.0.1', 8999), h).serve_forever()\n")
	labExec(t, l, "app1", "for i in $(seq 100); do curl -sf http://127.0.0.1:8999/file >/dev/null && exit 0; sleep 0.1; done; exit 1")

	_, client := labConnect(t, l, "app1")
	a.root = &tasks.Host{Name: "app1", Conn: client, Become: tasks.RunOptions{Become: true}, Dir: local,
		Render: func(s string) (string, error) { return s, nil }}
	a.before = labExec(t, l, "app1", snapshotCmd)
	return a
}

// resetCmd gives app a fresh, empty deploy directory (and www for
// unarchive).
const resetCmd = "rm -rf " + attackDir + " /opt/escape-* /escape-* && mkdir -p " + attackDir + "/www && chown -R app: " + attackDir + " && chmod 755 " + attackDir

// prepare resets the deploy directory, then, as app, makes the call's
// target directory, its Layout and any more commands given: one process
// in the host.
func (a *attackLab) prepare(c tasks.FileCall, more ...string) {
	a.t.Helper()
	app := []string{"mkdir -p " + path.Dir(c.Target)}
	if len(c.Layout) > 0 {
		app = append(app, "(cd "+attackDir+" && "+layoutShell(c.Layout)+")")
	}
	labExec(a.t, a.l, "app1", resetCmd+" && "+a.asAppCmd(strings.Join(append(app, more...), " && ")))
}

// layoutShell is the shell that makes a FileCall's Layout.
func layoutShell(layout []string) string {
	var cmds []string
	for _, e := range layout {
		switch name, target, link := strings.Cut(e, " -> "); {
		case link:
			cmds = append(cmds, fmt.Sprintf("mkdir -p %s && ln -sfn %s %s", shell.Quote(path.Dir(name)), shell.Quote(target), shell.Quote(name)))
		case strings.HasSuffix(e, "/"):
			cmds = append(cmds, "mkdir -p "+shell.Quote(e))
		default:
			cmds = append(cmds, fmt.Sprintf("mkdir -p %s && touch %s", shell.Quote(path.Dir(e)), shell.Quote(e)))
		}
	}
	return strings.Join(cmds, " && ")
}

// asApp runs a shell command as app inside the host.
func (a *attackLab) asApp(cmd string) {
	a.t.Helper()
	labExec(a.t, a.l, "app1", a.asAppCmd(cmd))
}

// asAppCmd is the command that runs a shell command as app.
func (a *attackLab) asAppCmd(cmd string) string {
	return fmt.Sprintf("setpriv --reuid=%s --regid=%s --clear-groups -- /bin/sh -c %s", a.uid, a.gid, shell.Quote(cmd))
}

// run calls the module with become and checks nothing root-only changed or
// leaked; it returns the outcome (an error counts as failed).
func (a *attackLab) run(ctx context.Context, name string, c tasks.FileCall) tasks.Outcome {
	a.t.Helper()
	m, _ := tasks.Lookup(name)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := tasks.Call(cctx, m, a.root, c.Args)
	if err != nil {
		out = tasks.Outcome{Failed: true, Msg: err.Error()}
	}
	a.check(fmt.Sprintf("%s %v", name, c.Args), out)
	return out
}

// check compares the root-only tree with before, looks for its content
// where app can read it, for setuid/setgid files app could have planted
// through ferry, and for files written outside the deploy directory.
func (a *attackLab) check(what string, out tasks.Outcome) {
	a.t.Helper()
	// The three looks in one process in the host, each after a marker line.
	seen := map[string][]string{}
	part := "@@snapshot"
	for _, line := range strings.Split(labExec(a.t, a.l, "app1", a.checkCmd()), "\n") {
		if strings.HasPrefix(line, "@@") {
			part = line
			continue
		}
		seen[part] = append(seen[part], line)
	}
	look := func(part string) string { return strings.TrimSpace(strings.Join(seen[part], "\n")) }
	if after := look("@@snapshot"); after != a.before {
		a.t.Errorf("%s: root-only files changed (outcome %+v):\n%s", what, out, diffLines(a.before, after))
		labExec(a.t, a.l, "app1", secretSetup)
	}
	if leak := look("@@leak"); leak != "" {
		a.t.Errorf("%s: root-only content readable by app in %s (outcome %+v)", what, leak, out)
	}
	if s := look("@@planted"); s != "" {
		a.t.Errorf("%s: setuid/setgid or escaped files: %s (outcome %+v)", what, s, out)
	}
	if said := fmt.Sprintf("%s %v %s", out.Msg, out.Result, out.Diff); strings.Contains(said, secretTxt) || strings.Contains(said, secretName) {
		a.t.Errorf("%s: the outcome discloses root-only content or names: %.300s", what, said)
	}
	if out.Failed && strings.TrimSpace(out.Msg) == "" {
		a.t.Errorf("%s: failed without saying why", what)
	}
}

// checkCmd prints snapshotCmd's output; after "@@leak", the files under
// the deploy directory or /tmp where app can read root-only content; after
// "@@planted", setuid/setgid files there and files escaped from it.
func (a *attackLab) checkCmd() string {
	return "(" + snapshotCmd + ") || exit; " +
		"echo @@leak; " + a.asAppCmd(fmt.Sprintf("grep -rls %s %s /tmp 2>/dev/null || true", secretTxt, attackDir)) + "; " +
		"echo @@planted; find " + attackDir + " -perm /6000 -print 2>/dev/null; ls -d /opt/app/escape-* /opt/escape-* /escape-* 2>/dev/null || true"
}

// asUser starts a Python program in the host as uid:gid; the returned func
// waits for it and returns its standard output.
func (a *attackLab) asUser(ctx context.Context, uid, gid, prog string, args ...string) func() string {
	a.t.Helper()
	argv := append([]string{"setpriv", "--reuid=" + uid, "--regid=" + gid, "--clear-groups", "--", "/usr/bin/python3", "-c", prog}, args...)
	cmd, err := a.l.Command(ctx, "app1", argv...)
	if err != nil {
		a.t.Fatal(err)
	}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	t := a.t
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return func() string {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v: %s", err, errb.String())
		}
		return out.String()
	}
}

func diffLines(a, b string) string {
	in := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		in[l]++
	}
	var d []string
	for _, l := range strings.Split(b, "\n") {
		if in[l] > 0 {
			in[l]--
			continue
		}
		d = append(d, "+ "+l)
	}
	for l, n := range in {
		for ; n > 0; n-- {
			d = append(d, "- "+l)
		}
	}
	sort.Strings(d)
	return strings.Join(d, "\n")
}

func writeLocal(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

type tarEntry struct {
	name string
	mode int64
	body string
	dir  bool
}

func writeTar(t *testing.T, p string, entries []tarEntry) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: tar.TypeReg, Uid: 0, Gid: 0, ModTime: time.Unix(1700000000, 0)}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

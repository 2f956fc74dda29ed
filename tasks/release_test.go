package tasks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func releases(t *testing.T, base string) []string {
	t.Helper()
	es, _ := os.ReadDir(filepath.Join(base, "releases"))
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func current(t *testing.T, base string) string {
	t.Helper()
	l, err := os.Readlink(filepath.Join(base, "current"))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Base(l)
}

func TestReleaseDeployKeepRollback(t *testing.T) {
	h, _, _ := testHost(t)
	base := filepath.Join(t.TempDir(), "app")
	src := filepath.Join(h.Dir, "dist")
	os.Mkdir(src, 0o755)
	// Versions activated in an order their names do not sort in.
	for _, v := range []string{"b", "a", "c"} {
		mustWrite(t, filepath.Join(src, "api"), "build "+v, 0o755)
		out := runModule(t, h, "release", map[string]any{"path": base, "src": "dist", "version": v, "keep": 2})
		if !out.Changed || out.Failed {
			t.Fatalf("deploy %s: %+v", v, out)
		}
		if current(t, base) != v || mustRead(t, filepath.Join(base, "current", "api")) != "build "+v {
			t.Fatalf("after %s: current %s", v, current(t, base))
		}
	}
	// keep 2: "b" (oldest activation) is gone, though "a" sorts first.
	if got := releases(t, base); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Fatalf("releases %v", got)
	}
	out := runModule(t, h, "release", map[string]any{"path": base, "src": "dist", "version": "c", "keep": 2})
	if out.Changed || out.Result["previous"] != "a" {
		t.Fatalf("redeploy of current: %+v", out)
	}

	out = runModule(t, h, "release", map[string]any{"path": base, "rollback": true})
	if !out.Changed || current(t, base) != "a" || out.Result["previous"] != "c" || !strings.HasSuffix(out.Result["release"].(string), "/releases/a") {
		t.Fatalf("rollback: %+v current %s", out, current(t, base))
	}
	out = runModule(t, h, "release", map[string]any{"path": base, "rollback": true})
	if !out.Failed || out.Changed || !strings.Contains(out.Msg, "nothing to roll back to") || current(t, base) != "a" {
		t.Fatalf("second rollback: %+v", out)
	}
	hist := strings.Fields(mustRead(t, filepath.Join(base, ".ferry-releases")))
	if !reflect.DeepEqual(hist, []string{"a"}) {
		t.Fatalf("history %v", hist)
	}
	// The rolled-back release is pruned first, never current or previous.
	mustWrite(t, filepath.Join(src, "api"), "build d", 0o755)
	runModule(t, h, "release", map[string]any{"path": base, "src": "dist", "version": "d", "keep": 1})
	if got := releases(t, base); !reflect.DeepEqual(got, []string{"a", "d"}) {
		t.Fatalf("releases after keep 1: %v", got)
	}
}

func TestReleaseSingleFileAndCheckMode(t *testing.T) {
	h, _, _ := testHost(t)
	base := filepath.Join(t.TempDir(), "svc")
	mustWrite(t, filepath.Join(h.Dir, "svc.bin"), "v1", 0o755)
	h.Check = true
	out := runModule(t, h, "release", map[string]any{"path": base, "src": "svc.bin", "version": "1"})
	if !out.Changed {
		t.Fatalf("%+v", out)
	}
	if _, err := os.Stat(base); !os.IsNotExist(err) {
		t.Fatal("check mode created the layout")
	}
	h.Check = false
	out = runModule(t, h, "release", map[string]any{"path": base, "src": "svc.bin", "version": "1", "mode": "0755"})
	if !out.Changed || mustRead(t, filepath.Join(base, "current", "svc.bin")) != "v1" {
		t.Fatalf("%+v", out)
	}
	if fileMode(t, filepath.Join(base, "releases", "1", "svc.bin")) != 0o755 {
		t.Fatal("mode not applied")
	}
	out = runModule(t, h, "release", map[string]any{"path": base, "rollback": true})
	if !out.Failed || slices.Contains(releases(t, base), "") {
		t.Fatalf("rollback with one release: %+v", out)
	}
}

func TestPruneList(t *testing.T) {
	got := pruneList([]string{"1", "2", "3", "4", "x"}, []string{"1", "2", "3", "4"}, 2, "4", "1")
	if !reflect.DeepEqual(got, []string{"2", "x"}) {
		t.Fatalf("prune %v", got)
	}
}

func TestReleaseRollbackUndoesOnlyThisRun(t *testing.T) {
	// In a play's rollback, release goes back only when this run made the
	// current release: a host that failed before its upload keeps its release.
	h, _, _ := testHost(t)
	base := filepath.Join(t.TempDir(), "app")
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "bin"), []byte("v1"), 0o755)
	h.State = map[string]any{}
	if out := runModule(t, h, "release", map[string]any{"path": base, "src": src + "/", "version": "v1"}); out.Failed {
		t.Fatalf("v1: %+v", out)
	}
	os.WriteFile(filepath.Join(src, "bin"), []byte("v2"), 0o755)
	if out := runModule(t, h, "release", map[string]any{"path": base, "src": src + "/", "version": "v2"}); out.Failed {
		t.Fatalf("v2: %+v", out)
	}
	// A later run that failed before its upload: its state is fresh.
	h.State = map[string]any{}
	h.Rollback = true
	if out := runModule(t, h, "release", map[string]any{"path": base, "rollback": true}); out.Changed || out.Failed {
		t.Fatalf("rollback without an upload in this run: %+v", out)
	}
	if cur, _ := os.Readlink(filepath.Join(base, "current")); filepath.Base(cur) != "v2" {
		t.Fatalf("current -> %s, want v2 untouched", cur)
	}
	// This run uploaded v3: the rollback goes back to v2, once.
	os.WriteFile(filepath.Join(src, "bin"), []byte("v3"), 0o755)
	h.Rollback = false
	if out := runModule(t, h, "release", map[string]any{"path": base, "src": src + "/", "version": "v3"}); out.Failed {
		t.Fatalf("v3: %+v", out)
	}
	h.Rollback = true
	if out := runModule(t, h, "release", map[string]any{"path": base, "rollback": true}); !out.Changed {
		t.Fatalf("rollback of this run's v3: %+v", out)
	}
	if cur, _ := os.Readlink(filepath.Join(base, "current")); filepath.Base(cur) != "v2" {
		t.Fatalf("current -> %s, want v2", cur)
	}
	if out := runModule(t, h, "release", map[string]any{"path": base, "rollback": true}); out.Changed {
		t.Fatalf("a second rollback went back again: %+v", out)
	}
}

// activate: false stages a release (files in place, checksums checked)
// without touching current or the history; the same call with activate
// then copies nothing and only switches.
func TestReleaseStageThenActivate(t *testing.T) {
	h, c, _ := testHost(t)
	base := filepath.Join(t.TempDir(), "app")
	src := filepath.Join(h.Dir, "dist")
	os.Mkdir(src, 0o755)
	mustWrite(t, filepath.Join(src, "api"), "build 1", 0o755)
	runModule(t, h, "release", map[string]any{"path": base, "src": "dist", "version": "v1"})

	mustWrite(t, filepath.Join(src, "api"), "build 2", 0o755)
	out := runModule(t, h, "release", map[string]any{"path": base, "src": "dist", "version": "v2", "activate": false})
	if !out.Changed || out.Failed || !strings.Contains(out.Msg, "staged") {
		t.Fatalf("stage: %+v", out)
	}
	if current(t, base) != "v1" || mustRead(t, filepath.Join(base, "releases", "v2", "api")) != "build 2" {
		t.Fatalf("after staging: current %s", current(t, base))
	}
	if hist := strings.Fields(mustRead(t, filepath.Join(base, ".ferry-releases"))); !reflect.DeepEqual(hist, []string{"v1"}) {
		t.Fatalf("staging changed the history: %v", hist)
	}
	out = runModule(t, h, "release", map[string]any{"path": base, "src": "dist", "version": "v2", "activate": false})
	if out.Changed || out.Failed {
		t.Fatalf("staging again: %+v", out)
	}
	before := len(c.cmds)
	out = runModule(t, h, "release", map[string]any{"path": base, "src": "dist", "version": "v2"})
	if !out.Changed || current(t, base) != "v2" || strings.Contains(out.Msg, "updated") || !strings.Contains(out.Msg, "current -> v2 (was v1)") {
		t.Fatalf("switch: %+v", out)
	}
	// Inside the host's window: one command checks the staged files, reads
	// the layout and, as both are what the stage left, switches.
	if n := len(c.cmds) - before; n != 1 {
		t.Errorf("activating a staged release took %d commands, want 1", n)
	}
	if hist := strings.Fields(mustRead(t, filepath.Join(base, ".ferry-releases"))); !reflect.DeepEqual(hist, []string{"v1", "v2"}) {
		t.Fatalf("history after the switch: %v", hist)
	}
	// A rollback goes back to v1: staging was not an activation.
	h.State = map[string]any{}
	if out := runModule(t, h, "release", map[string]any{"path": base, "rollback": true}); current(t, base) != "v1" {
		t.Fatalf("rollback: %+v", out)
	}
}

// The one-command switch of a staged release holds only while the host has
// what the stage left: files changed since (content or mode), or a layout
// changed since (another release activated or added), make the activation
// go the long way, probe then switch, with the same result as without a
// stage. The run's state after each is what a rollback needs.
func TestReleaseStagedSwitchFallsBack(t *testing.T) {
	kept := []string{"v2", "v3"}
	for _, tc := range []struct {
		name     string
		after    func(t *testing.T, base string) // between stage and activation
		fast     bool                            // one command
		pruned   []string
		releases []string // and the history
	}{
		{"unchanged", func(*testing.T, string) {}, true, []string{"v1"}, kept},
		{"content", func(t *testing.T, base string) {
			mustWrite(t, filepath.Join(base, "releases", "v3", "api"), "tampered", 0o755)
		}, false, []string{"v1"}, kept},
		// The same size and modification time as what the stage verified:
		// the change time still tells (the stage's record of the file is
		// not taken for its content).
		{"content behind the same size and mtime", func(t *testing.T, base string) {
			api := filepath.Join(base, "releases", "v3", "api")
			st, err := os.Stat(api)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, api, "build vX", 0o755)
			if err := os.Chtimes(api, st.ModTime(), st.ModTime()); err != nil {
				t.Fatal(err)
			}
		}, false, []string{"v1"}, kept},
		{"mode", func(t *testing.T, base string) {
			if err := os.Chmod(filepath.Join(base, "releases", "v3", "api"), 0o700); err != nil {
				t.Fatal(err)
			}
		}, false, []string{"v1"}, kept},
		{"missing", func(t *testing.T, base string) {
			if err := os.Remove(filepath.Join(base, "releases", "v3", "api")); err != nil {
				t.Fatal(err)
			}
		}, false, []string{"v1"}, kept},
		// A release added since the stage: keep 2 prunes it too.
		{"layout", func(t *testing.T, base string) {
			if err := os.Mkdir(filepath.Join(base, "releases", "old"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, false, []string{"old", "v1"}, kept},
		// v1 made current again since: it is now the previous release, kept.
		{"current", func(t *testing.T, base string) {
			if err := os.Remove(filepath.Join(base, "current")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(base, "releases", "v1"), filepath.Join(base, "current")); err != nil {
				t.Fatal(err)
			}
		}, false, []string{}, []string{"v1", "v2", "v3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, c, _ := testHost(t)
			base := filepath.Join(t.TempDir(), "app")
			src := filepath.Join(h.Dir, "dist")
			os.Mkdir(src, 0o755)
			for _, v := range []string{"v1", "v2"} {
				mustWrite(t, filepath.Join(src, "api"), "build "+v, 0o755)
				runModule(t, h, "release", map[string]any{"path": base, "src": "dist", "version": v, "mode": "0755", "keep": 2})
			}
			mustWrite(t, filepath.Join(src, "api"), "build v3", 0o755)
			if out := runModule(t, h, "release", map[string]any{"path": base, "src": "dist", "version": "v3", "mode": "0755", "activate": false}); !out.Changed || out.Failed {
				t.Fatalf("stage: %+v", out)
			}
			// A new run's state, but for what the stage left.
			verified := verifiedKey(filepath.Join(base, "releases", "v3"))
			if _, ok := h.State[verified].(map[string]string)["api"]; !ok {
				t.Fatalf("the stage left no record of the file it verified: %v", h.State)
			}
			h.State = map[string]any{layoutKey(base): h.State[layoutKey(base)], verified: h.State[verified]}
			// Every checksum the activation computes is logged: a file the
			// stage verified, still the same file, is not read again.
			hashes := filepath.Join(t.TempDir(), "hashes")
			c.fakeBin(t, "openssl", "#!/bin/sh\necho openssl >>"+hashes+"\nexec /usr/bin/openssl \"$@\"\n")
			c.fakeBin(t, "sha256sum", "#!/bin/sh\necho sha256sum >>"+hashes+"\nexec /usr/bin/sha256sum \"$@\"\n")
			tc.after(t, base)
			before := len(c.cmds)
			// What current is after each command: never the staged release
			// while its files are not what this run uploads.
			var seen []string
			h.Conn = watchConn{c, func() { seen = append(seen, current(t, base)) }}
			out := runModule(t, h, "release", map[string]any{"path": base, "src": "dist", "version": "v3", "mode": "0755", "keep": 2})
			if want := map[bool]string{true: "v3", false: "v2"}[tc.fast]; tc.name != "current" && seen[0] != want {
				t.Errorf("current after the first command: %s, want %s", seen[0], want)
			}
			if out.Failed || !out.Changed || current(t, base) != "v3" {
				t.Fatalf("activate: %+v, current %s", out, current(t, base))
			}
			if n := len(c.cmds) - before; (n == 1) != tc.fast {
				t.Errorf("activation took %d commands (one-command switch expected: %v)", n, tc.fast)
			}
			// A file is read (or uploaded and checked) only when it is not
			// what the stage verified.
			changed := map[string]bool{"content": true, "content behind the same size and mtime": true, "mode": true, "missing": true}[tc.name]
			if b, _ := os.ReadFile(hashes); changed != (len(b) > 0) {
				t.Errorf("checksums computed in the activation: %q (the file changed since the stage: %v)", b, changed)
			}
			if _, ok := h.State[verified]; ok {
				t.Errorf("the stage's record of its files is still in the host's state")
			}
			api := filepath.Join(base, "releases", "v3", "api")
			if got := mustRead(t, api); got != "build v3" || fileMode(t, api) != 0o755 {
				t.Errorf("activated %q, mode %v", got, fileMode(t, api))
			}
			if got := out.Result["pruned"]; !reflect.DeepEqual(got, toAnyList(tc.pruned)) {
				t.Errorf("pruned %v, want %v", got, tc.pruned)
			}
			if got := releases(t, base); !reflect.DeepEqual(got, tc.releases) {
				t.Errorf("releases %v, want %v", got, tc.releases)
			}
			if hist := strings.Fields(mustRead(t, filepath.Join(base, ".ferry-releases"))); !reflect.DeepEqual(hist, tc.releases) {
				t.Errorf("history %v, want %v", hist, tc.releases)
			}
			if _, ok := h.State[layoutKey(base)]; ok {
				t.Errorf("the stage's layout is still in the host's state")
			}
			// This run made v3 current: a play's rollback undoes it.
			h.Rollback = true
			if out := runModule(t, h, "release", map[string]any{"path": base, "rollback": true}); out.Failed || current(t, base) != "v2" {
				t.Fatalf("rollback: %+v, current %s", out, current(t, base))
			}
		})
	}
}

// watchConn calls after once each command has run.
type watchConn struct {
	*localConn
	after func()
}

func (w watchConn) Run(ctx context.Context, cmd string, opts RunOptions) (Result, error) {
	defer w.after()
	return w.localConn.Run(ctx, cmd, opts)
}

// lostSwitchConn runs every command, but reports the connection lost after
// the first one that switches current (the host did it; the answer never
// came back).
type lostSwitchConn struct {
	Conn
	switchCmd string // what the switching command contains
	lost      bool
}

func (c *lostSwitchConn) Run(ctx context.Context, cmd string, opts RunOptions) (Result, error) {
	res, err := c.Conn.Run(ctx, cmd, opts)
	if !c.lost && strings.Contains(cmd, c.switchCmd) {
		c.lost = true
		return Result{ExitCode: -1}, errors.New("connection lost while the command ran (its outcome is unknown)")
	}
	return res, err
}

// A release whose switching command ran on the host but whose answer was
// lost with the connection is still undone by the play's rollback: the
// switch may have happened, and it did here.
func TestReleaseRollbackUndoesASwitchWhoseAnswerWasLost(t *testing.T) {
	for name, staged := range map[string]bool{"unstaged": false, "staged": true} {
		t.Run(name, func(t *testing.T) {
			h, c, _ := testHost(t)
			base := filepath.Join(t.TempDir(), "app")
			src := t.TempDir()
			os.WriteFile(filepath.Join(src, "bin"), []byte("v1"), 0o755)
			if out := runModule(t, h, "release", map[string]any{"path": base, "src": src + "/", "version": "v1"}); out.Failed {
				t.Fatalf("v1: %+v", out)
			}
			h.State = map[string]any{}
			os.WriteFile(filepath.Join(src, "bin"), []byte("v2"), 0o755)
			if staged {
				if out := runModule(t, h, "release", map[string]any{"path": base, "src": src + "/", "version": "v2", "activate": false}); out.Failed {
					t.Fatalf("stage v2: %+v", out)
				}
			}
			lc := &lostSwitchConn{Conn: c, switchCmd: "hf_link " + base + "/releases/v2 current"}
			h.Conn = lc
			if out := runModule(t, h, "release", map[string]any{"path": base, "src": src + "/", "version": "v2"}); !out.Failed || !lc.lost {
				t.Fatalf("v2 with its answer lost: %+v (lost %v)", out, lc.lost)
			}
			if cur, _ := os.Readlink(filepath.Join(base, "current")); filepath.Base(cur) != "v2" {
				t.Fatalf("current -> %s: the switch should have run on the host", cur)
			}
			h.Conn = c
			h.Rollback = true
			if out := runModule(t, h, "release", map[string]any{"path": base, "rollback": true}); !out.Changed {
				t.Fatalf("rollback after the lost answer: %+v", out)
			}
			if cur, _ := os.Readlink(filepath.Join(base, "current")); filepath.Base(cur) != "v1" {
				t.Fatalf("current -> %s after the rollback, want v1", cur)
			}
		})
	}
}

// An ID vouches for a file only with nanosecond times (fileID): a
// filesystem that keeps seconds, or a stat that does not know %.9Y, could
// hide a write within the second.
func TestVerifiedID(t *testing.T) {
	for id, want := range map[string]bool{
		"2049:131:8767658:1796620582.017208019:1796620582.517208019": true,
		"2049:131:8767658:1796620582.000000000:1796620582.000000000": false,
		"2049:131:8767658:1796620582:1796620582":                     false,
		"2049:131:8767658:1796620582.0172:1796620582.517208019":      false,
		"2049:131:8767658:%.9Y:%.9Z":                                 false,
		"2049:131:1796620582.017208019:1796620582.517208019":         false,
		"": false, "a:b:c:.123456789:1.12345678x": false,
	} {
		if verifiedID(id) != want {
			t.Errorf("verifiedID(%q) = %v, want %v", id, !want, want)
		}
	}
}

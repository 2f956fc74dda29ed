package tasks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLineinfileReplaceInsertIdempotent(t *testing.T) {
	h, c, _ := testHost(t)
	f := filepath.Join(t.TempDir(), "sshd_config")
	mustWrite(t, f, "# header\nPort 22\nPermitRootLogin yes\nUsePAM yes\n", 0o640)

	out := runModule(t, h, "lineinfile", map[string]any{"path": f, "regexp": "^PermitRootLogin ", "line": "PermitRootLogin no", "backup": true})
	if !out.Changed || out.Failed || !strings.Contains(out.Diff, "- PermitRootLogin yes\n+ PermitRootLogin no") {
		t.Fatalf("%+v", out)
	}
	if got := mustRead(t, f); got != "# header\nPort 22\nPermitRootLogin no\nUsePAM yes\n" {
		t.Fatalf("content %q", got)
	}
	if fileMode(t, f) != 0o640 {
		t.Fatalf("mode %o: the replaced file's mode is kept", fileMode(t, f))
	}
	bf, _ := out.Result["backup_file"].(string)
	if bf == "" || mustRead(t, bf) != "# header\nPort 22\nPermitRootLogin yes\nUsePAM yes\n" {
		t.Fatalf("backup %q: %+v", bf, out.Result)
	}
	os.Remove(bf)

	// Second run: nothing to do, and only the read command runs.
	n := len(c.commands())
	if out = runModule(t, h, "lineinfile", map[string]any{"path": f, "regexp": "^PermitRootLogin ", "line": "PermitRootLogin no"}); out.Changed || out.Failed {
		t.Fatalf("second run: %+v", out)
	}
	if got := len(c.commands()) - n; got != 1 {
		t.Fatalf("%d commands for an unchanged file, want 1", got)
	}

	// insertafter a matching line, insertbefore, BOF; then the same again changes nothing.
	for _, tc := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"line": "Port 2222", "insertafter": "^Port "}, "# header\nPort 22\nPort 2222\nPermitRootLogin no\nUsePAM yes\n"},
		{map[string]any{"line": "# managed", "insertbefore": "^# header"}, "# managed\n# header\nPort 22\nPort 2222\nPermitRootLogin no\nUsePAM yes\n"},
		{map[string]any{"line": "X11Forwarding no", "regexp": "^X11Forwarding", "insertafter": "^nothing"}, "# managed\n# header\nPort 22\nPort 2222\nPermitRootLogin no\nUsePAM yes\nX11Forwarding no\n"},
		{map[string]any{"line": "Top", "insertbefore": "BOF"}, "Top\n# managed\n# header\nPort 22\nPort 2222\nPermitRootLogin no\nUsePAM yes\nX11Forwarding no\n"},
	} {
		tc.args["path"] = f
		if out = runModule(t, h, "lineinfile", tc.args); !out.Changed || out.Failed {
			t.Fatalf("%v: %+v", tc.args, out)
		}
		if got := mustRead(t, f); got != tc.want {
			t.Fatalf("%v: content %q", tc.args, got)
		}
		if out = runModule(t, h, "lineinfile", tc.args); out.Changed || out.Failed {
			t.Fatalf("%v again: %+v", tc.args, out)
		}
	}

	// state: absent removes every matching line.
	out = runModule(t, h, "lineinfile", map[string]any{"path": f, "regexp": "^Port ", "state": "absent"})
	if !out.Changed || out.Result["found"] != 2 {
		t.Fatalf("%+v", out)
	}
	if got := mustRead(t, f); strings.Contains(got, "Port") {
		t.Fatalf("content %q", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(f))
	if len(entries) != 1 {
		t.Fatalf("leftovers: %v", entries)
	}
}

func TestLineinfileCreateCheckBackrefs(t *testing.T) {
	h, _, _ := testHost(t)
	d := t.TempDir()
	f := filepath.Join(d, "conf.d", "app.conf")

	out := runModule(t, h, "lineinfile", map[string]any{"path": f, "line": "a=1"})
	if !out.Failed || !strings.Contains(out.Msg, "create: true") {
		t.Fatalf("missing file without create: %+v", out)
	}
	h.Check = true
	out = runModule(t, h, "lineinfile", map[string]any{"path": f, "line": "a=1", "create": true})
	if !out.Changed || out.Failed || !strings.HasPrefix(out.Msg, "would") {
		t.Fatalf("check: %+v", out)
	}
	if _, err := os.Stat(f); !os.IsNotExist(err) {
		t.Fatal("check mode created the file")
	}
	h.Check = false
	out = runModule(t, h, "lineinfile", map[string]any{"path": f, "line": "a=1", "create": true, "mode": "0600"})
	if !out.Changed || mustRead(t, f) != "a=1\n" || fileMode(t, f) != 0o600 {
		t.Fatalf("%+v", out)
	}

	// A last line without a newline gets one before the added line.
	mustWrite(t, f, "x=1\nversion=1.0", 0o644)
	runModule(t, h, "lineinfile", map[string]any{"path": f, "line": "y=2"})
	if got := mustRead(t, f); got != "x=1\nversion=1.0\ny=2\n" {
		t.Fatalf("content %q", got)
	}
	out = runModule(t, h, "lineinfile", map[string]any{"path": f, "regexp": `^version=(\d+)\.\d+$`, "line": `version=\1.5`, "backrefs": true})
	if !out.Changed || mustRead(t, f) != "x=1\nversion=1.5\ny=2\n" {
		t.Fatalf("backrefs: %+v %q", out, mustRead(t, f))
	}
	// backrefs with no match leaves the file alone.
	if out = runModule(t, h, "lineinfile", map[string]any{"path": f, "regexp": `^nomatch=(.*)`, "line": `x=\1`, "backrefs": true}); out.Changed {
		t.Fatalf("%+v", out)
	}
	// state: absent on a missing file is fine.
	if out = runModule(t, h, "lineinfile", map[string]any{"path": filepath.Join(d, "none"), "line": "a", "state": "absent"}); out.Changed || out.Failed {
		t.Fatalf("%+v", out)
	}
}

func TestLineinfileBadArgs(t *testing.T) {
	h, c, _ := testHost(t)
	for _, args := range []map[string]any{
		{"path": "/tmp/x"},
		{"path": "/tmp/x", "line": "a", "regexp": "("},
		{"path": "/tmp/x", "line": "a\nb"},
		{"path": "/tmp/x", "line": "a", "insertafter": "a", "insertbefore": "b"},
	} {
		m, _ := Lookup("lineinfile")
		if _, err := m.Run(t.Context(), h, args); err == nil {
			t.Fatalf("%v: no error", args)
		}
	}
	if n := len(c.commands()); n != 0 {
		t.Fatalf("bad arguments ran %d commands", n)
	}
}

func TestLineinfileCopyValidate(t *testing.T) {
	h, _, _ := testHost(t)
	d := t.TempDir()
	f := filepath.Join(d, "sudoers")
	mustWrite(t, f, "root ALL=(ALL) ALL\n", 0o440)
	// The validator sees the new content, not dest.
	out := runModule(t, h, "lineinfile", map[string]any{"path": f, "line": "deploy ALL=(ALL) NOPASSWD: ALL", "validate": "grep -q '^deploy ' %s"})
	if !out.Changed || out.Failed || !strings.Contains(mustRead(t, f), "deploy ALL") {
		t.Fatalf("%+v", out)
	}
	// A rejected file leaves dest as it was, and nothing behind.
	out = runModule(t, h, "lineinfile", map[string]any{"path": f, "line": "broken", "validate": "sh -c 'echo syntax error near line 3; exit 1' %s"})
	if !out.Failed || !strings.Contains(out.Msg, "syntax error near line 3") || strings.Contains(mustRead(t, f), "broken") {
		t.Fatalf("%+v", out)
	}
	out = runModule(t, h, "copy", map[string]any{"content": "x\n", "dest": f, "validate": "false %s"})
	if !out.Failed || !strings.Contains(out.Msg, "rejected") || mustRead(t, f) == "x\n" {
		t.Fatalf("copy: %+v", out)
	}
	if entries, _ := os.ReadDir(d); len(entries) != 1 {
		t.Fatalf("leftovers: %v", entries)
	}
	m, _ := Lookup("copy")
	if _, err := m.Run(t.Context(), h, map[string]any{"content": "x", "dest": f, "validate": "visudo -c"}); err == nil || !strings.Contains(err.Error(), "%s") {
		t.Fatalf("validate without %%s: %v", err)
	}
}

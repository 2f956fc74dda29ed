package tasks

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestShellStreamsAndReportsRC(t *testing.T) {
	h, _, lines := testHost(t)
	out := runModule(t, h, "shell", map[string]any{"cmd": "echo one; echo two >&2; echo three"})
	if !out.Changed || out.Failed || out.Result["rc"] != 0 {
		t.Fatalf("%+v", out)
	}
	if out.Result["stdout"] != "one\nthree" || out.Result["stderr"] != "two" {
		t.Fatalf("result %v", out.Result)
	}
	if !slices.Contains(*lines, "one") || !slices.Contains(*lines, "three") {
		t.Fatalf("live output %q", *lines)
	}
	// pipefail: a failing stage fails the task.
	out = runModule(t, h, "shell", map[string]any{"cmd": "false | cat; echo not reached"})
	if !out.Failed || out.Result["rc"] != 1 || strings.Contains(out.Result["stdout"].(string), "not reached") {
		t.Fatalf("pipefail: %+v", out)
	}
	out = runModule(t, h, "shell", map[string]any{"cmd": "echo bad >&2; exit 7"})
	if !out.Failed || out.Result["rc"] != 7 || !strings.Contains(out.Msg, "status 7: bad") {
		t.Fatalf("rc: %+v", out)
	}
}

func TestShellChdirCreatesRemoves(t *testing.T) {
	h, _, _ := testHost(t)
	dir := t.TempDir()
	out := runModule(t, h, "shell", map[string]any{"cmd": "pwd; touch marker", "chdir": dir, "creates": "marker"})
	if out.Result["stdout"] != dir {
		t.Fatalf("chdir: %+v", out)
	}
	out = runModule(t, h, "shell", map[string]any{"cmd": "echo again >> marker", "chdir": dir, "creates": "marker"})
	if !out.Skipped || mustRead(t, filepath.Join(dir, "marker")) != "" {
		t.Fatalf("creates: %+v", out)
	}
	out = runModule(t, h, "shell", map[string]any{"cmd": "true", "removes": filepath.Join(dir, "nope")})
	if !out.Skipped {
		t.Fatalf("removes: %+v", out)
	}
}

func TestShellCheckModeRunsNothing(t *testing.T) {
	h, c, _ := testHost(t)
	h.Check = true
	f := filepath.Join(t.TempDir(), "f")
	out := runModule(t, h, "shell", map[string]any{"cmd": "touch " + f})
	if !out.Changed || !strings.HasPrefix(out.Msg, "would run") {
		t.Fatalf("%+v", out)
	}
	if _, err := os.Stat(f); !os.IsNotExist(err) || len(c.commands()) != 0 {
		t.Fatalf("check mode ran something: %v %q", err, c.commands())
	}
}

var nastyArgs = []string{"plain", "two words", "it's", `"dq"`, "$HOME", "`id`", "a\nb", "back\\slash", "", "*", "-n", "semi;colon", "x=1", "~"}

func TestCommandQuotesNastyArgs(t *testing.T) {
	h, _, _ := testHost(t)
	argv := append([]string{"printf", `%s\0`}, nastyArgs...)
	out := runModule(t, h, "command", map[string]any{"argv": toAnyList(argv)})
	if out.Failed {
		t.Fatalf("%+v", out)
	}
	got := strings.Split(strings.TrimSuffix(out.Result["stdout"].(string), "\x00"), "\x00")
	if !reflect.DeepEqual(got, nastyArgs) {
		t.Fatalf("argv mangled:\n got %q\nwant %q", got, nastyArgs)
	}
	// The string form is split like a shell, without expansion.
	out = runModule(t, h, "command", map[string]any{"cmd": `printf '%s|' "a b" 'c d' $HOME e\ f`})
	if out.Result["stdout"] != "a b|c d|$HOME|e f|" {
		t.Fatalf("split: %q", out.Result["stdout"])
	}
	out = runModule(t, h, "command", map[string]any{"cmd": "ls /definitely/not/here"})
	if !out.Failed || out.Result["rc"] == 0 {
		t.Fatalf("failure: %+v", out)
	}
}

func TestScriptUploadsRunsAndRemoves(t *testing.T) {
	h, _, _ := testHost(t)
	mustWrite(t, filepath.Join(h.Dir, "hook.sh"), "#!/bin/sh\necho \"args:$#:$1:$2\"\necho \"me:$0\"\n", 0o644)
	out := runModule(t, h, "script", map[string]any{"cmd": "hook.sh 'a b' c"})
	if out.Failed {
		t.Fatalf("%+v", out)
	}
	stdout := out.Result["stdout"].(string)
	if !strings.Contains(stdout, "args:2:a b:c") {
		t.Fatalf("stdout %q", stdout)
	}
	remote := strings.TrimPrefix(strings.Split(stdout, "\n")[1], "me:")
	if _, err := os.Stat(remote); !os.IsNotExist(err) {
		t.Fatalf("script %s left on the host: %v", remote, err)
	}
	mustWrite(t, filepath.Join(h.Dir, "fail.sh"), "#!/bin/sh\nexit 3\n", 0o644)
	out = runModule(t, h, "script", map[string]any{"src": "fail.sh", "args": []any{"x"}})
	if !out.Failed || out.Result["rc"] != 3 {
		t.Fatalf("%+v", out)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[any]string{"0755": "755", "755": "755", 755: "755", 493: "755", "0o644": "644", "04755": "4755", 384: "600", "0": "0", 1777: "1777"} {
		got, err := ParseMode(in)
		if err != nil || got != want {
			t.Errorf("ParseMode(%v) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []any{420, "u+x", "0999", 99999, "", true, -1} {
		if got, err := ParseMode(bad); err == nil {
			t.Errorf("ParseMode(%v) = %q, want an error", bad, got)
		}
	}
}

func FuzzParseMode(f *testing.F) {
	f.Add("0755")
	f.Add("493")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		if err == nil {
			if _, err := ParseMode("0" + m); err != nil {
				t.Fatalf("ParseMode(%q) = %q, which does not parse back: %v", s, m, err)
			}
		}
	})
}

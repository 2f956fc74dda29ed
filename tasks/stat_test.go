package tasks_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/tasks"
)

// TestLabStat: stat on a real host returns Ansible's fields for a file, a
// directory, a symlink (followed or not) and a missing path, and changes
// nothing, in check mode too.
func TestLabStat(t *testing.T) {
	t.Parallel()
	l := lab.StartT(t, lab.Options{Hosts: 1})
	labExec(t, l, "app1", "mkdir -p /opt/st && printf 'hello\\n' > /opt/st/f && chmod 0640 /opt/st/f && chown nobody /opt/st/f && ln -sfn f /opt/st/l && mkfifo /opt/st/p")
	_, client := labConnect(t, l, "app1")
	h := &tasks.Host{Name: "app1", Conn: client, Become: tasks.RunOptions{Become: true}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stat := func(args map[string]any) map[string]any {
		t.Helper()
		out := runModule(t, ctx, h, "stat", args)
		if out.Failed || out.Changed {
			t.Fatalf("stat %v: %+v", args, out)
		}
		return out.Result["stat"].(map[string]any)
	}

	sum := sha1.Sum([]byte("hello\n"))
	f := stat(map[string]any{"path": "/opt/st/f"})
	for k, want := range map[string]any{"exists": true, "isreg": true, "isdir": false, "islnk": false, "mode": "0640",
		"pw_name": "nobody", "size": int64(6), "checksum": hex.EncodeToString(sum[:]), "path": "/opt/st/f"} {
		if f[k] != want {
			t.Errorf("file: %s = %#v, want %#v", k, f[k], want)
		}
	}
	if m, _ := f["mtime"].(float64); m < 1e9 {
		t.Errorf("file: mtime = %v", f["mtime"])
	}

	if d := stat(map[string]any{"path": "/opt/st", "get_checksum": false}); d["isdir"] != true || d["checksum"] != nil {
		t.Errorf("dir: %v", d)
	}
	if ln := stat(map[string]any{"path": "/opt/st/l"}); ln["islnk"] != true || ln["lnk_target"] != "f" || ln["isreg"] != false || ln["checksum"] != nil {
		t.Errorf("link: %v", ln)
	}
	if ln := stat(map[string]any{"path": "/opt/st/l", "follow": true, "checksum_algorithm": "sha256"}); ln["isreg"] != true || len(ln["checksum"].(string)) != 64 {
		t.Errorf("followed link: %v", ln)
	}
	if p := stat(map[string]any{"path": "/opt/st/p"}); p["isfifo"] != true {
		t.Errorf("fifo: %v", p)
	}
	if m := stat(map[string]any{"path": "/opt/st/nope it's"}); m["exists"] != false || len(m) != 1 {
		t.Errorf("missing: %v", m)
	}
	h.Check = true
	if f := stat(map[string]any{"path": "/opt/st/f"}); f["exists"] != true {
		t.Errorf("check mode: %v", f)
	}
}

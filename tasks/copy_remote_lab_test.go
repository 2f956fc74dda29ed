package tasks_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/tasks"
)

// TestLabCopyRemoteSrc: copy with remote_src copies a file already on the
// host (ansistrano's deploy key), with mode, idempotently; a missing src
// fails; a src reached through a link another user owns is refused.
func TestLabCopyRemoteSrc(t *testing.T) {
	l := lab.StartT(t, lab.Options{Hosts: 1})
	labExec(t, l, "app1", "mkdir -p /opt/rs/in /opt/rs/out && printf 'key\\n' > /opt/rs/in/key && "+
		"mkdir -p /opt/rs/evil && chown nobody /opt/rs/evil && ln -s /etc/shadow /opt/rs/evil/key && chown -h nobody /opt/rs/evil/key")
	_, client := labConnect(t, l, "app1")
	h := &tasks.Host{Name: "app1", Conn: client, Become: tasks.RunOptions{Become: true}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := map[string]any{"src": "/opt/rs/in/key", "remote_src": true, "dest": "/opt/rs/out/", "mode": "0400"}
	if out := runModule(t, ctx, h, "copy", args); out.Failed || !out.Changed {
		t.Fatalf("copy: %+v", out)
	}
	if got := labExec(t, l, "app1", "stat -c %a /opt/rs/out/key; cat /opt/rs/out/key"); got != "400\nkey" {
		t.Fatalf("dest: %q", got)
	}
	if out := runModule(t, ctx, h, "copy", args); out.Failed || out.Changed {
		t.Errorf("again: %+v", out)
	}
	if out := runModule(t, ctx, h, "copy", map[string]any{"src": "/opt/rs/in/nope", "remote_src": true, "dest": "/opt/rs/out/x"}); !out.Failed || !strings.Contains(out.Msg, "does not exist") {
		t.Errorf("missing src: %+v", out)
	}
	if out := runModule(t, ctx, h, "copy", map[string]any{"src": "/opt/rs/evil/key", "remote_src": true, "dest": "/opt/rs/out/stolen"}); !out.Failed {
		t.Errorf("link owned by nobody followed: %+v", out)
	}
	if got := labExec(t, l, "app1", "test -e /opt/rs/out/stolen && echo there || echo absent"); got != "absent" {
		t.Errorf("stolen: %s", got)
	}
	// A source only root may read, no mode, into a dest another user made
	// first: 0600 and root's, not that user's (nor the umask's 0644).
	labExec(t, l, "app1", "printf 'root only\\n' > /opt/rs/in/private && chmod 600 /opt/rs/in/private && touch /opt/rs/out/private && chown nobody /opt/rs/out/private && chmod 644 /opt/rs/out/private")
	if out := runModule(t, ctx, h, "copy", map[string]any{"src": "/opt/rs/in/private", "remote_src": true, "dest": "/opt/rs/out/private"}); out.Failed || !out.Changed {
		t.Fatalf("private source: %+v", out)
	}
	if got := labExec(t, l, "app1", "stat -c '%a %U' /opt/rs/out/private"); got != "600 root" {
		t.Errorf("a private source's copy: %q, want 600 root", got)
	}
	// a source everyone may read keeps copy's usual defaults (the umask's)
	if out := runModule(t, ctx, h, "copy", map[string]any{"src": "/opt/rs/in/key", "remote_src": true, "dest": "/opt/rs/out/public"}); out.Failed {
		t.Fatalf("public source: %+v", out)
	}
	if got := labExec(t, l, "app1", "stat -c '%a' /opt/rs/out/public"); got != "644" {
		t.Errorf("a public source's copy: %q, want 644", got)
	}
}

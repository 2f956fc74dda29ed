package tasks_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/tasks"
)

// TestLabDeployHelper: the deploy_helper cycle on a real host, as the
// f500.project_deploy role drives it: present makes the layout and the
// fact, the playbook fills releases/<new> with the unfinished mark,
// finalize removes the mark, points current at it and prunes; a second
// deploy reports the first as previous_release; check mode changes
// nothing; absent removes the project.
func TestLabDeployHelper(t *testing.T) {
	l := lab.StartT(t, lab.Options{Hosts: 1})
	_, client := labConnect(t, l, "app1")
	h := &tasks.Host{Name: "app1", Conn: client, Become: tasks.RunOptions{Become: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dh := func(args map[string]any) (tasks.Outcome, map[string]any) {
		t.Helper()
		out := runModule(t, ctx, h, "deploy_helper", args)
		if out.Failed {
			t.Fatalf("deploy_helper %v: %s", args, out.Msg)
		}
		f, _ := out.Facts["deploy_helper"].(map[string]any)
		return out, f
	}
	base := "/opt/dh"
	out, f := dh(map[string]any{"path": base})
	if !out.Changed || f["releases_path"] != base+"/releases" || f["shared_path"] != base+"/shared" || f["previous_release"] != nil || len(f["new_release"].(string)) != 14 {
		t.Fatalf("present: %+v %v", out, f)
	}
	if got := labExec(t, l, "app1", "cd /opt/dh && ls -d releases shared | tr '\\n' ' '"); got != "releases shared" {
		t.Fatalf("layout: %q", got)
	}
	if out, _ := dh(map[string]any{"path": base}); out.Changed {
		t.Errorf("present again changed: %+v", out)
	}

	deploy := func(rel string) map[string]any {
		t.Helper()
		_, f := dh(map[string]any{"path": base, "release": rel})
		labExec(t, l, "app1", "mkdir -p "+f["new_release_path"].(string)+" && echo "+rel+" > "+f["new_release_path"].(string)+"/app && touch "+f["new_release_path"].(string)+"/"+f["unfinished_filename"].(string))
		out, f := dh(map[string]any{"path": base, "release": rel, "state": "finalize", "keep_releases": 1})
		if !out.Changed {
			t.Fatalf("finalize %s: %+v", rel, out)
		}
		return f
	}
	deploy("r1")
	if got := labExec(t, l, "app1", "cat /opt/dh/current/app; ls /opt/dh/releases/r1"); got != "r1\napp" {
		t.Fatalf("after r1: %q", got)
	}
	// an abandoned build, marked unfinished, is removed by the next finalize
	labExec(t, l, "app1", "mkdir -p /opt/dh/releases/broken && touch /opt/dh/releases/broken/DEPLOY_UNFINISHED")
	deploy("r2")
	f = deploy("r3")
	if f["previous_release"] != "r2" || f["previous_release_path"] != base+"/releases/r2" {
		t.Errorf("r3 facts: %v", f)
	}
	if got := labExec(t, l, "app1", "readlink /opt/dh/current; ls /opt/dh/releases | tr '\\n' ' '"); got != "/opt/dh/releases/r3\nr2 r3" {
		t.Errorf("after r3 (keep 1): %q", got)
	}

	// check mode: says what it would do, does nothing
	labExec(t, l, "app1", "mkdir -p /opt/dh/releases/r4")
	h.Check = true
	out = runModule(t, ctx, h, "deploy_helper", map[string]any{"path": base, "release": "r4", "state": "finalize", "keep_releases": 1})
	h.Check = false
	if !out.Changed || !strings.Contains(out.Diff, "current -> /opt/dh/releases/r4") || !strings.Contains(out.Diff, "remove release r2") {
		t.Errorf("check: %+v", out)
	}
	if got := labExec(t, l, "app1", "readlink /opt/dh/current; ls /opt/dh/releases | tr '\\n' ' '"); got != "/opt/dh/releases/r3\nr2 r3 r4" {
		t.Errorf("check mode changed the host: %q", got)
	}
	if out := runModule(t, ctx, h, "deploy_helper", map[string]any{"path": base, "release": "nope", "state": "finalize"}); !out.Failed || !strings.Contains(out.Msg, "doesn't exist") {
		t.Errorf("finalize of a missing release: %+v", out)
	}
	if out, f := dh(map[string]any{"path": base, "state": "query"}); out.Changed || f["previous_release"] != "r3" {
		t.Errorf("query: %+v %v", out, f)
	}
	out, _ = dh(map[string]any{"path": base, "state": "absent"})
	if !out.Changed || labExec(t, l, "app1", "test -e /opt/dh && echo there || echo gone") != "gone" {
		t.Errorf("absent: %+v", out)
	}
}

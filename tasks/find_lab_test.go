package tasks_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/tasks"
)

// TestLabFind: find on a real host lists the releases a deploy keeps (the
// directories directly under releases/, with their mtimes), honours
// patterns, recurse and hidden, reports a missing path as skipped, and
// changes nothing.
func TestLabFind(t *testing.T) {
	l := lab.StartT(t, lab.Options{Hosts: 1})
	labExec(t, l, "app1", "mkdir -p /opt/fd/releases/r1/sub /opt/fd/releases/r2 /opt/fd/releases/.cache && touch -d '2020-01-01' /opt/fd/releases/r1 && "+
		"printf x > /opt/fd/releases/r2/app.conf && printf y > /opt/fd/releases/r1/sub/app.conf.1 && ln -sfn releases/r2 /opt/fd/current")
	_, client := labConnect(t, l, "app1")
	h := &tasks.Host{Name: "app1", Conn: client, Become: tasks.RunOptions{Become: true}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	find := func(args map[string]any) (map[string]any, []string) {
		t.Helper()
		out := runModule(t, ctx, h, "find", args)
		if out.Failed || out.Changed {
			t.Fatalf("find %v: %+v", args, out)
		}
		var paths []string
		for _, f := range out.Result["files"].([]any) {
			paths = append(paths, f.(map[string]any)["path"].(string))
		}
		sort.Strings(paths)
		return out.Result, paths
	}
	res, dirs := find(map[string]any{"paths": "/opt/fd/releases", "file_type": "directory"})
	if len(dirs) != 2 || dirs[0] != "/opt/fd/releases/r1" || dirs[1] != "/opt/fd/releases/r2" || res["matched"] != 2 {
		t.Fatalf("releases: %v %v", dirs, res)
	}
	for _, f := range res["files"].([]any) {
		e := f.(map[string]any)
		if e["path"] == "/opt/fd/releases/r1" && e["mtime"].(float64) > 1.6e9 {
			t.Errorf("r1 mtime %v, want 2020", e["mtime"])
		}
	}
	if _, got := find(map[string]any{"paths": []any{"/opt/fd/releases"}, "file_type": "directory", "hidden": true}); len(got) != 3 {
		t.Errorf("hidden: %v", got)
	}
	if _, got := find(map[string]any{"paths": "/opt/fd", "patterns": "app.conf*", "recurse": true}); len(got) != 2 {
		t.Errorf("recurse patterns: %v", got)
	}
	if _, got := find(map[string]any{"paths": "/opt/fd", "patterns": "app.conf*", "recurse": true, "depth": 3}); len(got) != 1 || got[0] != "/opt/fd/releases/r2/app.conf" {
		t.Errorf("depth 3: %v", got)
	}
	if _, got := find(map[string]any{"paths": "/opt/fd/releases", "file_type": "directory", "age": "365d"}); len(got) != 1 || got[0] != "/opt/fd/releases/r1" {
		t.Errorf("age: %v", got)
	}
	if _, got := find(map[string]any{"paths": "/opt/fd", "file_type": "link"}); len(got) != 1 || got[0] != "/opt/fd/current" {
		t.Errorf("links: %v", got)
	}
	res, got := find(map[string]any{"paths": []any{"/opt/fd/nope", "/opt/fd/releases/r2"}})
	if len(got) != 1 || res["skipped_paths"].(map[string]any)["/opt/fd/nope"] == nil {
		t.Errorf("missing path: %v %v", got, res)
	}
	if after := labExec(t, l, "app1", "ls -a /opt/fd/releases | tr '\\n' ' '"); after != ". .. .cache r1 r2" {
		t.Errorf("find changed the tree: %q", after)
	}
}

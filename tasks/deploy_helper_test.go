package tasks

import (
	"strings"
	"testing"
)

// Cleaning removes unfinished releases, then all but keep_releases of the
// others, newest by ctime first; never the new release nor current's.
func TestDeployHelperPrune(t *testing.T) {
	dirs := []dhRelease{
		{name: "r1", ctime: 100}, {name: "r2", ctime: 200}, {name: "r3", ctime: 300},
		{name: "r4", ctime: 400, unfinished: true}, {name: "r5", ctime: 500, unfinished: true},
	}
	cases := []struct {
		release, current string
		keep             int
		want             string
	}{
		{"r5", "r3", 1, "r1,r2,r4"},  // r5 is new (kept though marked), r3 newest other
		{"r5", "r1", 1, "r2,r4"},     // current (r1) is kept too
		{"r3", "r3", 2, "r4,r5"},     // keep r2, r1 besides new r3
		{"", "r2", 5, "r4,r5"},       // clean with no release
		{"r9", "", 1, "r1,r2,r4,r5"}, // r9 not on disk: r3 is the one kept
	}
	for _, c := range cases {
		got := strings.Join(dhPrune(dirs, c.release, c.current, c.current != "", c.keep), ",")
		if got != c.want {
			t.Errorf("release %s current %s keep %d: %s, want %s", c.release, c.current, c.keep, got, c.want)
		}
	}
}

func TestDeployHelperProbeParse(t *testing.T) {
	pr, err := parseDeployProbe("now=20240101120000\nbase\ncurrent=/srv/app/releases/r2\nshared\nreleases\nr=200 0 r2\nr=300 1 name with spaces\n")
	if err != nil {
		t.Fatal(err)
	}
	if pr.now != "20240101120000" || !pr.base || !pr.shared || !pr.releases || pr.current != "/srv/app/releases/r2" || len(pr.dirs) != 2 ||
		pr.dirs[1].name != "name with spaces" || !pr.dirs[1].unfinished || pr.dirs[0].ctime != 200 {
		t.Fatalf("%+v", pr)
	}
	f := dhFacts("/srv/app", "releases", "shared", "current", "DEPLOY_UNFINISHED", "r3", pr)
	if f["previous_release"] != "r2" || f["new_release_path"] != "/srv/app/releases/r3" || f["shared_path"] != "/srv/app/shared" || f["current_path"] != "/srv/app/current" {
		t.Errorf("facts: %v", f)
	}
	if f := dhFacts("/srv/app", "releases", "", "current", "X", "", dhProbe{}); f["shared_path"] != nil || f["previous_release"] != nil || f["new_release_path"] != "" {
		t.Errorf("empty facts: %v", f)
	}
	for _, bad := range []string{"base\n", "now=1\nr=x 0 a\n", "now=1\nr=1 0\n", "now=1\nwhat\n"} {
		if _, err := parseDeployProbe(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "x\ny"} {
		if dhName("release", bad) == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
}

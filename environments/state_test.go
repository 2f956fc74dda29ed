package environments

import (
	"strings"
	"testing"
	"time"
)

func TestParseState(t *testing.T) {
	out := `FERRY-STATE demo
{"app":"demo","env":"staging","version":"v2","run_id":"r1","user":"ben","time":"2026-11-29T21:35:56Z","extra_vars":{"dist":"d"}}

FERRY-STATE other
{"version":"x"}

FERRY-LOCK staging 7
{"env":"staging","holder":"ann","run_id":"r9","started":"2026-11-29T21:00:00Z","token":"secret"}
`
	hs, err := ParseState("app4", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if r := hs.Releases["demo"]; r.Version != "v2" || r.Env != "staging" || r.Extra["dist"] != "d" {
		t.Errorf("%+v", r)
	}
	if hs.Releases["other"].App != "other" {
		t.Errorf("app name from the file name: %+v", hs.Releases["other"])
	}
	if len(hs.Locks) != 1 || hs.Locks[0].Holder != "ann" || hs.Locks[0].Age != 7*time.Second || hs.Locks[0].Token != "" || hs.Locks[0].Host != "app4" {
		t.Errorf("locks %+v", hs.Locks)
	}
	if _, err := ParseState("h", []byte("FERRY-STATE x\nnot json\n")); err == nil || !strings.Contains(err.Error(), "/var/lib/ferry/x.json") {
		t.Errorf("bad file: %v", err)
	}
}

func TestDrift(t *testing.T) {
	rel := func(v string, at int) map[string]Release {
		return map[string]Release{"demo": {Version: v, Time: time.Unix(int64(at), 0)}}
	}
	states := []HostState{{Host: "a", Releases: rel("v2", 2)}, {Host: "b", Releases: rel("v2", 3)}, {Host: "c", Releases: rel("v1", 1)}, {Host: "d"}}
	maj, drifted := Drift(states, "demo")
	if maj != "v2" || strings.Join(drifted, ",") != "c,d" {
		t.Errorf("%s %v", maj, drifted)
	}
	// A tie goes to the newest deploy.
	maj, _ = Drift([]HostState{{Host: "a", Releases: rel("v1", 1)}, {Host: "b", Releases: rel("v2", 5)}}, "demo")
	if maj != "v2" {
		t.Errorf("tie: %s", maj)
	}
}

func TestParseLockAnswer(t *testing.T) {
	cases := []struct {
		out, state, holder string
	}{
		{"FERRY-LOCK acquired 0\n", "acquired", ""},
		{"FERRY-LOCK held 3\n{\"holder\":\"ann\",\"run_id\":\"r\"}\n", "held", "ann"},
		{"FERRY-LOCK stale 300\n{\"holder\":\"bob\"}\nFERRY-LOCK acquired 0\n", "taken", "bob"},
		{"FERRY-LOCK lost 0\n", "lost", ""},
	}
	for _, c := range cases {
		a, err := parseLockAnswer([]byte(c.out))
		if err != nil || a.state != c.state || (c.holder != "" && (a.info == nil || a.info.Holder != c.holder)) {
			t.Errorf("%q: %+v %v", c.out, a, err)
		}
	}
	if _, err := parseLockAnswer([]byte("sh: flock: not found\n")); err == nil || !strings.Contains(err.Error(), "util-linux") {
		t.Errorf("no flock: %v", err)
	}
}

func TestAppName(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"", "/x/deploy.yml"}: "deploy", {"my app", "p.yml"}: "my-app", {"../etc/passwd", ""}: "etc-passwd", {"", ""}: "app",
	} {
		if got := AppName(in[0], in[1]); got != want {
			t.Errorf("AppName(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}

func FuzzParseState(f *testing.F) {
	f.Add("FERRY-STATE demo\n{\"version\":\"v1\"}\nFERRY-LOCK e 3\n{\"holder\":\"x\"}\n")
	f.Add("FERRY-LOCK held 3\n{\"holder\":\"ann\"}\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseState("h", []byte(s))
		_, _ = parseLockAnswer([]byte(s))
	})
}

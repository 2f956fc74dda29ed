package tasks

import (
	"strings"
	"testing"
)

// Shell patterns translate as Python's fnmatch (whole name, [!set]); regexes
// match at the start, as re.match.
func TestFindPatterns(t *testing.T) {
	cases := []struct {
		pat    string
		regex  bool
		name   string
		expect bool
	}{
		{"*.conf", false, "app.conf", true},
		{"*.conf", false, "app.conf.bak", false},
		{"app.conf.*", false, "app.conf.2024", true},
		{"?pp", false, "app", true},
		{"[!a]pp", false, "app", false},
		{"[!a]pp", false, "bpp", true},
		{"[ab]*", false, "bar", true},
		{"a+b", false, "a+b", true},
		{"[", false, "[", true},
		{"app", true, "application", true},
		{"app$", true, "application", false},
		{`\d+Z`, true, "20240101Z", true},
	}
	for _, c := range cases {
		res, err := compilePatterns([]string{c.pat}, c.regex)
		if err != nil {
			t.Fatalf("%q: %v", c.pat, err)
		}
		if got := anyMatch(res, c.name); got != c.expect {
			t.Errorf("%q (regex %v) on %q = %v, want %v", c.pat, c.regex, c.name, got, c.expect)
		}
	}
	if got := splitPatterns([]string{"*.log, *.gz", "x"}); len(got) != 3 || got[1] != "*.gz" {
		t.Errorf("splitPatterns: %q", got)
	}
	if _, err := compilePatterns([]string{"(a"}, true); err == nil {
		t.Error("bad regex accepted")
	}
}

func TestFindAge(t *testing.T) {
	for in, want := range map[string]float64{"": 0, "90": 90, "90s": 90, "2m": 120, "3h": 10800, "2d": 172800, "1w": 604800, "-1d": -86400, "4D": 345600} {
		got, err := parseAge(in)
		if err != nil || got != want {
			t.Errorf("parseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"d", "1y", "x2d", "1.5d"} {
		if _, err := parseAge(bad); err == nil {
			t.Errorf("parseAge(%q) accepted", bad)
		}
	}
}

// What the host prints is parsed into stat-like entries and filtered by
// type, hidden names, patterns, excludes and age against the host's clock.
func TestFindParseAndMatch(t *testing.T) {
	out := "T1000\x00" +
		"Fd|755|0|0|root|root|4096|900.5|900|900|11|2|2049|/r/releases/20240101Z\x00" +
		"Fd|755|0|0|root|root|4096|100|100|100|12|2|2049|/r/releases/20230101Z\x00" +
		"Fd|700|0|0|root|root|4096|100|100|100|13|2|2049|/r/releases/.tmp\x00" +
		"Ff|644|1|1|daemon|daemon|6|100|100|100|14|1|2049|/r/releases/a|b.txt\x00" +
		"Fl|777|0|0|root|root|7|100|100|100|15|1|2049|/r/releases/current\x00" +
		"S/r/missing\x00"
	q := findQuery{fileType: "directory", ageStamp: "mtime"}
	files, examined, skipped, err := q.parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if examined != 5 || len(files) != 2 || files[0]["path"] != "/r/releases/20240101Z" || files[0]["mtime"] != 900.5 || files[0]["mode"] != "0755" || files[0]["isdir"] != true {
		t.Fatalf("directories: examined %d, %v", examined, files)
	}
	if skipped["/r/missing"] == nil {
		t.Errorf("skipped: %v", skipped)
	}
	q = findQuery{fileType: "any", hidden: true, ageStamp: "mtime", age: 500}
	if files, _, _, _ = q.parse(out); len(files) != 4 { // all but the one 99.5 s old
		t.Errorf("any, hidden, age 500: %v", files)
	}
	q = findQuery{fileType: "any", ageStamp: "mtime", age: -500}
	if files, _, _, _ = q.parse(out); len(files) != 1 || files[0]["path"] != "/r/releases/20240101Z" {
		t.Errorf("age -500: %v", files)
	}
	pats, _ := compilePatterns([]string{"*.txt"}, false)
	q = findQuery{fileType: "file", patterns: pats, ageStamp: "mtime"}
	if files, _, _, _ = q.parse(out); len(files) != 1 || files[0]["path"] != "/r/releases/a|b.txt" || files[0]["pw_name"] != "daemon" || files[0]["size"] != int64(6) {
		t.Errorf("*.txt: %v", files)
	}
	excl, _ := compilePatterns([]string{"2023*"}, false)
	q = findQuery{fileType: "directory", excludes: excl, ageStamp: "mtime"}
	if files, _, _, _ = q.parse(out); len(files) != 1 {
		t.Errorf("excludes: %v", files)
	}
	q = findQuery{fileType: "link", ageStamp: "mtime"}
	if files, _, _, _ = q.parse(out); len(files) != 1 || files[0]["islnk"] != true {
		t.Errorf("links: %v", files)
	}
	for _, bad := range []string{"Fd|755|short\x00", "Fd|9z9|0|0|r|r|1|1|1|1|1|1|1|/p\x00", "Xjunk\x00"} {
		if _, _, _, err := q.parse(bad); err == nil {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
}

// follow: true as root would follow links another user placed (to a
// root-only directory): refused with become, before anything runs.
func TestFindFollowRefusedWithBecome(t *testing.T) {
	h, _, _ := testHost(t)
	h.Become.Become = true
	_, err := Call(t.Context(), findModule{}, h, map[string]any{"paths": t.TempDir(), "follow": true})
	if err == nil || !strings.Contains(err.Error(), "not taken with become") {
		t.Fatalf("follow with become: %v", err)
	}
}

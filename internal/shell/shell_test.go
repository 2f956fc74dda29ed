package shell

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

var nasty = []string{"plain", "two words", "it's", `"dq"`, "$HOME", "`id`", "a\nb", "back\\slash", "", "*", "-n", "semi;colon", "x=1", "~", "'\"'\"'", "%s", "é"}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":              "''",
		"plain/path-1":  "plain/path-1",
		"it's":          `'it'\''s'`,
		"$HOME; rm -rf": `'$HOME; rm -rf'`,
		"a=b":           "'a=b'", // not an assignment when it is the first word
		"user@host:22":  "user@host:22",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestJoinRealShell: a real sh gets every word back unchanged.
func TestJoinRealShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	out, err := exec.Command(sh, "-c", Join(append([]string{"printf", `%s\0`}, nasty...)...)).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !reflect.DeepEqual(got, nasty) {
		t.Fatalf("got %q\nwant %q", got, nasty)
	}
}

func TestSplit(t *testing.T) {
	for in, want := range map[string][]string{
		`a b  c`:                {"a", "b", "c"},
		`'a b' "c d"`:           {"a b", "c d"},
		`a\ b "x\"y" 'it'\''s'`: {"a b", `x"y`, "it's"},
		`""`:                    {""},
		`"$x" \$y`:              {"$x", "$y"},
	} {
		got, err := Split(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Split(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Split(`echo 'open`); err == nil {
		t.Error("unterminated quote accepted")
	}
}

// FuzzQuoteRoundTrip: whatever the arguments, quoting then splitting gives
// them back, and a quoted word never starts an assignment or an option.
func FuzzQuoteRoundTrip(f *testing.F) {
	for _, s := range nasty {
		f.Add(s, "x")
	}
	f.Add("'\"'\"'", `\`)
	f.Fuzz(func(t *testing.T, a, b string) {
		if strings.ContainsRune(a+b, 0) {
			return
		}
		got, err := Split(Join(a, b))
		if err != nil || !reflect.DeepEqual(got, []string{a, b}) {
			t.Fatalf("round trip of %q %q: %q %v", a, b, got, err)
		}
		if q := Quote(a); strings.Contains(a, "=") && !strings.HasPrefix(q, "'") {
			t.Fatalf("Quote(%q) = %s leaves = bare", a, q)
		}
		if !Literal(Join(a, b)) {
			t.Fatalf("Join(%q, %q) = %s is not Literal", a, b, Join(a, b))
		}
	})
}

func TestLiteral(t *testing.T) {
	for s, want := range map[string]bool{
		"exec 'true'": true, "exec /usr/bin/x -a=b,c:d": true, "exec 'a b' '$x' '*;|&'": true,
		`exec a\ b`: true, `exec 'a'\''b'`: true, "exec 'a\nb'": true, "": true,
		"exec echo $x": false, "exec echo *": false, "exec ~/x": false, `exec a\`: false, "exec 'a": false,
		"exec a; b": false, "exec a\nb": false, "exec a\tb": false, `exec "a"`: false, "exec a >f": false,
		"exec a|b": false, "exec $(x)": false, "exec `x`": false, "exec a{b,c}": false, "exec a[b]": false, "é": false,
	} {
		if got := Literal(s); got != want {
			t.Errorf("Literal(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzSplit(f *testing.F) {
	f.Add(`a 'b c' "d\"e" f\ g`)
	f.Add(`"unterminated`)
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := Split(s); err != nil && Literal(s) { // must not panic
			t.Fatalf("Literal(%q), but Split: %v", s, err)
		}
	})
}

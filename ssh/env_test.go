package ssh

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Environment values reach the command but never its command line, with or
// without become, whatever they hold; the command's own stdin is intact.
func TestWrapEnvironmentNotOnCommandLine(t *testing.T) {
	env := map[string]string{
		"DB_PASSWORD": "pa$$ 'w\"o`rd\\",
		"PEM":         "-----BEGIN KEY-----\nAAAA\r\nBBBB\n-----END KEY-----\n",
		"EMPTY":       "",
	}
	script := `printf '%s|%s|%s|' "$DB_PASSWORD" "$PEM" "${EMPTY-unset}"; cat`
	for _, tc := range []struct {
		name string
		opts RunOptions
		ask  bool
	}{
		{"plain", RunOptions{}, false},
		{"become", RunOptions{Become: true}, false},
		{"become password read", RunOptions{Become: true, BecomePass: "pw-1"}, true},
		{"become password unread", RunOptions{Become: true, BecomePass: "pw-1"}, false},
		{"with stdin", RunOptions{Stdin: strings.NewReader("input\n")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fakeSudo(t, tc.ask)
			o := tc.opts
			o.Env = env
			line, stdin := Wrap(script, o)
			for _, v := range []string{"pa$$", "AAAA", "BBBB"} {
				if strings.Contains(line, v) {
					t.Fatalf("%q on the command line: %s", v, line)
				}
			}
			cmd := exec.Command("/bin/sh", "-c", line)
			cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
			cmd.Stdin = stdin
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v: %s", err, errb.String())
			}
			want := env["DB_PASSWORD"] + "|" + env["PEM"] + "||"
			if tc.opts.Stdin != nil {
				want += "input\n"
			}
			if out.String() != want {
				t.Fatalf("got %q\nwant %q", out.String(), want)
			}
		})
	}
}

func TestCheckEnvRefusesInjection(t *testing.T) {
	for _, k := range []string{"A;id", "1A", "A B", "A-B", "", "$(id)"} {
		if CheckEnv(map[string]string{k: "v"}) == nil {
			t.Errorf("%q accepted as a variable name", k)
		}
	}
	if err := CheckEnv(map[string]string{"_A1": "v", "db_password": "x"}); err != nil {
		t.Fatal(err)
	}
}

package ssh

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSudo puts a sudo on PATH that runs the command after its options,
// reading a password line from stdin first only when ask is true (as real
// sudo does when it needs one).
func fakeSudo(t *testing.T, ask bool) string {
	t.Helper()
	dir := t.TempDir()
	read := ""
	if ask {
		read = "IFS= read -r pw\n"
	}
	script := "#!/bin/sh\n" + read +
		"while [ $# -gt 0 ]; do case \"$1\" in --) shift; break;; -u) shift 2;; *) shift;; esac; done\nexec \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "sudo"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The become password goes to sudo's stdin; when sudo does not ask for it
// (NOPASSWD, as on the lab's hosts), the command must not read it instead.
func TestWrapBecomePasswordNeverReachesTheCommand(t *testing.T) {
	for _, ask := range []bool{false, true} {
		dir := fakeSudo(t, ask)
		line, stdin := Wrap("cat; echo \"v=$V\"", RunOptions{Become: true, BecomePass: "pw-s3cret", Env: map[string]string{"V": "x y"}})
		if strings.Contains(line, "pw-s3cret") {
			t.Fatalf("the password is on the command line: %s", line)
		}
		cmd := exec.Command("/bin/sh", "-c", line)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		cmd.Stdin = stdin
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("ask=%v: %v: %s", ask, err, out.String())
		}
		if strings.Contains(out.String(), "pw-s3cret") {
			t.Errorf("ask=%v: the command read the become password from its stdin: %q", ask, out.String())
		}
		if !strings.Contains(out.String(), "v=x y") {
			t.Errorf("ask=%v: environment lost: %q", ask, out.String())
		}
	}
}

func TestCappedBuffer(t *testing.T) {
	var c cappedBuffer
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for i := 0; i < 5; i++ {
		if n, err := c.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	got := c.Bytes()
	if !bytes.HasPrefix(got, bytes.Repeat([]byte("x"), MaxOutput)) || !bytes.Contains(got, []byte("1048576 more bytes of output not kept")) {
		t.Errorf("kept %d bytes, ending %q", len(got), got[len(got)-80:])
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydeploy/ferry/internal/lab"
)

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"frob"}, {"run"}, {"up", "extra"}, {"run", "--hosts"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("ferry-lab %v: exit %d, want 2 (%s)", args, code, errb.String())
		}
		if errb.Len() == 0 {
			t.Errorf("ferry-lab %v printed no usage", args)
		}
	}
}

func TestRunExportsAndTearsDown(t *testing.T) {
	if err := lab.Available(); err != nil {
		t.Skip(err)
	}
	envFile := filepath.Join(t.TempDir(), "env")
	script := `env | grep ^FERRY_LAB_ > ` + envFile + `
test -f "$FERRY_LAB_KEY" && test -f "$FERRY_LAB_INVENTORY" && test -f "$FERRY_LAB_SSH_CONFIG" || exit 9
ssh -F "$FERRY_LAB_SSH_CONFIG" -o BatchMode=yes app1 true || exit 8
exit 3`
	var out, errb bytes.Buffer
	if code := run([]string{"run", "-q", "--hosts", "1", "--", "bash", "-c", script}, &out, &errb); code != 3 {
		t.Fatalf("exit %d, want the command's 3; stderr: %s", code, errb.String())
	}
	b, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	for _, k := range []string{"FERRY_LAB_DIR", "FERRY_LAB_INVENTORY", "FERRY_LAB_KEY", "FERRY_LAB_KNOWN_HOSTS", "FERRY_LAB_SSH_CONFIG", "FERRY_LAB_BASTION"} {
		if env[k] == "" {
			t.Errorf("%s not exported", k)
		}
	}
	if !strings.HasPrefix(env["FERRY_LAB_BASTION"], "deploy@10.212.") {
		t.Errorf("FERRY_LAB_BASTION = %q", env["FERRY_LAB_BASTION"])
	}
	if _, err := os.Stat(env["FERRY_LAB_DIR"]); err == nil {
		t.Errorf("lab dir %s left after run", env["FERRY_LAB_DIR"])
	}
}

func TestRunSignalTearsDown(t *testing.T) {
	if err := lab.Available(); err != nil {
		t.Skip(err)
	}
	dirFile := filepath.Join(t.TempDir(), "dir")
	// The command signals ferry-lab (its parent: this test process, where
	// run has taken over SIGTERM), which passes the signal on.
	script := `echo "$FERRY_LAB_DIR" > ` + dirFile + `; kill -TERM $PPID; exec sleep 30`
	var out, errb bytes.Buffer
	if code := run([]string{"run", "-q", "--hosts", "1", "--", "bash", "-c", script}, &out, &errb); code != 128+15 {
		t.Fatalf("exit %d, want 143; stderr: %s", code, errb.String())
	}
	b, err := os.ReadFile(dirFile)
	if err != nil {
		t.Fatal(err)
	}
	if dir := strings.TrimSpace(string(b)); dir == "" {
		t.Error("command did not run")
	} else if _, err := os.Stat(dir); err == nil {
		t.Errorf("lab dir %s left after a signal", dir)
	}
}

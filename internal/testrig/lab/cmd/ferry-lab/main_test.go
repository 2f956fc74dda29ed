package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
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

func TestAWSUsage(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--aws", "--jumps", "2", "--", "true"},
		{"up", "--aws", "--aws-time-scale", "0"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--aws") {
			t.Errorf("ferry-lab %v: exit %d, stderr %q; want 2 and a word on --aws", args, code, errb.String())
		}
	}
}

// run --aws exports the emulator's endpoint and inventory, the endpoint
// answers while the command runs, and its calls are listed at the end.
func TestRunWithAWS(t *testing.T) {
	if err := lab.Available(); err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("needs curl")
	}
	envFile := filepath.Join(t.TempDir(), "env")
	script := `env | grep -E '^(FERRY_LAB_|AWS_)' > ` + envFile + `
test -f "$FERRY_LAB_AWS_INVENTORY" || exit 9
curl -sf -H "Authorization: AWS4-HMAC-SHA256 Credential=AKIAX/20240101/$AWS_REGION/autoscaling/aws4_request, SignedHeaders=host, Signature=0" \
	-d 'Action=SuspendProcesses&Version=2011-01-01&AutoScalingGroupName=app-asg&ScalingProcesses.member.1=Launch' "$AWS_ENDPOINT_URL" >/dev/null || exit 8
# The load balancers answer as load balancers: no app runs on the hosts.
for u in "$FERRY_LAB_ALB_URL" "$FERRY_LAB_ELB_URL"; do
	case $(curl -s -o /dev/null -w '%{http_code}' "$u/") in 502|503) ;; *) exit 7 ;; esac
done`
	report := filepath.Join(t.TempDir(), "aws.json")
	var out, errb bytes.Buffer
	if code := run([]string{"run", "--aws", "--aws-report", report, "--hosts", "2", "--", "bash", "-c", script}, &out, &errb); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, errb.String())
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
	if !strings.HasPrefix(env["AWS_ENDPOINT_URL"], "http://127.0.0.1:") || env["AWS_EC2_METADATA_DISABLED"] != "true" ||
		env["AWS_REGION"] == "" || env["AWS_ACCESS_KEY_ID"] == "" || env["AWS_SECRET_ACCESS_KEY"] == "" {
		t.Errorf("AWS environment: %v", env)
	}
	if !strings.HasPrefix(env["FERRY_LAB_AWS_INVENTORY"], env["FERRY_LAB_DIR"]+"/") {
		t.Errorf("inventory %q is not in the lab dir %q", env["FERRY_LAB_AWS_INVENTORY"], env["FERRY_LAB_DIR"])
	}
	if !strings.Contains(errb.String(), "SuspendProcesses") || !strings.Contains(errb.String(), "app-asg  Launch") {
		t.Errorf("the calls made are not listed at the end:\n%s", errb.String())
	}
	if b, err := os.ReadFile(report); err != nil || !strings.Contains(string(b), `"action":"SuspendProcesses"`) {
		t.Errorf("--aws-report: %s %v", b, err)
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(env["AWS_ENDPOINT_URL"], "http://"), time.Second); err == nil {
		c.Close()
		t.Errorf("the endpoint still answers after run")
	}
}

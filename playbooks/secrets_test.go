package playbooks

import (
	"sync"
	"testing"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
)

// Credential-like controller variables stay out of env_vars unless a play
// names them in secrets: (then they are masked); ferry's own never appear.
func TestEnvVarsHideCredentialsUnlessNamed(t *testing.T) {
	var mu sync.Mutex
	masked := map[string]bool{}
	res, rec := runPB(t, `
- hosts: app
  secrets: [env_vars.DB_PASSWORD, env_vars.FERRY_SSH_KEY]
  tasks:
    - debug: {msg: "{{ env_vars.AWS_SECRET_ACCESS_KEY ?? 'absent' }} {{ env_vars.AWS_SESSION_TOKEN ?? 'absent' }} {{ env_vars.GITHUB_TOKEN ?? 'absent' }} {{ env_vars.FERRY_SSH_KEY ?? 'absent' }} {{ env_vars.DEPLOY_REGION }}"}
    - debug: {msg: "{{ env_vars.DB_PASSWORD }}"}
- hosts: app
  tasks:
    - debug: {msg: "{{ env_vars.DB_PASSWORD ?? 'absent' }}"}
`, 1, func(o *Options) {
		o.Environ = []string{"AWS_SECRET_ACCESS_KEY=aws-secret-value", "AWS_SESSION_TOKEN=aws-session-value", "GITHUB_TOKEN=ghp-token-value", "DB_PASSWORD=db-pass-value", "FERRY_SSH_KEY=ssh-key-value", "DEPLOY_REGION=eu-west-1"} // the controller's environment, passed in
		o.Mask = func(vs ...string) {
			mu.Lock()
			defer mu.Unlock()
			for _, v := range vs {
				masked[v] = true
			}
		}
	})
	if res.ExitCode != exitcode.OK {
		t.Fatalf("exit %d", res.ExitCode)
	}
	ends := rec.kinds(events.TaskEnd)
	if len(ends) != 3 {
		t.Fatalf("%d task ends", len(ends))
	}
	if ends[0].Msg != "absent absent absent absent eu-west-1" {
		t.Errorf("env_vars exposes credentials: %q", ends[0].Msg)
	}
	if ends[1].Msg != "db-pass-value" || ends[2].Msg != "absent" {
		t.Errorf("a variable named in secrets: is for its play only: %q, %q", ends[1].Msg, ends[2].Msg)
	}
	mu.Lock()
	defer mu.Unlock()
	if !masked["db-pass-value"] {
		t.Errorf("the named variable is not masked: %v", masked)
	}
}

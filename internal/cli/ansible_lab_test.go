package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A deploy playbook written for Ansible (roles, serial, become,
// ansible.builtin.systemd/copy/file/uri, register, until with a default and
// regex_replace, a handler) runs unchanged with `ferry run` and with
// `ansible-playbook` on the same lab hosts, and both leave the same state.
// ansible-core comes from `scripts/deps.sh bench` (`make test-ansible`).
//
// deploy-facts.yml does the same with gathered facts (in a condition and a
// file's content), include_role and a handler of the play: both tools
// leave the same file, written from the facts, and run the handler.
func TestLabAnsiblePlaybookBothTools(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, playbook, extra, handler string }{
		{"roles", "deploy.yml", "", "RUNNING HANDLER [app : restart app]"},
		{"facts_include_role", "deploy-facts.yml", "; cat /opt/app/DEPLOYED; test -e /opt/app/deployed.flag && echo handler ran", "RUNNING HANDLER [deployed]"},
	} {
		t.Run(c.name, func(t *testing.T) { t.Parallel(); bothTools(t, c.playbook, c.extra, c.handler) })
	}
}

func bothTools(t *testing.T, playbookName, extraState, ansibleHandler string) {
	ap, err := exec.LookPath("ansible-playbook")
	if err != nil {
		t.Skip("ansible-playbook is not installed: run `scripts/deps.sh bench` (or `make test-ansible`) to install Debian's ansible-core")
	}
	d := startDeployLab(t, 2)
	playbook := filepath.Join(repoRoot(), "testdata", "ansible-deploy", playbookName)
	hosts := []string{"app1", "app2"}

	// state is what a deploy leaves on a host, as the test reads it from inside.
	state := func() map[string]string {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out := map[string]string{}
		for _, h := range hosts {
			s, err := d.Exec(ctx, h, `readlink /opt/app/current; stat -c '%U:%G:%a' /opt/app/releases/v2/app; sha256sum </opt/app/releases/v2/app; systemctl is-active app`+extraState)
			if err != nil {
				t.Fatalf("%s: %v", h, err)
			}
			// A handler restarts the app last: it answers once ready (the
			// example app takes a moment after start).
			v, _ := d.status(t, h)
			for i := 0; i < 50 && v == ""; i++ {
				time.Sleep(100 * time.Millisecond)
				v, _ = d.status(t, h)
			}
			out[h] = s + "status " + v
		}
		return out
	}
	// reset puts every host back on v1, as setup.yml left it
	reset := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, h := range hosts {
			if _, err := d.Exec(ctx, h, "ln -sfn /opt/app/releases/v1 /opt/app/current && rm -rf /opt/app/releases/v2 /opt/app/DEPLOYED /opt/app/deployed.flag && systemctl restart app"); err != nil {
				t.Fatal(err)
			}
			v := ""
			for i := 0; i < 50 && v != "v1"; i++ {
				time.Sleep(100 * time.Millisecond)
				v, _ = d.status(t, h)
			}
			if v != "v1" {
				t.Fatalf("%s: %s after reset, want v1", h, v)
			}
		}
	}

	r := d.ferry(t, "run", playbook, "-e", "app_version=v2")
	if r.code != 0 {
		t.Fatalf("ferry run: exit %d", r.code)
	}
	if !strings.Contains(r.stdout, "restart app") {
		t.Error("ferry: the handler did not run")
	}
	byFerry := state()
	for _, h := range hosts {
		if !strings.HasPrefix(byFerry[h], "/opt/app/releases/v2\ndeploy:deploy:755\n") || !strings.HasSuffix(byFerry[h], "status v2") {
			t.Errorf("%s after ferry: %q", h, byFerry[h])
		}
		if extraState != "" && (!strings.Contains(byFerry[h], "v2 on "+h+" (") || !strings.Contains(byFerry[h], "handler ran")) {
			t.Errorf("%s after ferry: the facts file or the handler is missing: %q", h, byFerry[h])
		}
	}

	reset()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ap, "-i", d.Inventory, playbook, "-e", "dist="+d.dist, "-e", "app_version=v2")
	cmd.Env = append(os.Environ(), "ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_PIPELINING=True",
		"ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3", "ANSIBLE_LOCAL_TEMP="+t.TempDir(),
		"ANSIBLE_SSH_CONTROL_PATH_DIR="+t.TempDir(), "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_SSH_ARGS=-o ControlMaster=auto -o ControlPersist=5s") // the master ends soon after the run
	out, err := cmd.CombinedOutput()
	t.Logf("ansible-playbook:\n%s", out)
	if err != nil {
		t.Fatalf("ansible-playbook: %v", err)
	}
	if !strings.Contains(string(out), ansibleHandler) {
		t.Error("ansible: the handler did not run")
	}
	byAnsible := state()
	for _, h := range hosts {
		if byFerry[h] != byAnsible[h] {
			t.Errorf("%s: ferry left\n%s\nansible left\n%s", h, byFerry[h], byAnsible[h])
		}
	}
}

package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
)

// sessionsSince counts the commands (SSH sessions) host's sshd started
// after its log had size from bytes: what ran there, seen from its side.
func (d *deployLab) sessionsSince(t *testing.T, host string, from int64) (int, int64) {
	t.Helper()
	dir, err := d.HostDir(host)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "log", "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	if from > int64(len(b)) {
		from = 0
	}
	return strings.Count(string(b[from:]), "Starting session: "), int64(len(b))
}

// The usual Ansible layout: the bastion listed as a host in a [bastions]
// group, the others reached through it by `-F ssh_config`. The deploy
// user has no sudo on the bastion. The lock covers only the hosts the
// playbook targets: the bastion sees the jump and nothing else.
func TestLockScopeBastionInventory(t *testing.T) {
	t.Parallel()
	d := startDeployLab(t, 2)
	dir := t.TempDir()
	bastion := d.Bastions[0]
	inv := filepath.Join(dir, "inventory.ini")
	var b strings.Builder
	fmt.Fprintf(&b, "[bastions]\n%s ansible_host=%s\n\n[app]\n", bastion.Name, bastion.Addr)
	for _, h := range d.Hosts {
		fmt.Fprintf(&b, "%s ansible_host=%s\n", h.Name, h.Addr)
	}
	fmt.Fprintf(&b, "\n[app:vars]\nansible_ssh_common_args=-F %s\n\n[all:vars]\nansible_user=%s\nansible_ssh_private_key_file=%s\n",
		d.SSHConfig, d.User, d.KeyFile)
	if err := os.WriteFile(inv, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	_, mark := d.sessionsSince(t, bastion.Name, 0)
	_, appMark := d.sessionsSince(t, "app1", 0)

	r := ferry(t, d.env, "run", example("deploy.yml"), "-i", inv, "-l", "app", "-e", "version=v2", "-e", "dist="+d.dist, "--output", "json")
	if r.code != 0 {
		t.Fatalf("deploy with the bastion in the inventory: exit %d", r.code)
	}
	wantVersions(t, d.versionsOf(t), map[string]string{"app1": "v2", "app2": "v2"})
	evs := jsonEvents(t, r.stdout)
	var start, end time.Time
	var locks []events.Event
	for _, e := range evs {
		switch e.Kind {
		case events.RunStart:
			start = e.Time
		case events.RunEnd:
			end = e.Time
		case events.Lock:
			locks = append(locks, e)
		}
	}
	if len(locks) != 2 || !strings.Contains(locks[0].Msg, "locked on 2 hosts") {
		t.Fatalf("lock events %+v, want taken on the 2 app hosts, then released", locks)
	}
	for _, e := range locks {
		// Every event carries its real time (the lock's were once 0001-01-01).
		if e.Time.Before(start) || e.Time.After(end) {
			t.Errorf("lock event %q at %s, outside the run (%s to %s)", e.Msg, e.Time, start, end)
		}
	}
	// From the bastion's side: no command ran there (no sudo, no lock file).
	if n, _ := d.sessionsSince(t, bastion.Name, mark); n != 0 {
		t.Errorf("the bastion ran %d commands; it is only the jump", n)
	}
	if n, _ := d.sessionsSince(t, "app1", appMark); n == 0 {
		t.Fatal("app1's log shows no command either: the bastion check proves nothing")
	}
	// (Files, not the directory: a lab host's /var shows the machine's own beneath it.)
	if out, err := d.Exec(context.Background(), bastion.Name, "ls /var/lib/ferry/locks/default.json /var/lib/ferry/demo.json 2>/dev/null; true"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("the bastion has ferry state: %q %v", out, err)
	}

	// -l app1: the lock still covers what the playbook targets (both app
	// hosts), so runs with different -l exclude each other.
	r = ferry(t, d.env, "run", example("deploy.yml"), "-i", inv, "-l", "app1", "-e", "version=v2", "-e", "dist="+d.dist, "--output", "plain")
	if r.code != 0 || !strings.Contains(r.stdout, "locked on 2 hosts") {
		t.Errorf("-l app1: exit %d, want the lock on both app hosts", r.code)
	}

	// A playbook that does target the bastion: the lock needs root there,
	// which the deploy user lacks: exit 4, the host named, nothing changed.
	touch := filepath.Join(dir, "touch.yml")
	os.WriteFile(touch, []byte("- hosts: all\n  tasks:\n    - command: touch /tmp/ferry-touched\n"), 0o600)
	r = ferry(t, d.env, "run", touch, "-i", inv, "--output", "plain")
	if r.code != exitcode.Invalid || !strings.Contains(r.stdout+r.stderr, "cannot be written on "+bastion.Name) || !strings.Contains(r.stdout+r.stderr, "passwordless sudo") {
		t.Errorf("lock without sudo on %s: exit %d, want 4 naming the host and what it needs", bastion.Name, r.code)
	}
	for _, h := range []string{"app1", "app2", bastion.Name} {
		if out, _ := d.Exec(context.Background(), h, "ls /tmp/ferry-touched /var/lib/ferry/locks/default.json 2>/dev/null; true"); strings.TrimSpace(out) != "" {
			t.Errorf("%s changed by the refused run: %q", h, out)
		}
	}

	// A holder on this machine killed with SIGKILL: the next run sees its
	// process is gone and takes the lock over at once, with a warning
	// (without this it would wait out the 2-minute timeout).
	slow := filepath.Join(dir, "slow.yml")
	os.WriteFile(slow, []byte("- hosts: app\n  tasks:\n    - command: sleep 60\n"), 0o600)
	bin, binEnv := ferryBinary(t)
	cmd := exec.Command(bin, "run", slow, "-i", inv, "-o", "json")
	cmd.Env = append(append(os.Environ(), binEnv...), d.env...)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	locked := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"event":"lock"`) {
			locked = true
			break
		}
	}
	if !locked {
		t.Fatal("the run to kill never took the lock")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	quick := filepath.Join(dir, "quick.yml")
	os.WriteFile(quick, []byte("- hosts: app\n  tasks:\n    - command: 'true'\n"), 0o600)
	r = ferry(t, d.env, "run", quick, "-i", inv, "--output", "plain")
	if r.code != 0 || !strings.Contains(r.stdout, "process (pid") || !strings.Contains(r.stdout, "is gone") {
		t.Errorf("after SIGKILL of a holder on this machine: exit %d, want 0 with a takeover warning", r.code)
	}
	for _, h := range d.Hosts {
		if out, _ := d.Exec(context.Background(), h.Name, "ls /var/lib/ferry/locks/ 2>/dev/null; true"); strings.Contains(out, "default.json") {
			t.Errorf("%s: lock left after the takeover run", h.Name)
		}
	}
}

// versionsOf asks every app host which version answers.
func (d *deployLab) versionsOf(t *testing.T) map[string]string {
	out := map[string]string{}
	for _, h := range d.Hosts {
		out[h.Name], _ = d.status(t, h.Name)
	}
	return out
}

// A run whose hosts are all ansible_connection=local takes its lock on the
// controller, like any host (it once exited 3: "no host reachable to hold
// its lock"), and records its release there. It needs sudo here, as the
// lock does on any host.
func TestLockLocalConnection(t *testing.T) {
	if err := exec.Command("sudo", "-n", "true").Run(); err != nil {
		t.Skip("no passwordless sudo on this machine")
	}
	dir := t.TempDir()
	env := fmt.Sprintf("ferry-test-local-%d", os.Getpid()) // one lock file per test process on this shared machine
	app := env
	inv := filepath.Join(dir, "local.ini")
	os.WriteFile(inv, []byte("[ctl]\ncontroller ansible_connection=local\n"), 0o600)
	cfg := filepath.Join(dir, "ferry.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("environments:\n  %s: {inventory: local.ini}\n", env)), 0o600)
	pb := filepath.Join(dir, "local.yml")
	os.WriteFile(pb, []byte(fmt.Sprintf("- hosts: ctl\n  vars: {app: %s}\n  tasks:\n    - command: 'true'\n", app)), 0o600)
	state := filepath.Join("/var/lib/ferry", app+".json")
	_, err := os.Stat("/var/lib/ferry")
	existed := err == nil
	t.Cleanup(func() {
		exec.Command("sudo", "-n", "rm", "-f", state).Run()
		if !existed { // leave the machine as it was (lab hosts see its /var beneath theirs)
			exec.Command("sudo", "-n", "rm", "-f", "/var/lib/ferry/locks/.guard").Run()
			exec.Command("sudo", "-n", "rmdir", "/var/lib/ferry/locks", "/var/lib/ferry").Run()
		}
	})

	r := ferry(t, []string{"FERRY_CONFIG=" + cfg, "FERRY_RECORD_DIR=" + t.TempDir()}, "run", pb, "--env", env, "-e", "version=v7", "--output", "plain")
	if r.code != 0 || !strings.Contains(r.stdout, env+" locked on 1 hosts") {
		t.Fatalf("local hosts only: exit %d, want 0 with the lock on the controller", r.code)
	}
	if _, err := os.Stat(filepath.Join("/var/lib/ferry/locks", env+".json")); !os.IsNotExist(err) {
		t.Errorf("the controller's lock file was not released: %v", err)
	}
	if b, err := exec.Command("sudo", "-n", "cat", state).Output(); err != nil || !strings.Contains(string(b), `"version":"v7"`) {
		t.Errorf("release state on the controller: %q %v", b, err)
	}
}

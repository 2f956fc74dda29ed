package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
)

// TestFaults is issue 13's acceptance 1 on the lab: for each fault, a
// deploy of v2 over v1 on one host, each in a lab of its own. Each ends within its bounds, with an
// exit code and a recap that name the host and the cause, a complete
// record, and a binary that is v1 or v2 whole (by SHA-256), never partial.
func TestFaults(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("lab fault tests")
	}
	src, _ := os.ReadFile(example("deploy.yml"))
	// playbook is the example deploy with from replaced by to; from must be
	// there (the example changes: a replacement that no longer applies
	// would test the example instead of the fault).
	playbook := func(t *testing.T, from, to string) string {
		if !strings.Contains(string(src), from) {
			t.Fatalf("the example deploy.yml no longer has %q", from)
		}
		pb := filepath.Join(t.TempDir(), "deploy.yml")
		os.WriteFile(pb, []byte(strings.Replace(string(src), from, to, 1)), 0o600)
		return pb
	}
	const smoke = "    - name: Smoke test\n"
	// smokeCheck is the smoke test's module line (the one after its name).
	_, rest, ok := strings.Cut(string(src), smoke)
	smokeCheck, _, _ := strings.Cut(rest, "\n")
	if !ok || !strings.HasPrefix(smokeCheck, "      http: ") {
		t.Fatalf("the example deploy.yml has no smoke test by http (%q)", smokeCheck)
	}
	warmUp := func(t *testing.T) string {
		return playbook(t, smoke, "    - name: Warm up\n      shell: sleep 3\n"+smoke)
	}
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return c
	}
	// The long warm-up leaves the PID of its sleep on the host, so the test
	// can tell, through the host's namespace, whether it still runs.
	const warmPID = "/tmp/ferry-warmup.pid"
	sleeping := func(t *testing.T, d *deployLab) bool {
		out, _ := d.Exec(ctx(t), "app1", `p=$(cat `+warmPID+` 2>/dev/null) && [ "$(cat /proc/$p/comm 2>/dev/null)" = sleep ] && echo yes || true`)
		return strings.TrimSpace(out) == "yes"
	}

	// Each fault gets a lab of its own (one host, app1), so the faults run
	// side by side and none inherits another's lock or record.
	for _, c := range []struct {
		name  string
		pb    func(t *testing.T) string
		grace string
		// at says when to inject the fault; inject does it.
		at     func(e events.Event) bool
		inject func(t *testing.T, d *deployLab)
		// seen checks the run's events as they come.
		seen func(t *testing.T, d *deployLab, e events.Event)
		// wantLeft: what the recap must say the host was left as
		// (prefix); wantMsg: the cause, in the host's failure; wantEnd:
		// in the run's message (default: the batch's failure).
		wantLeft, wantMsg, wantEnd string
		// wantIn: the tasks any one of which may carry the failure, when
		// the fault races fast tasks (instead of wantMsg).
		wantIn     []string
		wantRolled bool
		after      func(t *testing.T, d *deployLab)
	}{
		{
			// The warm-up outlasts every bound of the run: only the
			// keepalives on the host's own connection (the bastion's stays
			// healthy) can notice the dead link while it runs.
			name: "link down mid-task", grace: "6s",
			pb: func(t *testing.T) string {
				return playbook(t, smoke, "    - name: Warm up\n      shell: echo $$ > "+warmPID+"; exec sleep 60\n"+smoke)
			},
			at: func(e events.Event) bool { return e.Kind == events.TaskStart && e.Task == "Warm up" },
			inject: func(t *testing.T, d *deployLab) {
				for i := 0; !sleeping(t, d); i++ {
					if i > 200 {
						t.Error("the warm-up's sleep never started on app1")
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				d.SetLink("app1", false)
			},
			seen: func(t *testing.T, d *deployLab, e events.Event) {
				if e.Kind == events.TaskEnd && e.Task == "Warm up" && !sleeping(t, d) {
					t.Errorf("the dead link was reported only after the warm-up's sleep had ended (%s: %s)", e.Status, e.Msg)
				}
			},
			wantLeft: events.LeftUnknown + " (connection lost during Warm up)", wantMsg: "keepalives 1s apart",
			after: func(t *testing.T, d *deployLab) { d.SetLink("app1", true) },
		},
		{
			// The copy itself is staged before the window; inside it, the
			// activation, start and warm-up follow each other in well under
			// a second before the warm-up's 3 s sleep, so the kill lands in
			// one of them, whichever is in flight: each must roll back.
			name: "host sshd killed mid-window", pb: warmUp, grace: "60s",
			at: func(e events.Event) bool { return e.Kind == events.TaskStart && e.Task == "Upload release" },
			inject: func(t *testing.T, d *deployLab) {
				d.StopSSHD(ctx(t), "app1")
				go func() {
					c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					time.Sleep(2 * time.Second)
					d.StartSSHD(c, "app1")
				}()
			},
			wantLeft: events.LeftInService, wantIn: []string{"Upload release:", "Start:", "Warm up:"}, wantRolled: true,
		},
		{
			name: "host crash mid-deploy", pb: warmUp, grace: "5s",
			at:       func(e events.Event) bool { return e.Kind == events.TaskStart && e.Task == "Warm up" },
			inject:   func(t *testing.T, d *deployLab) { d.Crash(ctx(t), "app1") },
			wantLeft: events.LeftUnknown, wantMsg: "Warm up",
		},
		{
			name: "smoke test hangs", grace: "60s",
			pb: func(t *testing.T) string {
				return playbook(t, smoke+smokeCheck+"\n", smoke+"      shell: sleep 600\n      timeout: 2s\n")
			},
			wantLeft: events.LeftInService, wantMsg: "timed out after 2s", wantRolled: true,
		},
		{
			name: "disk full during copy", pb: warmUp, grace: "60s",
			inject: func(t *testing.T, d *deployLab) {
				if _, err := d.Exec(ctx(t), "app1", "mkdir -p /opt/app/releases/v2 && mount -t tmpfs -o size=1m lab-full /opt/app/releases/v2"); err != nil {
					t.Fatal(err)
				}
			},
			// The copy is staged before batch 1: a full disk stops the run
			// before the host is drained or stopped, with nothing to roll back.
			wantLeft: "", wantMsg: "no space left", wantEnd: "stage failed on 1 host(s) (app1): no host was taken out of service",
			after: func(t *testing.T, d *deployLab) { d.Exec(ctx(t), "app1", "umount /opt/app/releases/v2") },
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := startDeployLab(t, 1)
			// Keepalives every second: a dead link is noticed in about 3 s.
			cfg := filepath.Join(t.TempDir(), "ssh_config")
			os.WriteFile(cfg, []byte("Host *\n    ServerAliveInterval 1\n"), 0o600)
			env := append(append([]string{}, d.env...), "FERRY_SSH_CONFIG="+cfg)
			sums := map[string]string{}
			for _, v := range []string{"v1", "v2"} {
				b, err := os.ReadFile(filepath.Join(d.dist, v, "app"))
				if err != nil {
					t.Fatal(err)
				}
				s := sha256.Sum256(b)
				sums[hex.EncodeToString(s[:])] = v
			}
			pb := c.pb(t)
			if c.at == nil && c.inject != nil {
				c.inject(t, d) // before the run
			}
			injected := false
			cmd, done := startRun(t, env, func(cmd *exec.Cmd, e events.Event) bool {
				if c.at != nil && !injected && e.Host == "app1" && c.at(e) {
					injected = true
					c.inject(t, d)
				}
				if c.seen != nil && e.Host == "app1" {
					c.seen(t, d, e)
				}
				return false
			}, "run", pb, "-i", d.Inventory, "-l", "app1", "-e", "dist="+d.dist, "-e", "version=v2", "--grace", c.grace, "-o", "json")
			code := waitExit(t, cmd, done)
			if c.after != nil {
				c.after(t, d)
			}
			if c.at != nil && !injected {
				t.Fatal("the fault was never injected")
			}
			if code != exitcode.Failed {
				t.Errorf("exit %d, want 2", code)
			}
			evs := d.lastRecord(t)
			var end *events.Event
			hostMsg := ""
			for i, e := range evs {
				if e.Kind == events.RunEnd {
					end = &evs[i]
				}
				if e.Kind == events.HostEnd && e.Host == "app1" {
					hostMsg = e.Msg
				}
			}
			if end == nil {
				t.Fatal("the record has no run_end")
			}
			if c.wantEnd == "" {
				c.wantEnd = "1 of 1 hosts failed"
			}
			if !strings.Contains(end.Msg, c.wantEnd) || !strings.Contains(hostMsg, c.wantMsg) {
				t.Errorf("run_end %q, app1's failure %q; want the host and %q", end.Msg, hostMsg, c.wantMsg)
			}
			if c.wantIn != nil && !slices.ContainsFunc(c.wantIn, func(task string) bool { return strings.HasPrefix(hostMsg, task) }) {
				t.Errorf("app1's failure %q; want it in one of %q", hostMsg, c.wantIn)
			}
			rc := recapOf(t, evs)["app1"]
			if !strings.HasPrefix(rc.Left, c.wantLeft) || rc.RolledBack != c.wantRolled {
				t.Errorf("recap %+v; want left %q, rolled back %v", rc, c.wantLeft, c.wantRolled)
			}
			// The version whose complete binary the host's current release
			// holds, read from the host's files (the host may be dead).
			dir, err := d.HostDir("app1")
			if err != nil {
				t.Fatal(err)
			}
			target, err := os.Readlink(filepath.Join(dir, "opt", "app", "current"))
			if err != nil {
				t.Fatalf("app1: current: %v", err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "opt", strings.TrimPrefix(target, "/opt/"), "app"))
			if err != nil {
				t.Fatalf("app1: %v", err)
			}
			s := sha256.Sum256(b)
			v, ok := sums[hex.EncodeToString(s[:])]
			if !ok {
				t.Errorf("app1: the binary of %s (%d bytes) is neither v1 nor v2: partial", target, len(b))
			}
			if (c.wantRolled || c.wantEnd != "1 of 1 hosts failed") && v != "v1" {
				t.Errorf("app1's current binary is %s after its rollback, want v1", v)
			}
		})
	}
}

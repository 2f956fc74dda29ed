package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
)

// TestFaults is issue 13's acceptance 1 on the lab: for each fault, a
// deploy of v2 over v1 on one host. Each ends within its bounds, with an
// exit code and a recap that name the host and the cause, a complete
// record, and a binary that is v1 or v2 whole (by SHA-256), never partial.
func TestFaults(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("lab fault tests")
	}
	d := startDeployLab(t, 5)
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
	src, _ := os.ReadFile(example("deploy.yml"))
	playbook := func(t *testing.T, from, to string) string {
		if !strings.Contains(string(src), from) {
			t.Fatalf("the example deploy has no %q to replace: update the fault", from)
		}
		pb := filepath.Join(t.TempDir(), "deploy.yml")
		os.WriteFile(pb, []byte(strings.Replace(string(src), from, to, 1)), 0o600)
		return pb
	}
	warmUp := playbook(t, "    - name: Smoke test\n", "    - name: Warm up\n      shell: sleep 3\n    - name: Smoke test\n")
	ctx := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return c
	}

	// binary is the version whose complete binary the host's current
	// release holds, read from the host's files (the host may be dead).
	binary := func(t *testing.T, host string) string {
		dir, err := d.HostDir(host)
		if err != nil {
			t.Fatal(err)
		}
		target, err := os.Readlink(filepath.Join(dir, "opt", "app", "current"))
		if err != nil {
			t.Fatalf("%s: current: %v", host, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "opt", strings.TrimPrefix(target, "/opt/"), "app"))
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		s := sha256.Sum256(b)
		v, ok := sums[hex.EncodeToString(s[:])]
		if !ok {
			t.Errorf("%s: the binary of %s (%d bytes) is neither v1 nor v2: partial", host, target, len(b))
		}
		return v
	}

	for _, c := range []struct {
		name, host, pb string
		grace          string
		// at says when to inject the fault; inject does it.
		at     func(e events.Event) bool
		inject func(t *testing.T)
		// wantLeft: what the recap must say the host was left as
		// (prefix); wantMsg: the cause, in the host's failure; wantEnd:
		// in the run's message (default: the batch's failure).
		wantLeft, wantMsg, wantEnd string
		wantRolled                 bool
		after                      func(t *testing.T)
	}{
		{
			name: "link down mid-task", host: "app1", pb: warmUp, grace: "6s",
			at:       func(e events.Event) bool { return e.Kind == events.TaskStart && e.Task == "Warm up" },
			inject:   func(t *testing.T) { d.SetLink("app1", false) },
			wantLeft: events.LeftUnknown + " (connection lost during Warm up)", wantMsg: "unknown",
			after: func(t *testing.T) { d.SetLink("app1", true) },
		},
		{
			name: "host sshd killed mid-copy", host: "app2", pb: warmUp, grace: "60s",
			at: func(e events.Event) bool { return e.Kind == events.TaskStart && e.Task == "Upload release" },
			inject: func(t *testing.T) {
				d.StopSSHD(ctx(), "app2")
				go func() { time.Sleep(2 * time.Second); d.StartSSHD(ctx(), "app2") }()
			},
			wantLeft: events.LeftInService, wantMsg: "Upload release", wantRolled: true,
		},
		{
			name: "host crash mid-deploy", host: "app3", pb: warmUp, grace: "5s",
			at:       func(e events.Event) bool { return e.Kind == events.TaskStart && e.Task == "Warm up" },
			inject:   func(t *testing.T) { d.Crash(ctx(), "app3") },
			wantLeft: events.LeftUnknown, wantMsg: "Warm up",
		},
		{
			name: "smoke test hangs", host: "app4", grace: "60s",
			pb: playbook(t, "      http: {url: \"http://127.0.0.1:{{ port }}/status\", status: 200, json: {version: \"{{ version }}\"}, retries: 30, delay: 100ms}\n",
				"      shell: sleep 600\n      timeout: 2s\n"),
			wantLeft: events.LeftInService, wantMsg: "timed out after 2s", wantRolled: true,
		},
		{
			name: "disk full during copy", host: "app5", pb: warmUp, grace: "60s",
			inject: func(t *testing.T) {
				if _, err := d.Exec(ctx(), "app5", "mkdir -p /opt/app/releases/v2 && mount -t tmpfs -o size=1m lab-full /opt/app/releases/v2"); err != nil {
					t.Fatal(err)
				}
			},
			// The copy is staged before batch 1: a full disk stops the run
			// before the host is drained or stopped, with nothing to roll back.
			wantLeft: "", wantMsg: "no space left", wantEnd: "stage failed on 1 host(s) (app5): no host was taken out of service",
			after: func(t *testing.T) { d.Exec(ctx(), "app5", "umount /opt/app/releases/v2") },
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.at == nil && c.inject != nil {
				c.inject(t) // before the run
			}
			injected := false
			cmd, done := startRun(t, env, func(cmd *exec.Cmd, e events.Event) bool {
				if c.at != nil && !injected && e.Host == c.host && c.at(e) {
					injected = true
					c.inject(t)
				}
				return false
			}, "run", c.pb, "-i", d.Inventory, "-l", c.host, "-e", "dist="+d.dist, "-e", "version=v2", "--grace", c.grace, "-o", "json")
			code := waitExit(t, cmd, done)
			if c.after != nil {
				c.after(t)
			}
			// A host the run could not reach at its end keeps the run's
			// deploy lock (stale only after its timeout): free it for the
			// next fault, as an operator would.
			defer ferry(t, env, "lock", "release", "-i", d.Inventory, "-y")
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
				if e.Kind == events.HostEnd && e.Host == c.host {
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
				t.Errorf("run_end %q, %s's failure %q; want the host and %q", end.Msg, c.host, hostMsg, c.wantMsg)
			}
			rc := recapOf(t, evs)[c.host]
			if !strings.HasPrefix(rc.Left, c.wantLeft) || rc.RolledBack != c.wantRolled {
				t.Errorf("recap %+v; want left %q, rolled back %v", rc, c.wantLeft, c.wantRolled)
			}
			v := binary(t, c.host)
			if (c.wantRolled || c.wantEnd != "1 of 1 hosts failed") && v != "v1" {
				t.Errorf("%s's current binary is %s after its rollback, want v1", c.host, v)
			}
		})
	}
}

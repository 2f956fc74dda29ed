package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
)

// `ferry run ... | head -1`, `--output json | head`: the reader of stdout
// goes away mid-rollout. The run must stop as on an interrupt (the host in
// flight finishes or rolls back within --grace, no new batch), release the
// lock, and complete its record with the true outcome and a note that the
// output was cut; not die at once with SIGPIPE (exit 141).
func TestClosedOutputIsAnInterrupt(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"json", "plain"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			d := startDeployLab(t, 3)
			bin, binEnv := ferryBinary(t)
			pb := filepath.Join(t.TempDir(), "slow.yml")
			src, _ := os.ReadFile(example("deploy.yml"))
			os.WriteFile(pb, []byte(strings.Replace(string(src), "    - name: Smoke test\n", "    - name: Warm up\n      shell: sleep 2\n    - name: Settle\n      shell: sleep 2\n    - name: Smoke test\n", 1)), 0o600)

			cmd := exec.Command(bin, "run", pb, "-i", d.Inventory, "-e", "dist="+d.dist, "-e", "version=v2", "-o", mode)
			cmd.Env = append(append(os.Environ(), d.env...), binEnv...)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			// Read until the canary is in the middle of its task list, then
			// close the pipe, as head does once it has its lines. Plain
			// output says a task when it ends: Warm up's line comes while
			// Settle still runs, so the canary's list is not over yet.
			sc := bufio.NewScanner(stdout)
			closed := false
			for sc.Scan() {
				line := sc.Text()
				var e events.Event
				if mode == "json" && json.Unmarshal([]byte(line), &e) == nil && e.Kind == events.TaskStart && e.Task == "Warm up" ||
					mode == "plain" && strings.Contains(line, "Warm up") {
					stdout.Close()
					closed = true
					break
				}
			}
			if !closed {
				t.Fatal("the run never reached the Warm up task")
			}
			errc := make(chan error, 1)
			go func() { errc <- cmd.Wait() }()
			select {
			case err = <-errc:
			case <-time.After(3 * time.Minute):
				t.Fatal("the run did not end within 3 minutes of its output closing")
			}
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != exitcode.Interrupted {
				t.Fatalf("exit %v, want 130 (interrupted), not a death by SIGPIPE", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for _, h := range []string{"app1", "app2", "app3"} {
				if v, _ := d.status(t, h); v == "down" {
					t.Errorf("%s left out of service", h)
				}
				if out, _ := d.Exec(ctx, h, "ls /var/lib/ferry/locks/ 2>/dev/null | grep -c json || true"); strings.TrimSpace(out) != "0" {
					t.Errorf("%s still holds a lock file: %q", h, out)
				}
			}
			evs := d.lastRecord(t)
			last := evs[len(evs)-1]
			if last.Kind != events.RunEnd || last.Status != events.StatusInterrupted || last.ExitCode != exitcode.Interrupted {
				t.Errorf("record ends with %+v, want the run's end: interrupted, exit 130", last)
			}
			noted := false
			for _, e := range evs {
				if e.Kind == events.Warning && strings.Contains(e.Msg, "output closed") {
					noted = true
				}
			}
			if !noted {
				t.Error("the record does not say the output was cut")
			}
			rc := recapOf(t, evs)
			if !rc["app2"].Untouched || !rc["app3"].Untouched {
				t.Errorf("a batch started after the output closed: %+v %+v", rc["app2"], rc["app3"])
			}
		})
	}
}

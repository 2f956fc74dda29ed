package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ferrydeploy/ferry/environments"
	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/ssh"
	"github.com/ferrydeploy/ferry/tasks"
)

// countingConn counts the commands a host receives (Run calls: each is
// one SSH round trip); SFTP and tunnels ride on the same connection.
type countingConn struct {
	tasks.Conn
	host string
	seen *commandsSeen
}

func (c countingConn) Run(ctx context.Context, cmd string, opts tasks.RunOptions) (tasks.Result, error) {
	c.seen.add(c.host, cmd)
	return c.Conn.Run(ctx, cmd, opts)
}

// Start counts the lock's holder as one command (it carries the lock, the
// heartbeats, the release records and the release).
func (c countingConn) Start(ctx context.Context, cmd string, opts ssh.RunOptions) (*ssh.Stream, error) {
	st, ok := c.Conn.(streamer)
	if !ok {
		return nil, environments.ErrNoStream
	}
	c.seen.add(c.host, cmd)
	return st.Start(ctx, cmd, opts)
}

// Closed forwards the connection's own answer (the runner reconnects dropped hosts).
func (c countingConn) Closed() bool {
	cl, ok := c.Conn.(interface{ Closed() bool })
	return ok && cl.Closed()
}

type commandsSeen struct {
	mu     sync.Mutex
	byHost map[string][]string
}

func (s *commandsSeen) add(host, cmd string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byHost[host] = append(s.byHost[host], cmd)
}

// countCommands makes every connection of t's runs that follow count its
// commands, until the test ends. Runs of other tests are not counted.
func countCommands(t *testing.T) *commandsSeen {
	seen := &commandsSeen{byHost: map[string][]string{}}
	counters.Store(t.Name(), seen)
	t.Cleanup(func() { counters.Delete(t.Name()) })
	return seen
}

// counters holds, by test name, where countCommands counts.
var counters sync.Map // string → *commandsSeen

// counting gives ctx the connection wrapper of t's countCommands, if any.
func counting(ctx context.Context, t *testing.T) context.Context {
	v, ok := counters.Load(t.Name())
	if !ok {
		return ctx
	}
	seen := v.(*commandsSeen)
	return context.WithValue(ctx, connWrapKey{}, func(host string, c tasks.Conn) tasks.Conn {
		return countingConn{c, host, seen}
	})
}

// kind names a command for the budget: ferry's own (preflight, lock) or a task's.
func kind(cmd string) string {
	switch {
	case strings.Contains(cmd, "FERRY-LOCK"):
		return "lock"
	case cmd == "true": // as root: sudo -n works

		return "preflight"
	}
	return "task"
}

// short is a command's first line, for failure messages.
func short(cmd string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(cmd), "\n")
	if len(line) > 100 {
		line = line[:100] + "..."
	}
	return line
}

// TestRoundTripBudget: a run of N tasks on a host costs it at most N + 3
// commands (preflight, the lock with the release state, the unlock; both
// playbooks here are held to less, see extra; the lock is one command,
// its holder, which also carries the release records and the unlock), and
// the lock, the release state and the journal add none per task. It counts
// commands, not seconds, so it cannot be flaky; a change that adds a round
// trip per task or per host fails it, listing the commands each host got.
func TestRoundTripBudget(t *testing.T) {
	d := startDeployLab(t, 3)
	dir := t.TempDir()
	trivial := filepath.Join(dir, "trivial.yml")
	var b strings.Builder
	b.WriteString("- hosts: app\n  tasks:\n")
	for i := range 10 {
		fmt.Fprintf(&b, "    - command: echo %d\n", i)
	}
	os.WriteFile(trivial, []byte(b.String()), 0o600)

	// extra: what a host may get beyond one command per task. The issue's
	// budget is 3 (preflight, lock with state, unlock); both playbooks do
	// better, and a change that gives a round trip back fails here:
	//   - trivial (no become): no preflight command, the lock's holder;
	//   - the example deploy: preflight, the lock's holder, while its staged
	//     release costs two commands in the stage (check with the layout,
	//     finalize) and one in the window (check, then switch from the
	//     layout the stage read), and its two AWS tasks none on a static
	//     inventory.
	for _, c := range []struct {
		pb    string
		extra int
	}{{example("deploy.yml"), 0}, {trivial, 1}} {
		pb := c.pb
		t.Run(filepath.Base(pb), func(t *testing.T) {
			seen := countCommands(t)
			// A long lock timeout: no heartbeat falls inside the run, however slow the machine.
			r := ferry(t, d.env, "run", pb, "-i", d.Inventory, "-e", "dist="+d.dist, "-e", "version=v2",
				"--lock-timeout", "1h", "--output", "json")
			if r.code != 0 {
				t.Fatalf("exit %d", r.code)
			}
			tasksRun := map[string]int{}
			locked := false
			for _, e := range jsonEvents(t, r.stdout) {
				if e.Kind == events.TaskEnd && e.Host != "" {
					tasksRun[e.Host]++
				}
				locked = locked || (e.Kind == events.Lock && e.Status == events.StatusOK)
			}
			if !locked {
				t.Fatal("the run took no lock: the budget must include it")
			}
			for _, h := range d.Hosts {
				cmds := seen.byHost[h.Name]
				per := map[string]int{}
				for _, c := range cmds {
					per[kind(c)]++
				}
				n := tasksRun[h.Name]
				// The total is the budget; the lock's one is checked apart so that
				// a lock or release record that costs a command per task or per
				// write shows as such.
				if n == 0 || len(cmds) > n+c.extra || per["lock"] != 1 {
					var list []string
					for i, c := range cmds {
						list = append(list, fmt.Sprintf("  %2d %-9s %s", i+1, kind(c), short(c)))
					}
					t.Errorf("%s: %d commands for %d tasks (budget %d: tasks + %d; lock commands %d, want 1); seen:\n%s",
						h.Name, len(cmds), n, n+c.extra, c.extra, per["lock"], strings.Join(list, "\n"))
				}
			}
			var hosts []string
			for h := range seen.byHost {
				hosts = append(hosts, h)
			}
			sort.Strings(hosts)
			t.Logf("commands per host: %v", func() (out []string) {
				for _, h := range hosts {
					out = append(out, fmt.Sprintf("%s=%d", h, len(seen.byHost[h])))
				}
				return
			}())
		})
	}
	// The release state rode on the unlock: every host records v2.
	for _, h := range d.Hosts {
		out, err := d.Exec(context.Background(), h.Name, "cat /var/lib/ferry/demo.json")
		if err != nil || !strings.Contains(out, `"version":"v2"`) {
			t.Errorf("%s: release state %q, %v", h.Name, out, err)
		}
	}
}

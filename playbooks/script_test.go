package playbooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pkg/sftp"

	"github.com/ferrydeploy/ferry/events"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/output"
	"github.com/ferrydeploy/ferry/tasks"
)

// script is a scripted host connection, in the manner of k0sproject/rig's
// rigtest: each command a module runs is answered by the first rule whose
// host and pattern match (exit 0 and no output when none does), and every
// command is logged in the order the runner sent it. The runner's rules
// (handlers, failure limits, rollback order, the journal and --resume) are
// tested with the real modules, in-process, in milliseconds; the lab tests in
// internal/cli run the same paths against real sshd hosts.
type script struct {
	mu    sync.Mutex
	rules []scriptRule
	log   []scriptCmd
	down  map[string]bool // hosts that cannot be reached
}

type scriptRule struct {
	host string // "" for every host
	re   *regexp.Regexp
	res  tasks.Result
	err  error
}

type scriptCmd struct{ host, cmd string }

// on answers commands matching pattern on host ("" any) with res, or err.
func (s *script) on(host, pattern string, res tasks.Result, err error) *script {
	s.rules = append(s.rules, scriptRule{host: host, re: regexp.MustCompile(pattern), res: res, err: err})
	return s
}

func (s *script) Connect(_ context.Context, h *inventory.Host) (tasks.Conn, error) {
	if s.down[h.Name] {
		return nil, fmt.Errorf("%s: connection refused", h.Name)
	}
	return scriptConn{s, h.Name}, nil
}

// ran lists "host" for each logged command matching pattern, in order.
func (s *script) ran(pattern string) []string {
	re := regexp.MustCompile(pattern)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.log {
		if re.MatchString(c.cmd) {
			out = append(out, c.host)
		}
	}
	return out
}

// cmdsOn lists the commands logged on host matching pattern, in order.
func (s *script) cmdsOn(host, pattern string) []string {
	re := regexp.MustCompile(pattern)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.log {
		if c.host == host && re.MatchString(c.cmd) {
			out = append(out, c.cmd)
		}
	}
	return out
}

type scriptConn struct {
	s    *script
	host string
}

func (c scriptConn) Run(ctx context.Context, cmd string, _ tasks.RunOptions) (tasks.Result, error) {
	if err := ctx.Err(); err != nil {
		return tasks.Result{}, err
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.log = append(c.s.log, scriptCmd{c.host, cmd})
	for _, r := range c.s.rules {
		if (r.host == "" || r.host == c.host) && r.re.MatchString(cmd) {
			return r.res, r.err
		}
	}
	return tasks.Result{}, nil
}

func (scriptConn) SFTP(context.Context, string) (*sftp.Client, error) {
	return nil, errors.New("no sftp on a scripted connection")
}

func (scriptConn) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no dial on a scripted connection")
}

// systemctl answers the systemd module's script as systemctl would after
// changing the unit to state.
func systemctl(state string) tasks.Result {
	return tasks.Result{Stdout: []byte("changed: " + state + "\nstate: " + state + "\n")}
}

// runScript runs src on n hosts (h1..hn in group app) over s.
func runScript(t *testing.T, s *script, src string, n int, mod func(*Options)) (Result, *recorder) {
	t.Helper()
	return runPB(t, src, n, func(o *Options) {
		o.Connector = s
		if mod != nil {
			mod(o)
		}
	})
}

func TestScriptHandlersRunOnceAfterTheHostsTasks(t *testing.T) {
	s := &script{}
	res, _ := runScript(t, s, `
- hosts: app
  tasks:
    - shell: write-config
      changed_when: "inventory_hostname != 'h2'"
      notify: restart app
    - shell: write-config-again
      changed_when: "inventory_hostname != 'h2'"
      notify: restart app
    - shell: last-task
  handlers:
    - name: restart app
      shell: restart-app
`, 3, nil)
	if res.ExitCode != exitcode.OK {
		t.Fatalf("exit %d", res.ExitCode)
	}
	// Notified twice, run once, on the hosts where a notifying task changed.
	if got := s.ran(`restart-app`); !slices.Equal(sorted(got), []string{"h1", "h3"}) {
		t.Fatalf("handler ran on %v, want once on h1 and h3", got)
	}
	for _, h := range []string{"h1", "h3"} {
		cmds := s.cmdsOn(h, `write-config|last-task|restart-app`)
		if len(cmds) != 4 || !strings.Contains(cmds[3], "restart-app") {
			t.Errorf("%s ran %q: want the handler once, after the host's last task", h, cmds)
		}
	}
}

func TestScriptFailureRules(t *testing.T) {
	fail := tasks.Result{ExitCode: 1, Stderr: []byte("boom\n")}
	t.Run("ignore_errors goes on, failed_when fails", func(t *testing.T) {
		s := (&script{}).
			on("", `may-fail`, fail, nil).
			on("h2", `check-output`, tasks.Result{Stdout: []byte("WARN disk\n")}, nil)
		res, _ := runScript(t, s, `
- hosts: app
  tasks:
    - shell: may-fail
      ignore_errors: true
    - shell: check-output
      register: out
      failed_when: "'WARN' in out.stdout"
    - shell: after
`, 3, nil)
		if res.ExitCode != exitcode.Failed {
			t.Fatalf("exit %d, want %d (h2 failed by failed_when)", res.ExitCode, exitcode.Failed)
		}
		if got := sorted(s.ran(`after`)); !slices.Equal(got, []string{"h1", "h3"}) {
			t.Errorf("after ran on %v: want h1 and h3 (ignore_errors went on; h2 stopped)", got)
		}
	})
	t.Run("max_fail_percentage halts the rollout after the batch", func(t *testing.T) {
		s := (&script{}).on("h3", `deploy`, fail, nil)
		res, rec := runScript(t, s, `
- hosts: app
  serial: 2
  max_fail_percentage: 0
  tasks:
    - shell: deploy
    - shell: verify
`, 6, nil)
		if res.ExitCode != exitcode.Failed {
			t.Fatalf("exit %d", res.ExitCode)
		}
		if got := batchesOf(rec); got != "h1,h2 | h3,h4" {
			t.Errorf("batches %q: want the rollout halted after h3's batch", got)
		}
		if got := sorted(s.ran(`verify`)); !slices.Equal(got, []string{"h1", "h2", "h4"}) {
			t.Errorf("verify ran on %v: want h1, h2, h4 (h3 failed, h5 and h6 never started)", got)
		}
	})
	t.Run("an unreachable host stops the run before anything is touched", func(t *testing.T) {
		s := &script{down: map[string]bool{"h2": true}}
		pb := `
- hosts: app
  tasks:
    - shell: deploy
`
		res, _ := runScript(t, s, pb, 3, nil)
		if res.ExitCode != exitcode.Unreachable {
			t.Fatalf("exit %d with a host unreachable, want %d", res.ExitCode, exitcode.Unreachable)
		}
		if got := s.ran(`deploy`); len(got) != 0 {
			t.Errorf("deploy ran on %v before the run stopped", got)
		}
		// --allow-unreachable: the others deploy, the recap counts h2.
		res, _ = runScript(t, s, pb, 3, func(o *Options) { o.AllowUnreachable = true })
		if got := sorted(s.ran(`deploy`)); !slices.Equal(got, []string{"h1", "h3"}) {
			t.Errorf("deploy ran on %v", got)
		}
		var unreachable []string
		for _, hr := range res.Recap {
			if hr.Unreachable > 0 {
				unreachable = append(unreachable, hr.Host)
			}
		}
		if !slices.Equal(unreachable, []string{"h2"}) {
			t.Errorf("recap: unreachable %v, want [h2]", unreachable)
		}
	})
}

func TestScriptRollbackOrder(t *testing.T) {
	s := (&script{}).on("h3", `deploy`, tasks.Result{ExitCode: 1}, nil)
	res, _ := runScript(t, s, `
- hosts: app
  serial: 1
  rollback_completed: true
  tasks:
    - shell: deploy
  rollback:
    - shell: undo-one
    - shell: undo-two
`, 4, nil)
	if res.ExitCode != exitcode.Failed {
		t.Fatalf("exit %d", res.ExitCode)
	}
	// The failing host first, then the finished ones newest first; each
	// host's rollback tasks in their order; h4 never touched.
	if got := s.ran(`undo-one`); !slices.Equal(got, []string{"h3", "h2", "h1"}) {
		t.Errorf("rollback order %v, want h3, h2, h1", got)
	}
	for _, h := range []string{"h1", "h2", "h3"} {
		if got := s.cmdsOn(h, `undo-`); len(got) != 2 || !strings.Contains(got[0], "undo-one") {
			t.Errorf("%s rolled back with %q", h, got)
		}
	}
	if got := s.cmdsOn("h4", `.`); len(got) != 0 {
		t.Errorf("h4 ran %q", got)
	}
}

// A run stops a unit, then its connection to h2 drops mid-deploy: the
// record holds the open change. --resume restores it first (the unit started
// again on h2), then finishes only the hosts the run did not.
func TestScriptJournalAndResume(t *testing.T) {
	dir := t.TempDir()
	pbPath := filepath.Join(dir, "deploy.yml")
	src := `
- hosts: app
  serial: 1
  tasks:
    - systemd: {name: app, state: stopped}
    - shell: deploy
    - systemd: {name: app, state: started}
`
	if err := os.WriteFile(pbPath, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	records := filepath.Join(dir, "records")
	run := func(s *script, runID string, resume *Resumed) Result {
		t.Helper()
		pb, err := Load(pbPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := output.NewRecord(records, runID)
		if err != nil {
			t.Fatal(err)
		}
		r := NewRunner(pb, Options{Inventory: hostsInv(t, 3), Connector: s, Sink: rec, RunID: runID,
			Playbook: pbPath, Resume: resume, JournalErr: rec.Err})
		res := r.Run(context.Background())
		if err := rec.Close(); err != nil {
			t.Fatal(err)
		}
		return res
	}

	first := (&script{}).
		on("", `systemctl`, systemctl("inactive"), nil).
		on("h2", `deploy`, tasks.Result{}, errors.New("connection lost"))
	if res := run(first, "run1", nil); res.ExitCode == exitcode.OK {
		t.Fatal("the first run succeeded with h2's connection lost")
	}
	if got := first.ran(`deploy`); !slices.Equal(got, []string{"h1", "h2"}) {
		t.Fatalf("first run deployed %v, want h1 then h2 (halted there)", got)
	}
	evs, err := output.ReadRecord(filepath.Join(records, "run1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var intents []string
	for _, e := range evs {
		if e.Kind == events.Intent {
			intents = append(intents, e.Host+" "+e.Change)
		}
	}
	if !slices.Contains(intents, "h2 unit:app") {
		t.Fatalf("the record journals %v: want h2's stopped unit", intents)
	}

	resumed, err := LoadJournal(records, "", pbPath, "")
	if err != nil {
		t.Fatal(err)
	}
	if resumed.RunID != "run1" {
		t.Fatalf("resuming %s, want run1", resumed.RunID)
	}
	second := (&script{}).on("", `systemctl`, systemctl("active"), nil)
	if res := run(second, "run2", resumed); res.ExitCode != exitcode.OK {
		t.Fatalf("resumed run: exit %d", res.ExitCode)
	}
	// h2's unit is started again before anything is deployed; h1 (finished)
	// is not deployed again; h2 and h3 are.
	h2 := second.cmdsOn("h2", `systemctl|deploy`)
	if len(h2) == 0 || !strings.Contains(h2[0], "systemctl") || !strings.Contains(h2[0], "start") {
		t.Errorf("h2's first command on resume: %q, want the unit started again", h2)
	}
	if got := second.ran(`deploy`); !slices.Equal(got, []string{"h2", "h3"}) {
		t.Errorf("resumed run deployed %v, want h2 and h3 only", got)
	}
	if _, err := LoadJournal(records, "", pbPath, ""); err == nil {
		t.Error("after a successful resume there is still something to resume")
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

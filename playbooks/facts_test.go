package playbooks

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/pkg/sftp"

	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/tasks"
)

// factsConn answers every command with the facts of an Ubuntu host and
// counts the commands.
type factsConn struct {
	out  []byte
	mu   *sync.Mutex
	runs *int
}

func (c factsConn) Run(context.Context, string, tasks.RunOptions) (tasks.Result, error) {
	c.mu.Lock()
	*c.runs++
	c.mu.Unlock()
	return tasks.Result{Stdout: c.out}, nil
}
func (factsConn) SFTP(context.Context, string) (*sftp.Client, error) { return nil, os.ErrInvalid }
func (factsConn) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, os.ErrInvalid
}

type factsConnector struct{ conn factsConn }

func (c factsConnector) Connect(context.Context, *inventory.Host) (tasks.Conn, error) {
	return c.conn, nil
}

func runFacts(t *testing.T, src string) (Result, int) {
	t.Helper()
	out, err := os.ReadFile("../tasks/testdata/facts-ubuntu.txt")
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	conn := factsConn{out: out, mu: &sync.Mutex{}, runs: &runs}
	res, _ := runPB(t, src, 2, func(o *Options) { o.Connector = factsConnector{conn} })
	return res, runs
}

// A play that reads facts gathers them once per host, in one command, even
// with gather_facts absent; facts are variables (ansible_NAME and
// ansible_facts.NAME) and other hosts' facts are in hostvars.
func TestRunGathersFactsOnce(t *testing.T) {
	res, runs := runFacts(t, `
- hosts: app
  tasks:
    - assert:
        that:
          - ansible_distribution == 'Ubuntu'
          - ansible_facts.distribution_major_version == '22'
          - ansible_default_ipv4.address == '10.0.1.17'
          - hostvars['h2']['ansible_default_ipv4']['interface'] == 'ens5'
          - ansible_processor_vcpus == 2
    - assert: {that: "ansible_os_family == 'Debian'"}
- hosts: app
  gather_facts: true
  tasks:
    - assert: {that: "ansible_hostname == 'ip-10-0-1-17'"}
`)
	if res.ExitCode != exitcode.OK {
		t.Fatalf("exit %d", res.ExitCode)
	}
	if runs != 2 {
		t.Fatalf("%d commands on 2 hosts over two plays, want 2: one each, facts cached for the run", runs)
	}
	res, _ = runFacts(t, "- hosts: app\n  tasks:\n    - assert: {that: \"ansible_distribution == 'Debian'\"}\n")
	if res.ExitCode != exitcode.Failed {
		t.Fatalf("a false assertion on a fact passed: exit %d", res.ExitCode)
	}
}

// A play that reads no fact runs no command for them, unless it asks.
func TestRunGathersNoFactsUnused(t *testing.T) {
	for src, want := range map[string]int{
		"- hosts: app\n  tasks:\n    - assert: {that: \"inventory_hostname != ''\"}\n":                                                                                                        0,
		"- hosts: app\n  gather_facts: false\n  tasks:\n    - assert: {that: \"inventory_hostname != ''\"}\n":                                                                                 0,
		"- hosts: app\n  gather_facts: yes\n  tasks:\n    - assert: {that: \"inventory_hostname != ''\"}\n":                                                                                   2,
		"- hosts: app\n  gather_facts: false\n  tasks:\n    - setup: {filter: ansible_kernel}\n    - assert: {that: \"ansible_kernel is defined and ansible_distribution is not defined\"}\n": 2,
	} {
		res, runs := runFacts(t, src)
		if res.ExitCode != exitcode.OK || runs != want {
			t.Errorf("exit %d, %d commands, want %d:\n%s", res.ExitCode, runs, want, src)
		}
	}
}

// ferry check: facts are defined when the play gathers them (or reads
// them, gather_facts absent); with gather_facts: false, reading one is an
// undefined variable that says so.
func TestCheckFacts(t *testing.T) {
	ok := `- hosts: all
  tasks:
    - fx_debug: {msg: "{{ ansible_distribution }} {{ ansible_facts.os_family }} {{ ansible_eth0.ipv4.address }}"}
`
	pb, err := Parse("site.yml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Check(map[string]bool{}); err != nil {
		t.Errorf("facts reported undefined: %v", err)
	}
	bad := strings.Replace(ok, "  tasks:", "  gather_facts: false\n  tasks:", 1)
	pb, err = Parse("site.yml", []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	err = pb.Check(map[string]bool{})
	if err == nil || !strings.Contains(err.Error(), `undefined variable "ansible_distribution"`) || !strings.Contains(err.Error(), "does not gather facts") {
		t.Errorf("gather_facts: false: %v", err)
	}
	after := strings.Replace(bad, "    - fx_debug", "    - setup:\n    - fx_debug", 1)
	pb, err = Parse("site.yml", []byte(after))
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Check(map[string]bool{}); err != nil {
		t.Errorf("facts after setup reported undefined: %v", err)
	}
}

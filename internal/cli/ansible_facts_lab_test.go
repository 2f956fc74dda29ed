package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
)

// ferry's facts (gather_facts, one shell command, no Python) are Ansible's:
// on the same lab host, every fact the migration guide lists has the value
// `ansible -m setup` gives, and gathering costs exactly one command per host
// (counted in the host's sshd log, not timed).
func TestLabFactsMatchAnsible(t *testing.T) {
	t.Parallel()
	ansible, err := exec.LookPath("ansible")
	if err != nil {
		t.Skip("ansible is not installed: run `scripts/deps.sh bench` (or `make test-ansible`) to install Debian's ansible-core")
	}
	l := lab.StartT(t, lab.Options{Hosts: 1})
	isolate(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A default route, so default_ipv4 has something to find (nothing is sent).
	if _, err := l.Exec(ctx, "app1", "ip route replace default dev $(ip -o -4 route show | awk 'NR==1{print $3}')"); err != nil {
		t.Fatal(err)
	}
	// Commands are counted as sshd sessions: one per command only without
	// the connection's command shell (ssh/shell.go).
	env := []string{"FERRY_KNOWN_HOSTS=" + l.KnownHosts, "FERRY_RECORD_DIR=" + t.TempDir(), "FERRY_SSH_SHELL=0"}
	dir := t.TempDir()
	sessions := func() int {
		out, err := l.Exec(ctx, "app1", "grep -c 'Starting session: command' /var/log/sshd.log || true")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &n); err != nil {
			t.Fatalf("sshd log: %q", out)
		}
		return n
	}
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The same tasks with and without facts: the difference is what gathering costs.
	plain := write("plain.yml", `- hosts: app
  gather_facts: false
  tasks:
    - copy: {content: "{{ inventory_hostname }}", dest: "`+dir+`/{{ inventory_hostname }}.plain"}
      delegate_to: localhost
`)
	facts := write("facts.yml", `- hosts: app
  tasks:
    - copy:
        content: "{{ ansible_facts | combine({'top_distribution': ansible_distribution, 'top_ipv4': ansible_default_ipv4.address}) | to_json }}"
        dest: "`+dir+`/{{ inventory_hostname }}.json"
      delegate_to: localhost
`)
	run := func(pb string) int {
		before := sessions()
		r := ferry(t, env, "run", pb, "-i", l.Inventory, "--output", "plain")
		if r.code != 0 {
			t.Fatalf("ferry run %s: exit %d\n%s%s", filepath.Base(pb), r.code, r.stdout, r.stderr)
		}
		return sessions() - before
	}
	base, withFacts := run(plain), run(facts)
	if withFacts != base+1 {
		t.Errorf("commands on app1: %d with facts, %d without: gathering must cost exactly one", withFacts, base)
	}
	var ferryFacts map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "app1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ferryFacts); err != nil {
		t.Fatalf("%v: %s", err, b)
	}

	tree := t.TempDir()
	cmd := exec.CommandContext(ctx, ansible, "app1", "-i", l.Inventory, "-m", "setup", "--tree", tree)
	cmd.Env = append(os.Environ(), "ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_PIPELINING=True",
		"ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3", "ANSIBLE_LOCAL_TEMP="+t.TempDir(),
		"ANSIBLE_SSH_CONTROL_PATH_DIR="+t.TempDir(), "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_SSH_ARGS=-o ControlMaster=auto -o ControlPersist=5s")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ansible -m setup: %v\n%s", err, out)
	}
	var ans struct {
		Facts map[string]any `json:"ansible_facts"`
	}
	b, err = os.ReadFile(filepath.Join(tree, "app1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"distribution", "distribution_major_version", "distribution_version", "os_family",
		"hostname", "fqdn", "default_ipv4", "all_ipv4_addresses", "architecture", "processor_vcpus", "memtotal_mb",
		"kernel", "service_mgr", "user_id", "system", "nodename", "domain", "distribution_release", "interfaces",
		"user_dir", "user_shell", "user_uid", "machine"} {
		got, want := ferryFacts[name], ans.Facts["ansible_"+name]
		if name == "interfaces" { // Ansible lists them in /sys/class/net's order, ferry sorted
			got, want = sortedAny(got), sortedAny(want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: ferry %v, ansible %v", name, got, want)
		}
	}
	if ferryFacts["top_distribution"] != ferryFacts["distribution"] || ferryFacts["top_ipv4"] == nil || ferryFacts["top_ipv4"] == "" {
		t.Errorf("ansible_distribution %v, ansible_default_ipv4.address %v", ferryFacts["top_distribution"], ferryFacts["top_ipv4"])
	}
	// date_time: the same fields, in the same zone (the values are of another second)
	fd, _ := ferryFacts["date_time"].(map[string]any)
	ad, _ := ans.Facts["ansible_date_time"].(map[string]any)
	if len(fd) != len(ad) {
		t.Errorf("date_time: ferry %v, ansible %v", fd, ad)
	}
	for k := range ad {
		if _, ok := fd[k]; !ok {
			t.Errorf("date_time.%s missing", k)
		}
	}
	for _, k := range []string{"tz", "tz_dst", "tz_offset", "year"} {
		if fd[k] != ad[k] {
			t.Errorf("date_time.%s: ferry %v, ansible %v", k, fd[k], ad[k])
		}
	}
	// env: the login environment (Ansible's also has what its own wrapper sets)
	fe, _ := ferryFacts["env"].(map[string]any)
	ae, _ := ans.Facts["ansible_env"].(map[string]any)
	for _, k := range []string{"HOME", "USER", "LOGNAME", "SHELL", "PATH"} {
		if fe[k] != ae[k] {
			t.Errorf("env.%s: ferry %v, ansible %v", k, fe[k], ae[k])
		}
	}
}

func sortedAny(v any) []string {
	l, _ := v.([]any)
	out := make([]string, len(l))
	for i, e := range l {
		out[i], _ = e.(string)
	}
	sort.Strings(out)
	return out
}

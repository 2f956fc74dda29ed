package cli

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
)

// TestScale is issue 13's acceptance 4 at the size FERRY_SCALE_HOSTS says
// (`make scale`: 100, then 1,000), 20 hosts by default (make test's smoke of
// the same path): behind one bastion, with
// OpenSSH's default MaxStartups, `ferry exec -- true` and a 10-task
// playbook in one batch (serial 100%) with -f 200 finish on every host.
func TestScale(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("a large lab")
	}
	n := 20
	if s := os.Getenv("FERRY_SCALE_HOSTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("FERRY_SCALE_HOSTS=%q: want a number of hosts", s)
		}
		n = v
	}
	start := time.Now()
	l := lab.StartT(t, lab.Options{Hosts: n})
	t.Logf("%d hosts up in %s", n, time.Since(start).Round(time.Second))
	isolate(t)
	env := []string{"FERRY_KNOWN_HOSTS=" + l.KnownHosts, "FERRY_RECORD_DIR=" + t.TempDir()}

	// About 0.1 s of the controller per host and command on this machine.
	limit := 2*time.Minute + time.Duration(n)*150*time.Millisecond
	r := ferryWithin(t, limit, env, "exec", "-i", l.Inventory, "-f", "200", "--", "true")
	if r.code != 0 {
		t.Fatalf("exec on %d hosts: exit %d", n, r.code)
	}
	r = ferryWithin(t, limit, env, "run", repoRoot()+"/testdata/bench/ten-tasks.yml", "-i", l.Inventory, "-f", "200", "-o", "plain")
	if r.code != 0 {
		t.Fatalf("10 tasks on %d hosts: exit %d", n, r.code)
	}
	// Every host appears in the recap with its ten tasks done.
	ok := 0
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(line, "app") && strings.Contains(line, "ok=10 ") && strings.Contains(line, "failed=0") {
			ok++
		}
	}
	if ok != n {
		t.Errorf("%d of %d hosts ran their 10 tasks", ok, n)
	}
}

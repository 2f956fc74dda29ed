package awslab_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/internal/testrig/lab/awslab"
	"github.com/ferrydeploy/ferry/inventory/ec2"
)

func TestSeededFromLab(t *testing.T) {
	l := lab.StartT(t, lab.Options{Hosts: 4})
	a := awslab.StartT(t, l, awslab.Options{SampleEvery: 20 * time.Millisecond})
	for _, kv := range a.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}

	// The inventory file finds the app hosts (not the bastion) by tag, at
	// their lab addresses, behind the bastion found by its tag.
	src, err := os.ReadFile(a.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ec2.Build(context.Background(), a.Inventory, src, nil, nil)
	if err != nil {
		t.Fatalf("build inventory: %v\n%s", err, src)
	}
	if len(res.Hosts) != len(l.Hosts) {
		t.Fatalf("inventory has %d hosts, want %d", len(res.Hosts), len(l.Hosts))
	}
	azs := map[any]bool{}
	for i, h := range res.Hosts {
		want := l.Hosts[i]
		v := h.Vars
		if h.Name != want.Name || v["ansible_host"] != want.Addr || v["private_ip"] != want.Addr {
			t.Errorf("host %d: %s at %v, want %s at %s", i, h.Name, v["ansible_host"], want.Name, want.Addr)
		}
		if v["bastion"] != l.Bastion() || v["ansible_user"] != l.User || v["ansible_ssh_private_key_file"] != l.KeyFile {
			t.Errorf("%s: bastion %v user %v key %v", h.Name, v["bastion"], v["ansible_user"], v["ansible_ssh_private_key_file"])
		}
		if v["autoscaling_group"] != awslab.Group || v["instance_id"] != a.Instances[want.Name] || a.HostOf(a.Instances[want.Name]) != want.Name {
			t.Errorf("%s: group %v instance %v", h.Name, v["autoscaling_group"], v["instance_id"])
		}
		if !slices.Contains(h.Groups, "app") || !slices.Contains(h.Groups, "env_demo") || !slices.Contains(h.Groups, "asg_app_asg") {
			t.Errorf("%s groups %v", h.Name, h.Groups)
		}
		azs[v["availability_zone"]] = true
	}
	if len(azs) != 3 {
		t.Errorf("hosts spread over %d zones, want 3", len(azs))
	}

	// Dial reaches a host's own network: its sshd answers there.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := l.Dial(ctx, "app1", l.Hosts[0].Addr+":22")
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.HasPrefix(line, "SSH-") {
		t.Errorf("app1:22 said %q", line)
	}

	// Nothing listens on 8080 yet: every target is unhealthy, with the reason.
	if ok, why := a.Probe("app1"); ok || !strings.Contains(why, "connection refused") {
		t.Errorf("probe with no app: %v %q", ok, why)
	}
	// The load balancers find out after UnhealthyThreshold checks.
	for i := 0; ; i++ {
		tg, err := a.Server.TargetHealth(a.Account, a.Region, a.TargetGroupARN)
		if err != nil || len(tg) != len(l.Hosts) {
			t.Fatalf("target health: %v %v", tg, err)
		}
		unhealthy := 0
		for _, st := range tg {
			if st == "unhealthy" {
				unhealthy++
			}
		}
		if unhealthy == len(l.Hosts) {
			break
		}
		if i > 200 {
			t.Fatalf("target health with no app: %v", tg)
		}
		time.Sleep(50 * time.Millisecond)
	}
	found := false
	for _, c := range a.Server.Changes() {
		found = found || c.Instance == a.Instances["app2"] && c.Kind == "target-group" && c.From == "healthy" && c.To == "unhealthy"
	}
	if !found {
		t.Errorf("no healthy→unhealthy change of app2 logged: %+v", a.Server.Changes())
	}
	// Nothing healthy: the load balancer answers 503.
	if resp, err := http.Get(a.ALB + "/"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("ALB with no healthy target: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// A real HTTP server on app1's loopback: healthy once /status answers 200.
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed: the healthy case is covered by the CLI's deploy tests")
	}
	cmd, err := l.Command(ctx, "app1", "bash", "-c", "mkdir -p /tmp/www && echo ok > /tmp/www/status && cd /tmp/www && exec python3 -m http.server --bind 127.0.0.1 8080")
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, why := a.Probe("app1")
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("app1 never became healthy: %s", why)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := l.Exec(ctx, "app1", "rm /tmp/www/status"); err != nil {
		t.Fatal(err)
	}
	if ok, why := a.Probe("app1"); ok || why != "Health checks failed with these codes: [404]" {
		t.Errorf("probe of a 404: %v %q", ok, why)
	}
}

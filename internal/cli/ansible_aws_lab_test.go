package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Ansible side of the zero-downtime benchmark
// (testdata/bench/zero-downtime.ansible.yml) runs against the emulated AWS
// with Debian's community.aws elb_target / elb_instance and boto3: each host
// leaves the target group and the classic ELB, is upgraded only once both
// drained (the modules' waits, botocore's instance_deregistered waiter
// among them, read the emulator's states as AWS's), and comes back
// healthy in both before the next host starts. The collections come from
// `scripts/deps.sh ansible` (Debian's ansible and python3-boto3).
func TestLabAnsibleELBModules(t *testing.T) {
	ap, err := exec.LookPath("ansible-playbook")
	if err != nil {
		t.Skip("ansible-playbook is not installed: run `scripts/deps.sh ansible`")
	}
	if exec.Command("ansible-doc", "-t", "module", "community.aws.elb_target").Run() != nil ||
		exec.Command("python3", "-c", "import boto3").Run() != nil {
		t.Skip("community.aws or boto3 is missing: run `scripts/deps.sh ansible` (Debian's ansible and python3-boto3)")
	}
	const n = 2
	d := startAWSDeployLab(t, n)
	hosts := []string{"app1", "app2"}

	// The lab's static inventory (through the bastion) with each host's
	// instance ID, as the aws_ec2 inventory gives it.
	dir := t.TempDir()
	inv, err := os.ReadFile(d.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.yml"), inv, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "host_vars"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if err := os.WriteFile(filepath.Join(dir, "host_vars", h+".yml"), []byte("instance_id: "+d.aws.Instances[h]+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The emulator's AWS_* only, without the empty ones: amazon.aws would
	// take them for a profile and a token.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	for _, kv := range d.aws.Env() {
		if !strings.HasSuffix(kv, "=") {
			env = append(env, kv)
		}
	}
	env = append(env, "AWS_URL="+d.aws.Endpoint, // Debian's botocore reads no AWS_ENDPOINT_URL
		"ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_PIPELINING=True", "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3", "ANSIBLE_LOCAL_TEMP="+t.TempDir(),
		"ANSIBLE_SSH_CONTROL_PATH_DIR="+t.TempDir(),
		"ANSIBLE_SSH_ARGS=-o ControlMaster=auto -o ControlPersist=5s")
	d.aws.Server.ResetRequests()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ap, "-i", filepath.Join(dir, "inventory.yml"),
		filepath.Join(repoRoot(), "testdata", "bench", "zero-downtime.ansible.yml"),
		"-e", "dist="+d.dist, "-e", "extra_version=v2", "-e", "batch=1")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	t.Logf("ansible-playbook:\n%s", out)
	var b strings.Builder
	d.aws.WriteCalls(&b)
	t.Logf("AWS calls:\n%s", b.String())
	if err != nil {
		t.Fatalf("ansible-playbook: %v", err)
	}

	calls := d.aws.Calls()
	changes := d.aws.Server.Changes()
	// when returns the time of host's first change to state `to` in the
	// load balancer of kind at or after from.
	when := func(host, kind, to string, from time.Time) (time.Time, bool) {
		for _, c := range changes {
			if c.Kind == kind && c.To == to && d.aws.HostOf(c.Instance) == host && !c.Time.Before(from) {
				return c.Time, true
			}
		}
		return time.Time{}, false
	}
	var prevBack time.Time
	for _, h := range hosts {
		sent := map[string]time.Time{}
		for _, a := range append(append([]string{}, deregistrations...), registrations...) {
			sent[a] = oneCall(t, calls, a, h).Time
		}
		firstOut := minTime(sent["DeregisterTargets"], sent["DeregisterInstancesFromLoadBalancer"])
		firstIn := minTime(sent["RegisterTargets"], sent["RegisterInstancesWithLoadBalancer"])
		// Both drained (not merely deregistered) before the host came back.
		for _, kind := range []string{"target-group", "elb"} {
			drained, ok := when(h, kind, "unused", firstOut)
			if !ok || drained.After(firstIn) {
				t.Errorf("%s: %s drained at %s, registered again at %s: the wait did not cover draining",
					h, kind, clock(drained), clock(firstIn))
			}
		}
		// serial 1: this host left only once the one before was healthy in both.
		if firstOut.Before(prevBack) {
			t.Errorf("%s: deregistered at %s, before the previous host was healthy again (%s)", h, clock(firstOut), clock(prevBack))
		}
		var back time.Time
		for _, kind := range []string{"target-group", "elb"} {
			at, ok := when(h, kind, "healthy", firstIn)
			if !ok {
				t.Fatalf("%s: never healthy again in the %s", h, kind)
			}
			back = maxTime(back, at)
		}
		prevBack = back
		if v, _ := d.status(t, h); v != "v2" {
			t.Errorf("%s: runs %q, want v2", h, v)
		}
	}
	d.waitAllHealthy(t, n)
	if got := callsOf(calls, "RegisterTargets", ""); len(got) != n {
		t.Errorf("%d RegisterTargets calls, want %d", len(got), n)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format("15:04:05.000")
}

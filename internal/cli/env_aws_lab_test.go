package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/internal/testrig/lab"
	"github.com/ferrydeploy/ferry/internal/testrig/lab/awslab"
)

// TestEnvironmentsEC2: a personal branch finds its hosts in the emulated
// AWS account by tag (Env=dev-ben, from {{ env }} in the aws_ec2 filters),
// deploys only them through their load balancers, and status shows their
// load balancer state.
func TestEnvironmentsEC2(t *testing.T) {
	t.Parallel()
	l := lab.StartT(t, lab.Options{Hosts: 4})
	isolate(t)
	a := awslab.StartT(t, l, awslab.Options{Env: map[string]string{"app1": "dev-ben", "app2": "dev-ben", "app3": "dev-ann"}})
	d := &deployLab{Lab: l, dist: buildDist(t, "v1", "v2"), records: t.TempDir()}
	d.env = append([]string{"FERRY_KNOWN_HOSTS=" + l.KnownHosts, "FERRY_RECORD_DIR=" + d.records}, a.Env()...)
	// v1 everywhere, through the static inventory (the aws_ec2 one of each env finds only its own).
	if r := d.ferry(t, "run", example("setup.yml"), "-e", "version=v1"); r.code != 0 {
		t.Fatalf("setup: exit %d", r.code)
	}
	dir := t.TempDir()
	inv := filepath.Join(dir, "personal.aws_ec2.yml")
	os.WriteFile(inv, []byte(`plugin: aws_ec2
regions: [`+a.Region+`]
filters:
  tag:Service: app
  tag:Env: "{{ env }}"
hostnames: [tag:Name, private-ip-address]
groups:
  app: "tags.Service == 'app'"
compose:
  ansible_user: "'`+l.User+`'"
  ansible_ssh_private_key_file: `+strconv.Quote("'"+l.KeyFile+"'")+`
bastion:
  filters: {tag:Role: bastion}
  user: `+l.User+`
`), 0o600)
	cfg := filepath.Join(dir, "ferry.yml")
	os.WriteFile(cfg, []byte(`personal:
  branch_pattern: '^(?:remote-run|dev)/(?P<user>[a-z0-9-]+)/'
  env: 'dev-{{ user }}'
  inventory: personal.aws_ec2.yml
`), 0o600)
	env := append(d.env, "FERRY_CONFIG="+cfg)

	r := ferry(t, env, "inventory", "--env", "dev-ben", "--graph")
	if r.code != 0 || !strings.Contains(r.stdout, "app1") || !strings.Contains(r.stdout, "app2") || strings.Contains(r.stdout, "app3") {
		t.Fatalf("inventory of dev-ben: exit %d\n%s", r.code, r.stdout)
	}
	a.Server.ResetRequests()
	r = ferry(t, env, "run", example("deploy.yml"), "--branch", "remote-run/ben/x", "-e", "version=v2", "-e", "dist="+d.dist, "-o", "plain")
	if r.code != 0 {
		t.Fatalf("personal deploy on EC2: exit %d", r.code)
	}
	for h, want := range map[string]string{"app1": "v2", "app2": "v2", "app3": "v1", "app4": "v1"} {
		if v, _ := d.status(t, h); v != want {
			t.Errorf("%s runs %s, want %s", h, v, want)
		}
	}
	// Only Ben's instances left and rejoined their load balancers.
	for _, c := range a.Calls() {
		if c.Host != "" && c.Host != "app1" && c.Host != "app2" {
			t.Errorf("AWS call %s on %s, outside dev-ben", c.Action, c.Host)
		}
	}
	if n := len(callsOf(a.Calls(), "DeregisterTargets", "")); n != 2 {
		t.Errorf("%d DeregisterTargets calls, want 2 (app1, app2)", n)
	}

	// status: releases and load balancer state of Ben's hosts.
	deadline := time.Now().Add(30 * time.Second)
	var st envStatus
	for {
		r = ferry(t, env, "status", "--env", "dev-ben", "-o", "json")
		st = envStatus{}
		if err := jsonUnmarshal(r.stdout, &st); err != nil {
			t.Fatalf("status json: %v", err)
		}
		healthy := len(st.Hosts) == 2
		for _, h := range st.Hosts {
			healthy = healthy && !h.OutOfLB && len(h.LB) == 2
		}
		if healthy || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(st.Hosts) != 2 || st.Versions["demo"] != "v2" {
		t.Fatalf("status: %+v", st)
	}
	for _, h := range st.Hosts {
		if h.OutOfLB || len(h.LB) != 2 || h.Releases["demo"].Env != "dev-ben" {
			t.Errorf("%s: out=%v lb=%+v release=%+v", h.Host, h.OutOfLB, h.LB, h.Releases["demo"])
		}
	}
	r = ferry(t, env, "status", "--env", "dev-ben")
	if !strings.Contains(r.stdout, awslab.TargetGroup+" healthy") || !strings.Contains(r.stdout, awslab.LoadBalancer+" InService") {
		t.Errorf("status table lacks load balancer state:\n%s", r.stdout)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

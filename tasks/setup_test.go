package tasks

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"runtime"
	"testing"
)

// The facts script's output, as an Ubuntu EC2 instance prints it, parses
// into the values Ansible's setup gives on such a host.
func TestParseFacts(t *testing.T) {
	out, err := os.ReadFile("testdata/facts-ubuntu.txt")
	if err != nil {
		t.Fatal(err)
	}
	f := ParseFacts(string(out), nil)
	want := map[string]any{
		"distribution": "Ubuntu", "distribution_version": "22.04", "distribution_major_version": "22",
		"distribution_release": "jammy", "os_family": "Debian", "hostname": "ip-10-0-1-17", "nodename": "ip-10-0-1-17",
		"fqdn": "ip-10-0-1-17.eu-west-1.compute.internal", "domain": "eu-west-1.compute.internal",
		"architecture": "x86_64", "kernel": "5.15.0-1051-aws", "system": "Linux",
		"processor_vcpus": 2, "processor_count": 1, "processor_cores": 1, "processor_threads_per_core": 2,
		"memtotal_mb": 3871, "service_mgr": "systemd", "user_id": "ubuntu", "user_dir": "/home/ubuntu",
		"user_uid": 1000, "pkg_mgr": "apt", "uptime_seconds": 35187,
		"all_ipv4_addresses": []any{"10.0.1.17", "172.17.0.1"},
		"interfaces":         []any{"docker0", "ens5", "lo"},
		"default_ipv4": map[string]any{"address": "10.0.1.17", "alias": "ens5", "broadcast": "10.0.1.255", "gateway": "10.0.1.1",
			"interface": "ens5", "macaddress": "0a:ff:2c:1b:3c:5d", "mtu": 9001, "netmask": "255.255.255.0",
			"network": "10.0.1.0", "prefix": "24", "type": "ether"},
		"default_ipv6": map[string]any{},
	}
	for k, w := range want {
		if !reflect.DeepEqual(f[k], w) {
			t.Errorf("%s = %#v, want %#v", k, f[k], w)
		}
	}
	dt := f["date_time"].(map[string]any)
	for k, w := range map[string]string{"date": "2024-03-05", "time": "14:07:09", "tz": "CET", "tz_dst": "CEST", "tz_offset": "+0100",
		"iso8601": "2024-03-05T13:07:09Z", "iso8601_micro": "2024-03-05T13:07:09.123456Z", "epoch": "1709647629", "weekday": "Tuesday"} {
		if dt[k] != w {
			t.Errorf("date_time.%s = %v, want %s", k, dt[k], w)
		}
	}
	env := f["env"].(map[string]any)
	if env["MULTI"] != "line one\nline two" || env["USER"] != "ubuntu" {
		t.Errorf("env %#v", env)
	}
	lo := f["lo"].(map[string]any)
	if lo["type"] != "loopback" || lo["ipv4"].(map[string]any)["address"] != "127.0.0.1" {
		t.Errorf("lo %#v", lo)
	}

	min := ParseFacts(string(out), []string{"!all"})
	if _, ok := min["default_ipv4"]; ok {
		t.Error("gather_subset !all gathered the network")
	}
	if _, ok := min["distribution"]; !ok {
		t.Error("gather_subset !all left out the distribution")
	}
	net := ParseFacts(string(out), []string{"!all", "network"})
	if _, ok := net["default_ipv4"]; !ok || net["memtotal_mb"] != nil {
		t.Errorf("gather_subset [!all, network]: %v %v", net["default_ipv4"], net["memtotal_mb"])
	}
	if got := FilterFacts(f, []string{"ansible_distribution*"}); len(got) != 6 {
		b, _ := json.Marshal(got)
		t.Errorf("filter ansible_distribution*: %s", b)
	}
}

// The script runs as it is on this machine's shell and finds what the
// machine is.
func TestGatherFactsLocal(t *testing.T) {
	f, err := GatherFacts(context.Background(), newLocalConn(t), RunOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f["system"] != "Linux" || f["distribution"] == "NA" || f["memtotal_mb"].(int) <= 0 || f["processor_vcpus"].(int) < 1 {
		t.Errorf("facts %v %v %v %v", f["system"], f["distribution"], f["memtotal_mb"], f["processor_vcpus"])
	}
	if runtime.GOARCH == "amd64" && f["architecture"] != "x86_64" {
		t.Errorf("architecture %v", f["architecture"])
	}
	if f["env"].(map[string]any)["HOME"] == nil {
		t.Error("env has no HOME")
	}
}

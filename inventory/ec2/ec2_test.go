package ec2

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/testrig/awsemu"
	"github.com/ferrydeploy/ferry/inventory"
)

const (
	base  = "111111111111"
	other = "222222222222"
	role  = "arn:aws:iam::222222222222:role/inventory"
)

// emulator starts an emulator and points the SDK at it through the
// environment, as a user would (see awsemu.StartTest).
func emulator(t awsemu.TB, opts awsemu.Options) *awsemu.Server {
	s := awsemu.StartTest(t, opts)
	old := configHook
	configHook = func(c *awsapi.Config) { c.MaxBackoff = 20 * time.Millisecond }
	t.Cleanup(func() { configHook = old })
	return s
}

func build(t *testing.T, src string, vars map[string]any) (*Result, error) {
	t.Helper()
	return Build(context.Background(), "inv.aws_ec2.yml", []byte(src), vars, nil)
}

func byName(res *Result) map[string]*Host {
	m := map[string]*Host{}
	for _, h := range res.Hosts {
		m[h.Name] = h
	}
	return m
}

func TestInventoryAcrossAccountsAndRegions(t *testing.T) {
	s := emulator(t, awsemu.Options{MaxPageSize: 100})
	// 2,500 instances: 2 accounts × 2 regions, some stopped, some staging.
	type cell struct {
		acct, region string
		n            int
	}
	cells := []cell{{base, "eu-west-1", 700}, {base, "us-east-1", 600}, {other, "eu-west-1", 650}, {other, "us-east-1", 550}}
	want := 0
	for _, c := range cells {
		s.AddInstances(c.acct, c.region, c.n, func(i int, in *awsemu.Instance) {
			if c.acct == other {
				in.Tags["Name"] += "-b"
			}
			if i%50 == 7 {
				in.State = "stopped"
			}
			if i%25 == 3 {
				in.Tags["Env"] = "staging"
			}
			if i%100 == 0 {
				in.Tags["aws:autoscaling:groupName"] = "asg-" + c.region
				in.PublicIP = fmt.Sprintf("203.0.113.%d", i/100)
			}
		})
		for i := 0; i < c.n; i++ {
			if i%50 != 7 && i%25 != 3 {
				want++
			}
		}
	}
	src := `plugin: amazon.aws.aws_ec2
regions: [eu-west-1, us-east-1]
assume_roles:
  - ` + role + `
include_base_account: true
filters:
  tag:Env: "{{ env }}"
hostnames:
  - tag:Name
  - private-ip-address
keyed_groups:
  - key: tags.Role
    prefix: role
  - key: placement.availability_zone
  - key: account_id
    prefix: account
groups:
  big: instance_type == "m5.large"
compose:
  deploy_color: 'tags.Role == "api" ? "blue" : "green"'
`
	res, err := build(t, src, map[string]any{"env": "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hosts) != want {
		t.Fatalf("%d hosts, want %d", len(res.Hosts), want)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings: %v", res.Warnings)
	}
	groups := map[string]int{}
	accounts := map[string]int{}
	for _, h := range res.Hosts {
		for _, g := range h.Groups {
			groups[g]++
		}
		accounts[h.Vars["account_id"].(string)]++
		if h.Vars["tags"].(map[string]any)["Env"] != "prod" {
			t.Fatalf("%s: filter leaked %v", h.Name, h.Vars["tags"])
		}
	}
	if groups["aws_ec2"] != want || groups["role_api"]+groups["role_web"]+groups["role_worker"] != want || groups["role_api"] == 0 {
		t.Errorf("role groups: %v", groups)
	}
	if groups["_eu_west_1a"] == 0 || groups["_us_east_1c"] == 0 {
		t.Errorf("zone groups (Ansible's leading separator, sanitized): %v", groups)
	}
	if accounts[base] == 0 || accounts[other] == 0 || groups["account_"+other] != accounts[other] {
		t.Errorf("accounts: %v, groups %v", accounts, groups)
	}
	if groups["big"] == 0 || groups["big"] == want {
		t.Errorf("groups condition: %d", groups["big"])
	}

	h := byName(res)["api-eu-west-1-0"]
	if h == nil {
		t.Fatal("host api-eu-west-1-0 missing")
	}
	wantVars := map[string]any{"region": "eu-west-1", "availability_zone": "eu-west-1a", "instance_type": "t3.micro",
		"public_ip": "203.0.113.0", "autoscaling_group": "asg-eu-west-1", "deploy_color": "blue", "image_id": "ami-0123456789abcdef0"}
	for k, v := range wantVars {
		if h.Vars[k] != v {
			t.Errorf("%s = %v, want %v", k, h.Vars[k], v)
		}
	}
	for _, k := range []string{"instance_id", "account_id", "private_ip", "private_dns", "launch_time", "ansible_host"} {
		if s, _ := h.Vars[k].(string); s == "" {
			t.Errorf("%s unset", k)
		}
	}
	// No bastion: a host with a public IP is reached on it.
	if h.Vars["ansible_host"] != "203.0.113.0" {
		t.Errorf("ansible_host %v", h.Vars["ansible_host"])
	}

	// Pagination happened, per account and region, with the role's credentials.
	pages := map[string]int{}
	for _, r := range s.Requests() {
		if r.Action == "DescribeInstances" {
			pages[r.Account+"/"+r.Region]++
		}
	}
	if len(pages) != 4 || pages[other+"/us-east-1"] < 5 {
		t.Errorf("DescribeInstances calls per account/region: %v", pages)
	}
}

func TestDefaultsRunningOnlyAndStateFilter(t *testing.T) {
	s := emulator(t, awsemu.Options{})
	s.AddInstances(base, "us-east-1", 10, func(i int, in *awsemu.Instance) {
		if i < 4 {
			in.State = "stopped"
		}
	})
	res, err := build(t, "plugin: aws_ec2\nregions: [us-east-1]\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hosts) != 6 {
		t.Errorf("default: %d hosts, want the 6 running", len(res.Hosts))
	}
	if !strings.HasPrefix(res.Hosts[0].Name, "ip-10-") {
		t.Errorf("default hostname: %s", res.Hosts[0].Name)
	}
	res, err = build(t, "plugin: aws_ec2\nregions: [us-east-1]\nfilters:\n  instance-state-name: [running, stopped]\n", nil)
	if err != nil || len(res.Hosts) != 10 {
		t.Errorf("explicit states: %v %v", res, err)
	}
	res, err = build(t, `plugin: aws_ec2
regions: [us-east-1]
filters: {tag:Role: api}
include_filters:
  - tag:Role: web
exclude_filters:
  - tag:Name: web-us-east-1-7
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, h := range res.Hosts {
		names = append(names, h.Vars["tags"].(map[string]any)["Name"].(string))
	}
	if strings.Join(names, ",") != "api-us-east-1-6,api-us-east-1-9,web-us-east-1-4" {
		t.Errorf("include/exclude: %v", names)
	}
}

func TestMissingHostnameWarnsAndDuplicates(t *testing.T) {
	s := emulator(t, awsemu.Options{})
	ids := s.AddInstances(base, "us-east-1", 3, func(i int, in *awsemu.Instance) {
		if i == 1 {
			delete(in.Tags, "Name")
		}
		if i == 2 {
			in.Tags["Name"] = "api-us-east-1-0"
		}
	})
	res, err := build(t, "plugin: aws_ec2\nregions: [us-east-1]\nhostnames: [tag:Name]\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hosts) != 2 || len(res.Warnings) != 2 {
		t.Fatalf("hosts %d warnings %v", len(res.Hosts), res.Warnings)
	}
	if !strings.Contains(res.Warnings[0], ids[1]) || !strings.Contains(res.Warnings[0], "tag:Name") {
		t.Errorf("warning: %s", res.Warnings[0])
	}
	if res.Hosts[1].Name != ids[2] {
		t.Errorf("duplicate renamed to %s, want %s", res.Hosts[1].Name, ids[2])
	}
}

func TestBastionByFilters(t *testing.T) {
	s := emulator(t, awsemu.Options{})
	s.AddInstance(base, "us-east-1", awsemu.Instance{PublicIP: "198.51.100.9", Tags: map[string]string{"Name": "bastion", "Role": "bastion"}})
	s.AddInstances(base, "us-east-1", 3, func(i int, in *awsemu.Instance) { in.PublicIP = fmt.Sprintf("203.0.113.%d", i) })
	res, err := build(t, `plugin: aws_ec2
regions: [us-east-1]
hostnames: [tag:Name]
bastion:
  filters: {tag:Role: bastion}
  user: ec2-user
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	hosts := byName(res)
	if hosts["api-us-east-1-0"].Vars["bastion"] != "ec2-user@198.51.100.9" {
		t.Errorf("bastion var: %v", hosts["api-us-east-1-0"].Vars["bastion"])
	}
	if hosts["api-us-east-1-0"].Vars["ansible_host"] != hosts["api-us-east-1-0"].Vars["private_ip"] {
		t.Errorf("behind a bastion the private address is used: %v", hosts["api-us-east-1-0"].Vars)
	}
	if _, ok := hosts["bastion"].Vars["bastion"]; ok {
		t.Error("the bastion jumps through itself")
	}
	_, err = build(t, "plugin: aws_ec2\nregions: [us-east-1]\nbastion: {filters: {tag:Role: nothing}}\n", nil)
	if err == nil || !strings.Contains(err.Error(), "bastion") {
		t.Errorf("no bastion found: %v", err)
	}
}

func TestThrottlingAndAccessDenied(t *testing.T) {
	s := emulator(t, awsemu.Options{})
	s.AddInstances(base, "us-east-1", 5, nil)
	s.AddInstances(other, "eu-west-1", 5, nil)
	s.Throttle("DescribeInstances", 2)
	src := "plugin: aws_ec2\nregions: [us-east-1, eu-west-1]\nassume_roles: [" + role + "]\ninclude_base_account: true\n"
	res, err := build(t, src, nil)
	if err != nil || len(res.Hosts) != 10 {
		t.Fatalf("after throttling: %v %v", res, err)
	}
	throttled := 0
	for _, r := range s.Requests() {
		if r.Action == "DescribeInstances" {
			throttled++
		}
	}
	if throttled != 4+2 {
		t.Errorf("%d DescribeInstances calls, want 6 (2 retried)", throttled)
	}

	s.Deny("DescribeInstances", "eu-west-1", other)
	_, err = build(t, src, nil)
	var denied *awsapi.DeniedError
	if !errors.As(err, &denied) {
		t.Fatalf("want a DeniedError, got %v", err)
	}
	msg := err.Error()
	for _, w := range []string{"ec2:DescribeInstances", "eu-west-1", other, role} {
		if !strings.Contains(msg, w) {
			t.Errorf("%q lacks %q", msg, w)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("not one line: %q", msg)
	}

	s.AllowAll()
	s.Deny("AssumeRole", "", "")
	_, err = build(t, src, nil)
	if !errors.As(err, &denied) || denied.Action != "sts:AssumeRole" || strings.Contains(err.Error(), "\n") {
		t.Errorf("assume role denied: %v", err)
	}
}

func TestOptionErrors(t *testing.T) {
	emulator(t, awsemu.Options{}) // no real AWS (nor IMDS) whatever happens
	cases := []struct{ src, want, hint string }{
		{"plugin: aws_ec2\nregion: [us-east-1]\n", "inv.aws_ec2.yml:2:1: unknown aws_ec2 option \"region\"", `did you mean "regions"?`},
		{"plugin: aws_ec2\nkeyed_groups:\n  - key: tags.Role\n    prefx: role\n", ":4:5: unknown keyed_groups key \"prefx\"", `did you mean "prefix"?`},
		{"plugin: aws_ec2\nhostnames: [private-ip]\n", ":2:13: unknown hostname preference", `did you mean "private-ip-address"?`},
		{"plugin: aws_ec2\nfilters:\n  instance-state: running\n", ":3:3: unknown EC2 filter", `did you mean "instance-state-name"?`},
		{"plugin: aws_ec2\ncompose:\n  x: 'tags.Role =='\n", ":3:6: invalid expression", ""},
		{"plugin: aws_ec2\nassume_roles: [arn:aws:iam::12:role/x]\n", "not an IAM role ARN", ""},
		{"plugin: aws_ec2\nregions: ['{{ nope }}']\n", "cannot render", ""},
		{"- a\n", "must be a YAML mapping", ""},
	}
	for _, c := range cases {
		_, err := build(t, c.src, map[string]any{"env": "x"})
		if err == nil || !diag.IsInvalidInput(err) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.hint) {
			t.Errorf("%q:\n got %v\nwant %q and %q", c.src, err, c.want, c.hint)
		}
	}
	cfg, err := parseConfig("f", []byte("plugin: aws_ec2\ncache: true\nstrict_permissions: false\n"), nil)
	if err != nil || len(cfg.Warnings) != 2 {
		t.Errorf("ignored Ansible options: %v %v", cfg, err)
	}
}

func TestKeyedNames(t *testing.T) {
	def := "none"
	cases := []struct {
		kg   keyedGroup
		v    any
		want string
	}{
		{keyedGroup{Prefix: "role", Separator: "_", LeadingSeparator: true}, "api-v2", "role_api_v2"},
		{keyedGroup{Separator: "_", LeadingSeparator: true}, "us-east-1a", "_us_east_1a"},
		{keyedGroup{Separator: "_", LeadingSeparator: false}, "us-east-1a", "us_east_1a"},
		{keyedGroup{Prefix: "tag", Separator: "_", LeadingSeparator: true, TrailingSeparator: true}, map[string]any{"Env": "prod", "Role": ""}, "tag_Env_prod tag_Role_"},
		{keyedGroup{Prefix: "tag", Separator: "_", LeadingSeparator: true, TrailingSeparator: false}, map[string]any{"Role": ""}, "tag_Role"},
		{keyedGroup{Prefix: "sg", Separator: "-", LeadingSeparator: true}, []any{"a", "b"}, "sg_a sg_b"},
		{keyedGroup{Prefix: "x", Separator: "_", DefaultValue: &def}, "", "x_none"},
	}
	for _, c := range cases {
		if got := strings.Join(keyedNames(c.kg, c.v), " "); got != c.want {
			t.Errorf("%+v %v: %q, want %q", c.kg, c.v, got, c.want)
		}
	}
}

// The plugin is reachable through inventory.Load by its file's plugin key.
func TestThroughInventoryLoad(t *testing.T) {
	s := emulator(t, awsemu.Options{})
	s.AddInstances(base, "us-east-1", 4, nil)
	dir := t.TempDir()
	file := filepath.Join(dir, "prod.aws_ec2.yml")
	src := "plugin: aws_ec2\nregions: [us-east-1]\nhostnames: [tag:Name]\nkeyed_groups:\n  - {key: tags.Role, prefix: role}\n"
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(context.Background(), []string{file}, inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Hosts) != 4 || inv.Groups["role_api"] == nil || len(inv.Groups["role_api"].Hosts) != 2 {
		t.Fatalf("hosts %d groups %v", len(inv.Hosts), inv.GroupNames())
	}
	h, ok := inv.Host("web-us-east-1-1")
	if !ok || h.Address() == "web-us-east-1-1" || h.Vars["instance_id"] == nil {
		t.Errorf("host: %+v", h)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("plugin: aws_ec2\nregions: [us-east-1]\nfilters: {tag:Role: api}\n"))
	f.Add([]byte("plugin: aws_ec2\nkeyed_groups:\n  - key: tags.Role\n    prefix: role\nhostnames:\n  - name: tag:Name\n    prefix: instance-id\n"))
	f.Add([]byte("plugin: aws_ec2\nbastion: {filters: {tag:Role: bastion}, port: 2222}\ncompose: {a: '1 +'}\n"))
	f.Add([]byte("plugin: aws_ec2\nregions: '{{ env }}'\ngroups: {x: true}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := parseConfig("f.yml", src, map[string]any{"env": "eu-west-1"})
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && !diag.IsInvalidInput(err) {
			t.Fatalf("error is not invalid input: %v", err)
		}
	})
}

// BenchmarkInventory10k builds an inventory of 10,000 instances in 4
// regions through the SDK and the emulator.
func BenchmarkInventory10k(b *testing.B) {
	s := emulator(b, awsemu.Options{})
	regions := []string{"us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"}
	for _, r := range regions {
		s.AddInstances(base, r, 2500, nil)
	}
	src := []byte(`plugin: aws_ec2
regions: [us-east-1, us-west-2, eu-west-1, ap-southeast-2]
hostnames: [tag:Name, private-ip-address]
keyed_groups:
  - {key: tags.Role, prefix: role}
  - {key: placement.availability_zone, prefix: az}
compose:
  color: 'tags.Role == "api" ? "blue" : "green"'
`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Build(context.Background(), "bench.aws_ec2.yml", src, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Hosts) != 10000 {
			b.Fatalf("%d hosts", len(res.Hosts))
		}
	}
}

// Package ec2 is ferry's dynamic EC2 inventory: the `aws_ec2` plugin
// (also `amazon.aws.aws_ec2`), compatible with the options of Ansible's
// aws_ec2 inventory plugin. It queries every region and account (base
// credentials and assumed roles) concurrently, keeps only running
// instances unless the filters say otherwise, and builds hosts, groups and
// host variables from them.
//
// Accounts: with no assume_roles the base credentials' account is queried;
// with assume_roles only the roles' accounts are (the base credentials
// usually live in a tooling account), unless include_base_account: true.
package ec2

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/expr-lang/expr"
	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/internal/parallel"
	"github.com/ferrydeploy/ferry/internal/value"
	"github.com/ferrydeploy/ferry/inventory"
)

func init() {
	inventory.RegisterPlugin(Plugin, "aws_ec2", "amazon.aws.aws_ec2")
}

// configHook lets tests shorten retry backoffs.
var configHook func(*awsapi.Config)

// concurrency bounds the DescribeInstances calls in flight.
const concurrency = 8

// Plugin builds the inventory described by the aws_ec2 file at path.
func Plugin(ctx context.Context, path string, src []byte, opts inventory.Options) (*inventory.Inventory, error) {
	res, err := Build(ctx, path, src, opts.Vars, opts.Env)
	if err != nil {
		return nil, err
	}
	inv := inventory.New()
	for _, h := range res.Hosts {
		inv.AddHost(&inventory.Host{Name: h.Name, Vars: h.Vars}, h.Groups...)
	}
	parents := make([]string, 0, len(res.Children))
	for p := range res.Children {
		parents = append(parents, p)
	}
	sort.Strings(parents)
	for _, p := range parents {
		for _, c := range res.Children[p] {
			if err := inv.AddChild(p, c); err != nil {
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s: parent_group %s: %v", path, p, err))
			}
		}
	}
	inv.Sources = []string{path}
	inv.Warnings = append(inv.Warnings, res.Warnings...)
	return inv, nil
}

// Host is one instance as an inventory host.
type Host struct {
	Name   string
	Groups []string
	Vars   map[string]any
}

// Result is what Build found.
type Result struct {
	Hosts    []*Host
	Children map[string][]string // parent group → child groups (keyed_groups parent_group)
	Warnings []string
}

// account is one set of credentials to query with.
type account struct {
	role string // "" = base credentials
}

// found is one instance with where it was found.
type found struct {
	inst    ec2types.Instance
	owner   string
	region  string
	account account
}

// Build queries EC2 as the file says and returns the hosts.
// env is the command's environment (nil: the process's).
func Build(ctx context.Context, path string, src []byte, vars map[string]any, env awsapi.LookupEnv) (*Result, error) {
	cfg, err := parseConfig(path, src, vars)
	if err != nil {
		return nil, err
	}
	res := &Result{Children: map[string][]string{}, Warnings: cfg.Warnings}

	if env == nil {
		env = os.LookupEnv
	}
	acfg := awsapi.Config{Profile: cfg.Profile, AssumeRoles: cfg.AssumeRoles, EndpointURL: cfg.EndpointURL, Env: env}
	if k := endpointFromEnv(env); k != "" && cfg.EndpointURL != "" {
		// The operator's setting wins; the SDK reads it itself.
		acfg.EndpointURL = ""
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s: endpoint_url is ignored: %s is set", path, k))
	}
	if len(cfg.Regions) > 0 {
		acfg.Region = cfg.Regions[0]
	}
	if configHook != nil {
		configHook(&acfg)
	}
	f, err := awsapi.NewFactory(ctx, acfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}

	var accounts []account
	if len(cfg.AssumeRoles) == 0 || (cfg.IncludeBaseAccount != nil && *cfg.IncludeBaseAccount) {
		accounts = append(accounts, account{})
	}
	for _, r := range cfg.AssumeRoles {
		accounts = append(accounts, account{role: r})
	}
	regions := cfg.Regions
	if len(regions) == 0 {
		regions, err = allRegions(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}

	queries := []filterSet{cfg.Filters}
	queries = append(queries, cfg.IncludeFilters...)
	for i, q := range queries {
		if !q.has("instance-state-name") && !q.has("instance-state-code") {
			queries[i] = append(append(filterSet(nil), q...), filter{Name: "instance-state-name", Values: []string{"running"}})
		}
	}

	// One job per account × region × query; results land in job order so
	// the inventory order is stable whatever finishes first.
	type job struct {
		acct    account
		region  string
		filters filterSet
		exclude bool
	}
	var jobs []job
	for _, a := range accounts {
		for _, r := range regions {
			for _, q := range queries {
				jobs = append(jobs, job{a, r, q, false})
			}
			for _, q := range cfg.ExcludeFilters {
				jobs = append(jobs, job{a, r, q, true})
			}
		}
	}
	results := make([][]found, len(jobs))
	errs := make([]error, len(jobs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parallel.Each(ctx, len(jobs), concurrency, func(i int) {
		j := jobs[i]
		results[i], errs[i] = describe(ctx, f, j.acct, j.region, j.filters)
		if errs[i] != nil {
			cancel() // one failure fails the inventory: stop the rest early
		}
	})
	// Report the error that caused the cancellation, not the ones it caused.
	var firstErr error
	for _, e := range errs {
		if e != nil && (firstErr == nil || isCanceled(firstErr) && !isCanceled(e)) {
			firstErr = e
		}
	}
	if firstErr != nil {
		return nil, fmt.Errorf("%s: %w", path, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	excluded := map[string]bool{}
	for i, j := range jobs {
		if j.exclude {
			for _, fi := range results[i] {
				excluded[aws.ToString(fi.inst.InstanceId)] = true
			}
		}
	}
	var all []found
	seen := map[string]bool{}
	for i, j := range jobs {
		if j.exclude {
			continue
		}
		for _, fi := range results[i] {
			id := aws.ToString(fi.inst.InstanceId)
			if seen[id] || excluded[id] {
				continue
			}
			seen[id] = true
			all = append(all, fi)
		}
	}

	var bastion string
	var bastionID string
	if cfg.Bastion != nil {
		bastion, bastionID, err = findBastion(ctx, f, cfg.Bastion, accounts, regions, res)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}

	if err := buildHosts(cfg, all, bastion, bastionID, res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || err != nil && strings.Contains(err.Error(), "context canceled")
}

func allRegions(ctx context.Context, f *awsapi.Factory) ([]string, error) {
	c := f.ForRole("", "")
	out, err := c.EC2.DescribeRegions(ctx, &awsec2.DescribeRegionsInput{})
	if err != nil {
		return nil, fmt.Errorf("list regions (set `regions:` to skip this): %w", awsapi.Explain(err, c.Region, "", ""))
	}
	var regs []string
	for _, r := range out.Regions {
		regs = append(regs, aws.ToString(r.RegionName))
	}
	sort.Strings(regs)
	return regs, nil
}

// describe runs one paginated DescribeInstances.
func describe(ctx context.Context, f *awsapi.Factory, a account, region string, fs filterSet) ([]found, error) {
	c := f.ForRole(region, a.role)
	in := &awsec2.DescribeInstancesInput{MaxResults: aws.Int32(1000)}
	for _, flt := range fs {
		in.Filters = append(in.Filters, ec2types.Filter{Name: aws.String(flt.Name), Values: flt.Values})
	}
	var out []found
	p := awsec2.NewDescribeInstancesPaginator(c.EC2, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			acct := ""
			if a.role != "" {
				acct, _ = awsapi.AccountOfRole(a.role)
			} else if id, e := f.BaseAccount(ctx); e == nil {
				acct = id
			}
			return nil, awsapi.Explain(err, region, acct, a.role)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				out = append(out, found{inst: inst, owner: aws.ToString(r.OwnerId), region: region, account: a})
			}
		}
	}
	return out, nil
}

func findBastion(ctx context.Context, f *awsapi.Factory, b *bastionOpt, accounts []account, regions []string, res *Result) (addr, id string, err error) {
	format := func(host string) string {
		s := host
		if b.Port != 0 {
			s = fmt.Sprintf("%s:%d", s, b.Port)
		}
		if b.User != "" {
			s = b.User + "@" + s
		}
		return s
	}
	if b.Address != "" {
		return format(b.Address), "", nil
	}
	fs := b.Filters
	if !fs.has("instance-state-name") {
		fs = append(append(filterSet(nil), fs...), filter{Name: "instance-state-name", Values: []string{"running"}})
	}
	var matches []found
	for _, a := range accounts {
		for _, r := range regions {
			got, err := describe(ctx, f, a, r, fs)
			if err != nil {
				return "", "", fmt.Errorf("find bastion: %w", err)
			}
			matches = append(matches, got...)
		}
	}
	var usable []found
	for _, m := range matches {
		if aws.ToString(m.inst.PublicIpAddress) != "" {
			usable = append(usable, m)
		}
	}
	if len(usable) == 0 {
		if len(matches) > 0 {
			return "", "", fmt.Errorf("bastion filters matched %s, which has no public IP address; give `bastion:` an address instead", aws.ToString(matches[0].inst.InstanceId))
		}
		return "", "", fmt.Errorf("bastion filters matched no running instance in %s; check the bastion filters", strings.Join(regions, ", "))
	}
	if len(usable) > 1 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("bastion filters matched %d instances; using %s", len(usable), aws.ToString(usable[0].inst.InstanceId)))
	}
	return format(aws.ToString(usable[0].inst.PublicIpAddress)), aws.ToString(usable[0].inst.InstanceId), nil
}

var unsafeGroupChars = regexp.MustCompile(`[^A-Za-z0-9_]`)

// sanitize makes a group name as Ansible's aws_ec2 plugin does.
func sanitize(s string) string { return unsafeGroupChars.ReplaceAllString(s, "_") }

// buildHosts turns instances into hosts: variables, compose, names, groups.
func buildHosts(cfg *config, all []found, bastion, bastionID string, res *Result) error {
	prefs := cfg.Hostnames
	if len(prefs) == 0 {
		// Ansible's default is dns-name then private-dns-name; ferry prefers
		// what a host in a VPC always has.
		prefs = []hostnamePref{{Name: "private-dns-name"}, {Name: "private-ip-address"}, {Name: "instance-id"}}
	}
	used := map[string]string{}
	res.Hosts = make([]*Host, 0, len(all))
	// A few warnings of a kind say what is wrong; thousands would bury it.
	const maxWarn = 10
	var noName, dups int
	defer func() {
		if noName > maxWarn {
			res.Warnings = append(res.Warnings, fmt.Sprintf("... and %d more instances without any of the hostnames %s", noName-maxWarn, prefNames(prefs)))
		}
		if dups > maxWarn {
			res.Warnings = append(res.Warnings, fmt.Sprintf("... and %d more instances with a duplicate hostname, named by instance ID", dups-maxWarn))
		}
	}()
	for _, fi := range all {
		vars, env := hostVars(fi)
		id := vars[awsapi.VarInstanceID].(string)

		for _, c := range cfg.Compose {
			v, err := expr.Run(c.Prog, env)
			if err != nil {
				if cfg.Strict {
					return fmt.Errorf("compose %s on %s: %v", c.Name, id, err)
				}
				continue
			}
			vars[c.Name] = v
			env[c.Name] = v
		}

		name, pref := "", ""
		for _, p := range prefs {
			if v := hostnameValue(p, fi); v != "" {
				name, pref = v, p.Name
				break
			}
		}
		if name == "" {
			if noName++; noName > maxWarn {
				continue
			}
			res.Warnings = append(res.Warnings, fmt.Sprintf("instance %s in %s (account %s) has none of the hostnames %s; it is left out of the inventory: add a fallback such as instance-id to hostnames",
				id, fi.region, fi.owner, prefNames(prefs)))
			continue
		}
		if other, dup := used[name]; dup {
			if dups++; dups <= maxWarn {
				res.Warnings = append(res.Warnings, fmt.Sprintf("instance %s has the same hostname %q as %s; it is named %s instead", id, name, other, id))
			}
			name = id
		}
		used[name] = id

		if _, ok := vars["ansible_host"]; !ok {
			vars["ansible_host"] = address(pref, name, vars, bastion != "")
		}
		if bastion != "" && id != bastionID {
			if _, ok := vars["bastion"]; !ok {
				vars["bastion"] = bastion
			}
		}
		env["inventory_hostname"] = name

		groups := []string{"aws_ec2"}
		add := func(g string) {
			if g != "" && !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		}
		for _, g := range cfg.Groups {
			v, err := expr.Run(g.Prog, env)
			if err != nil {
				if cfg.Strict {
					return fmt.Errorf("groups %s on %s: %v", g.Name, id, err)
				}
				continue
			}
			if truthy(v) {
				add(sanitize(g.Name))
			}
		}
		for _, kg := range cfg.KeyedGroups {
			v, err := expr.Run(kg.Key, env)
			if err != nil || v == nil {
				if cfg.Strict {
					if err == nil {
						err = fmt.Errorf("no value")
					}
					return fmt.Errorf("keyed_groups key %q on %s: %v", kg.KeySrc, id, err)
				}
				if kg.DefaultValue == nil {
					continue
				}
				v = ""
			}
			for _, g := range keyedNames(kg, v) {
				add(g)
				if kg.ParentGroup != "" {
					parent := sanitize(kg.ParentGroup)
					if !slices.Contains(res.Children[parent], g) {
						res.Children[parent] = append(res.Children[parent], g)
					}
				}
			}
		}
		res.Hosts = append(res.Hosts, &Host{Name: name, Groups: groups, Vars: vars})
	}
	return nil
}

func prefNames(ps []hostnamePref) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Name)
	}
	return strings.Join(s, ", ")
}

// keyedNames are the groups a keyed_groups value puts a host in, named as
// Ansible's constructed plugin names them.
func keyedNames(kg keyedGroup, v any) []string {
	var bare []string
	switch x := v.(type) {
	case string:
		if x == "" && kg.DefaultValue != nil {
			x = *kg.DefaultValue
		}
		bare = append(bare, x)
	case []any:
		for _, e := range x {
			bare = append(bare, fmt.Sprint(e))
		}
	case []string:
		bare = append(bare, x...)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			val := fmt.Sprint(x[k])
			name := k + kg.Separator + val
			if val == "" {
				switch {
				case kg.DefaultValue != nil:
					name = k + kg.Separator + *kg.DefaultValue
				case !kg.TrailingSeparator:
					name = k
				}
			}
			bare = append(bare, name)
		}
	default:
		bare = append(bare, fmt.Sprint(x))
	}
	var out []string
	for _, b := range bare {
		sep := kg.Separator
		if kg.Prefix == "" && !kg.LeadingSeparator {
			sep = ""
		}
		out = append(out, sanitize(kg.Prefix+sep+b))
	}
	return out
}

// truthy is Python's truth value (value.Truthy).
var truthy = value.Truthy

// address is where ferry connects: the hostname when it is an address,
// else the private IP behind a bastion, else the public IP if any.
func address(pref, name string, vars map[string]any, viaBastion bool) string {
	switch pref {
	case "private-ip-address", "ip-address", "private-dns-name", "dns-name":
		return name
	}
	priv, _ := vars["private_ip"].(string)
	pub, _ := vars["public_ip"].(string)
	if viaBastion || pub == "" {
		return priv
	}
	return pub
}

func hostnameValue(p hostnamePref, fi found) string {
	v := prefValue(p.Name, fi)
	if v == "" || p.Prefix == "" {
		return v
	}
	pre := prefValue(p.Prefix, fi)
	if pre == "" {
		return v
	}
	return pre + p.Separator + v
}

func prefValue(name string, fi found) string {
	in := &fi.inst
	switch name {
	case "private-ip-address":
		return aws.ToString(in.PrivateIpAddress)
	case "ip-address":
		return aws.ToString(in.PublicIpAddress)
	case "private-dns-name":
		return aws.ToString(in.PrivateDnsName)
	case "dns-name":
		return aws.ToString(in.PublicDnsName)
	case "instance-id":
		return aws.ToString(in.InstanceId)
	}
	if tag, ok := strings.CutPrefix(name, "tag:"); ok {
		for _, t := range in.Tags {
			if aws.ToString(t.Key) == tag {
				return aws.ToString(t.Value)
			}
		}
	}
	return ""
}

// hostVars returns the host's variables and the expression environment
// (the variables plus Ansible's names: placement.*, private_ip_address, ...).
func hostVars(fi found) (vars, env map[string]any) {
	in := &fi.inst
	tags := make(map[string]any, len(in.Tags))
	asg := ""
	for _, t := range in.Tags {
		k, v := aws.ToString(t.Key), aws.ToString(t.Value)
		tags[k] = v
		if k == "aws:autoscaling:groupName" {
			asg = v
		}
	}
	az := ""
	if in.Placement != nil {
		az = aws.ToString(in.Placement.AvailabilityZone)
	}
	launch := ""
	if in.LaunchTime != nil {
		launch = in.LaunchTime.UTC().Format(time.RFC3339)
	}
	state := ""
	if in.State != nil {
		state = string(in.State.Name)
	}
	vars = map[string]any{
		awsapi.VarInstanceID:       aws.ToString(in.InstanceId),
		awsapi.VarRegion:           fi.region,
		awsapi.VarAccountID:        fi.owner,
		"availability_zone":        az,
		"private_ip":               aws.ToString(in.PrivateIpAddress),
		"public_ip":                aws.ToString(in.PublicIpAddress),
		"private_dns":              aws.ToString(in.PrivateDnsName),
		"public_dns":               aws.ToString(in.PublicDnsName),
		"image_id":                 aws.ToString(in.ImageId),
		"instance_type":            string(in.InstanceType),
		"launch_time":              launch,
		"tags":                     tags,
		awsapi.VarAutoScalingGroup: asg,
		"instance_state":           state,
		"vpc_id":                   aws.ToString(in.VpcId),
		"subnet_id":                aws.ToString(in.SubnetId),
		"key_name":                 aws.ToString(in.KeyName),
	}
	if fi.account.role != "" {
		vars[awsapi.VarRoleARN] = fi.account.role
	}
	env = make(map[string]any, len(vars)+10)
	for k, v := range vars {
		env[k] = v
	}
	env["placement"] = map[string]any{"availability_zone": az, "region": fi.region}
	env["private_ip_address"] = vars["private_ip"]
	env["public_ip_address"] = vars["public_ip"]
	env["private_dns_name"] = vars["private_dns"]
	env["public_dns_name"] = vars["public_dns"]
	env["owner_id"] = fi.owner
	env["state"] = map[string]any{"name": state}
	env["architecture"] = string(in.Architecture)
	return vars, env
}

package awsemu

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Instance is one EC2 instance. Empty fields get plausible defaults when
// added (ID, reservation, AZ, DNS names, launch time, state "running").
type Instance struct {
	ID            string
	ReservationID string
	ImageID       string
	Type          string
	State         string // pending, running, stopping, stopped, shutting-down, terminated
	AZ            string
	PrivateIP     string
	PublicIP      string
	PrivateDNS    string
	PublicDNS     string
	KeyName       string
	VpcID         string
	SubnetID      string
	LaunchTime    time.Time
	Tags          map[string]string
}

var stateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

// AddInstance adds inst to account/region and returns its ID.
func (s *Server) AddInstance(account, region string, inst Instance) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addInstance(account, region, inst)
}

func (s *Server) addInstance(account, region string, inst Instance) string {
	r := s.region(account, region)
	n := len(r.instances) + 1
	if inst.ID == "" {
		inst.ID = fmt.Sprintf("i-%017x", hash(account+region)<<20|uint64(n))
	}
	if inst.ReservationID == "" {
		inst.ReservationID = "r-" + strings.TrimPrefix(inst.ID, "i-")
	}
	if inst.State == "" {
		inst.State = "running"
	}
	if inst.AZ == "" {
		inst.AZ = region + "a"
	}
	if inst.ImageID == "" {
		inst.ImageID = "ami-0123456789abcdef0"
	}
	if inst.Type == "" {
		inst.Type = "t3.micro"
	}
	if inst.PrivateIP == "" {
		inst.PrivateIP = fmt.Sprintf("10.%d.%d.%d", (n>>16)&255, (n>>8)&255, n&255)
	}
	if inst.PrivateDNS == "" {
		inst.PrivateDNS = "ip-" + strings.ReplaceAll(inst.PrivateIP, ".", "-") + "." + region + ".compute.internal"
	}
	if inst.PublicIP != "" && inst.PublicDNS == "" {
		inst.PublicDNS = "ec2-" + strings.ReplaceAll(inst.PublicIP, ".", "-") + "." + region + ".compute.amazonaws.com"
	}
	if inst.LaunchTime.IsZero() {
		inst.LaunchTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Minute)
	}
	if inst.VpcID == "" {
		inst.VpcID = "vpc-0a1b2c3d"
	}
	if inst.SubnetID == "" {
		inst.SubnetID = "subnet-0a1b2c3d"
	}
	if inst.Tags == nil {
		inst.Tags = map[string]string{}
	}
	p := &inst
	if old := r.byID[inst.ID]; old != nil {
		*old = inst
		return inst.ID
	}
	r.instances = append(r.instances, p)
	r.byID[inst.ID] = p
	return inst.ID
}

// AddInstances adds n generated instances to account/region; gen (optional)
// customises instance i (0-based) before it is added. It returns the IDs.
// Generated instances spread over three AZs and carry tags Name, Role
// (api/web/worker) and Env.
func (s *Server) AddInstances(account, region string, n int, gen func(i int, inst *Instance)) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	roles := []string{"api", "web", "worker"}
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		inst := Instance{
			AZ:   region + string(rune('a'+i%3)),
			Type: []string{"t3.micro", "m5.large"}[i%2],
			Tags: map[string]string{
				"Name": fmt.Sprintf("%s-%s-%d", roles[i%3], region, i),
				"Role": roles[i%3],
				"Env":  "prod",
			},
		}
		if gen != nil {
			gen(i, &inst)
		}
		ids = append(ids, s.addInstance(account, region, inst))
	}
	return ids
}

// SetInstanceState changes an instance's state (e.g. "stopped").
func (s *Server) SetInstanceState(account, region, id, state string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst := s.region(account, region).byID[id]
	if inst == nil {
		return fmt.Errorf("no instance %s in %s/%s", id, account, region)
	}
	inst.State = state
	return nil
}

func hash(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h & 0xfffffffff
}

func (s *Server) ec2(c call) (string, *apiError) {
	switch c.action {
	case "DescribeInstances":
		return s.describeInstances(c)
	case "DescribeRegions":
		var b xmlw
		b.raw(`<DescribeRegionsResponse xmlns="` + namespace("ec2") + `">`)
		b.elem("requestId", c.reqID)
		b.raw("<regionInfo>")
		s.mu.Lock()
		seen := map[string]bool{}
		var regs []string
		for k := range s.regions {
			if k.account == c.account && !seen[k.region] {
				seen[k.region] = true
				regs = append(regs, k.region)
			}
		}
		s.mu.Unlock()
		sort.Strings(regs)
		for _, r := range regs {
			b.raw("<item>")
			b.elem("regionName", r)
			b.elem("regionEndpoint", "ec2."+r+".amazonaws.com")
			b.raw("</item>")
		}
		b.raw("</regionInfo></DescribeRegionsResponse>")
		return b.String(), nil
	}
	return "", errf(http.StatusBadRequest, "InvalidAction", "The action %s is not valid for this web service.", c.action)
}

type ec2Filter struct {
	name   string
	values []string
}

func (s *Server) describeInstances(c call) (string, *apiError) {
	var filters []ec2Filter
	for i := 1; ; i++ {
		name := c.params.Get(fmt.Sprintf("Filter.%d.Name", i))
		if name == "" {
			break
		}
		f := ec2Filter{name: name, values: members(c.params, fmt.Sprintf("Filter.%d.Value", i))}
		if _, ok := instanceField(&Instance{}, name); !ok {
			return "", errf(http.StatusBadRequest, "InvalidParameterValue", "The filter '%s' is invalid", name)
		}
		filters = append(filters, f)
	}
	ids := members(c.params, "InstanceId")
	maxResults := 0
	if v := c.params.Get("MaxResults"); v != "" {
		fmt.Sscan(v, &maxResults)
		if maxResults < 5 || maxResults > 1000 {
			return "", errf(http.StatusBadRequest, "InvalidParameterValue", "Value ( %d ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", maxResults)
		}
		if len(ids) > 0 {
			return "", errf(http.StatusBadRequest, "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
		}
	}
	n := maxResults
	if n == 0 {
		n = 1000
	}
	n = min(n, s.opts.MaxPageSize)

	s.mu.Lock()
	r := s.region(c.account, c.region)
	var matched []*Instance
	if len(ids) > 0 {
		for _, id := range ids {
			inst := r.byID[id]
			if inst == nil {
				s.mu.Unlock()
				return "", errf(http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
			}
			if matchAll(inst, filters) {
				matched = append(matched, inst)
			}
		}
	} else {
		for _, inst := range r.instances {
			if matchAll(inst, filters) {
				matched = append(matched, inst)
			}
		}
	}
	from, to, next, e := page(len(matched), c.params.Get("NextToken"), n)
	if e != nil {
		s.mu.Unlock()
		return "", e
	}
	var b xmlw
	b.Grow((to - from) * 1200)
	b.raw(`<?xml version="1.0" encoding="UTF-8"?>`)
	b.raw(`<DescribeInstancesResponse xmlns="` + namespace("ec2") + `">`)
	b.elem("requestId", c.reqID)
	b.raw("<reservationSet>")
	for i := from; i < to; {
		res := matched[i].ReservationID
		b.raw("<item>")
		b.elem("reservationId", res)
		b.elem("ownerId", c.account)
		b.raw("<groupSet/><instancesSet>")
		for ; i < to && matched[i].ReservationID == res; i++ {
			writeInstance(&b, matched[i], c.region)
		}
		b.raw("</instancesSet></item>")
	}
	b.raw("</reservationSet>")
	s.mu.Unlock()
	b.opt("nextToken", next)
	b.raw("</DescribeInstancesResponse>")
	return b.String(), nil
}

func writeInstance(b *xmlw, inst *Instance, region string) {
	b.raw("<item>")
	b.elem("instanceId", inst.ID)
	b.elem("imageId", inst.ImageID)
	b.raw("<instanceState>")
	b.num("code", stateCodes[inst.State])
	b.elem("name", inst.State)
	b.raw("</instanceState>")
	b.elem("privateDnsName", inst.PrivateDNS)
	b.elem("dnsName", inst.PublicDNS)
	b.opt("keyName", inst.KeyName)
	b.num("amiLaunchIndex", 0)
	b.elem("instanceType", inst.Type)
	b.ts("launchTime", inst.LaunchTime)
	b.raw("<placement>")
	b.elem("availabilityZone", inst.AZ)
	b.elem("tenancy", "default")
	b.raw("</placement>")
	b.raw("<monitoring><state>disabled</state></monitoring>")
	b.elem("subnetId", inst.SubnetID)
	b.elem("vpcId", inst.VpcID)
	b.elem("privateIpAddress", inst.PrivateIP)
	b.opt("ipAddress", inst.PublicIP)
	b.elem("architecture", "x86_64")
	b.elem("rootDeviceType", "ebs")
	if len(inst.Tags) > 0 {
		keys := make([]string, 0, len(inst.Tags))
		for k := range inst.Tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.raw("<tagSet>")
		for _, k := range keys {
			b.raw("<item>")
			b.elem("key", k)
			b.elem("value", inst.Tags[k])
			b.raw("</item>")
		}
		b.raw("</tagSet>")
	}
	b.raw("</item>")
}

func matchAll(inst *Instance, filters []ec2Filter) bool {
	for _, f := range filters {
		if !matchFilter(inst, f) {
			return false
		}
	}
	return true
}

// matchFilter applies one EC2 filter: any value may match; values may use
// the * and ? wildcards as EC2's do.
func matchFilter(inst *Instance, f ec2Filter) bool {
	if f.name == "tag-key" {
		for k := range inst.Tags {
			if matchAny(k, f.values) {
				return true
			}
		}
		return false
	}
	if f.name == "tag-value" {
		for _, v := range inst.Tags {
			if matchAny(v, f.values) {
				return true
			}
		}
		return false
	}
	v, _ := instanceField(inst, f.name)
	if strings.HasPrefix(f.name, "tag:") {
		if _, ok := inst.Tags[f.name[4:]]; !ok {
			return false
		}
	}
	return matchAny(v, f.values)
}

func matchAny(v string, patterns []string) bool {
	for _, p := range patterns {
		if p == v || (strings.ContainsAny(p, "*?") && glob(p, v)) {
			return true
		}
	}
	return false
}

// glob matches EC2 filter wildcards: * any run, ? one character. It
// backtracks only to the last star, so it is linear-ish on any input.
func glob(p, v string) bool {
	px, vx := 0, 0
	starPx, starVx := -1, -1
	for px < len(p) || vx < len(v) {
		if px < len(p) {
			switch c := p[px]; {
			case c == '*':
				starPx, starVx = px, vx+1
				px++
				continue
			case vx < len(v) && (c == '?' || c == v[vx]):
				px++
				vx++
				continue
			}
		}
		if starPx >= 0 && starVx <= len(v) {
			px, vx = starPx+1, starVx
			starVx++
			continue
		}
		return false
	}
	return true
}

// instanceField returns the value a filter name looks at.
func instanceField(inst *Instance, name string) (string, bool) {
	if strings.HasPrefix(name, "tag:") {
		return inst.Tags[name[4:]], true
	}
	switch name {
	case "tag-key", "tag-value":
		return "", true
	case "instance-state-name":
		return inst.State, true
	case "instance-state-code":
		return fmt.Sprint(stateCodes[inst.State]), true
	case "instance-id":
		return inst.ID, true
	case "availability-zone":
		return inst.AZ, true
	case "private-ip-address":
		return inst.PrivateIP, true
	case "ip-address":
		return inst.PublicIP, true
	case "private-dns-name":
		return inst.PrivateDNS, true
	case "dns-name":
		return inst.PublicDNS, true
	case "instance-type":
		return inst.Type, true
	case "image-id":
		return inst.ImageID, true
	case "vpc-id":
		return inst.VpcID, true
	case "subnet-id":
		return inst.SubnetID, true
	case "key-name":
		return inst.KeyName, true
	case "reservation-id":
		return inst.ReservationID, true
	}
	return "", false
}

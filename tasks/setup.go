package tasks

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"
)

func init() { Register(setupModule{}) }

// setupModule gathers Ansible's facts about the host without Python: one
// shell script, one command, reading /etc/os-release, /proc, `ip`, `uname`,
// `hostname`, `date`, `id` and the environment. The facts become host
// variables twice, as Ansible injects them: `ansible_distribution` and
// `ansible_facts.distribution`.
type setupModule struct{}

func (setupModule) Spec() Spec {
	return Spec{
		Name: "setup", GathersFacts: true,
		Doc: "Gather facts about the host (distribution, network, CPU, memory, kernel, date, user, environment) in one command, as Ansible's setup does",
		Params: map[string]Param{
			"gather_subset":  {Type: List, Default: "all", Doc: "all, min, network, hardware (a ! before one leaves it out); other subsets are accepted and gather nothing more"},
			"filter":         {Type: List, Doc: "keep only facts whose name matches one of these shell patterns (ansible_eth*)"},
			"gather_timeout": {Type: Any, Doc: "accepted and ignored: the task's timeout bounds the command"},
			"fact_path":      {Type: String, Doc: "accepted and ignored: ferry reads no local facts"},
		},
		Returns: map[string]string{"ansible_facts": "the facts gathered (also set as host variables ansible_NAME and ansible_facts.NAME)"},
	}
}

func (setupModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("setup", args)
	subset := a.StringList("gather_subset")
	filter := a.StringList("filter")
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if h.Conn == nil {
		return Outcome{}, errors.New("setup: no connection to the host")
	}
	facts, err := GatherFacts(ctx, h.Conn, h.Become, subset)
	if err != nil {
		return Outcome{}, err
	}
	facts = FilterFacts(facts, filter)
	prev, _ := h.Vars["ansible_facts"].(map[string]any)
	vars := FactVars(prev, facts)
	return Outcome{Msg: fmt.Sprintf("%d facts", len(facts)), Facts: vars, Result: map[string]any{"ansible_facts": prefixed(facts)}}, nil
}

// FactVars turns gathered facts (names without the ansible_ prefix) into the
// host variables Ansible sets: ansible_NAME for each, and ansible_facts
// (prev, the facts already known, with these over them).
func FactVars(prev, facts map[string]any) map[string]any {
	all := make(map[string]any, len(prev)+len(facts))
	for k, v := range prev {
		all[k] = v
	}
	for k, v := range facts {
		all[k] = v
	}
	out := prefixed(facts)
	out["ansible_facts"] = all
	return out
}

func prefixed(facts map[string]any) map[string]any {
	out := make(map[string]any, len(facts)+1)
	for k, v := range facts {
		out["ansible_"+k] = v
	}
	return out
}

// FilterFacts keeps the facts whose ansible_NAME (or NAME) matches one of
// the shell patterns; no patterns keeps everything.
func FilterFacts(facts map[string]any, patterns []string) map[string]any {
	if len(patterns) == 0 {
		return facts
	}
	out := map[string]any{}
	for k, v := range facts {
		for _, p := range patterns {
			if p == "" || p == "*" {
				out[k] = v
				break
			}
			if ok, _ := path.Match(p, "ansible_"+k); ok {
				out[k] = v
				break
			}
			if ok, _ := path.Match(p, k); ok {
				out[k] = v
				break
			}
		}
	}
	return out
}

// FactNames are the facts GatherFacts returns (without the ansible_ prefix;
// per-interface facts, ansible_eth0 and the like, come on top), for
// `ferry check`.
var FactNames = []string{
	"all_ipv4_addresses", "all_ipv6_addresses", "architecture", "date_time", "default_ipv4", "default_ipv6",
	"distribution", "distribution_file_variety", "distribution_major_version", "distribution_minor_version",
	"distribution_release", "distribution_version", "domain", "effective_group_id", "effective_user_id", "env",
	"fqdn", "gather_subset", "hostname", "interfaces", "kernel", "kernel_version", "lsb", "machine", "machine_id",
	"memfree_mb", "memory_mb", "memtotal_mb", "nodename", "os_family", "pkg_mgr", "processor_cores", "processor_count",
	"processor_nproc", "processor_threads_per_core", "processor_vcpus", "real_group_id", "real_user_id",
	"service_mgr", "swapfree_mb", "swaptotal_mb", "system", "uptime_seconds", "user_dir", "user_gecos",
	"user_gid", "user_id", "user_shell", "user_uid", "userspace_architecture", "userspace_bits",
}

// envEnd ends the environment's section (a value may hold a line that
// starts with @@).
const envEnd = "@@end-of-env-5d1c9e"

// factsScript prints raw sections (@@name) for GatherFacts to parse: the
// shell only reads, Go interprets, so a host needs nothing but a POSIX shell
// and the usual tools (a missing one leaves its section empty).
const factsScript = `echo @@env; env; echo ` + envEnd + `
LC_ALL=C; export LC_ALL
echo @@uname; uname -s; uname -r; uname -m; uname -v
echo @@hostname; hostname 2>/dev/null || cat /proc/sys/kernel/hostname
echo @@fqdn; n=$(hostname 2>/dev/null); a=$(getent ahosts "$n" 2>/dev/null | awk 'NR==1{print $1}'); [ -n "$a" ] && getent hosts "$a" 2>/dev/null | head -n 1
echo @@os-release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
echo @@debian_version; cat /etc/debian_version 2>/dev/null
echo @@redhat-release; cat /etc/redhat-release 2>/dev/null
echo @@machine-id; cat /etc/machine-id 2>/dev/null
echo @@cpuinfo; grep -E '^(processor|physical id|core id|cpu cores|siblings)[[:space:]]*:' /proc/cpuinfo 2>/dev/null
echo @@nproc; nproc 2>/dev/null
echo @@meminfo; grep -E '^(MemTotal|MemFree|Buffers|Cached|SwapTotal|SwapFree):' /proc/meminfo 2>/dev/null
echo @@uptime; cat /proc/uptime 2>/dev/null
echo @@route4; ip -4 route get 8.8.8.8 2>/dev/null | head -n 1
echo @@route6; ip -6 route get 2404:6800:400a:800::1012 2>/dev/null | head -n 1
echo @@addr; ip -o addr show 2>/dev/null
echo @@link; ip -o link show 2>/dev/null
echo @@date; date '+%Y|%m|%d|%H|%M|%S|%s|%Z|%z|%A|%w|%W|%N'; date -u '+%Y-%m-%dT%H:%M:%S'; date -d @1704067200 '+%z %Z' 2>/dev/null; date -d @1719792000 '+%z %Z' 2>/dev/null
echo @@id; id -u; id -g; id -un; id -ru; id -rg; getent passwd "$(id -u)" 2>/dev/null
echo @@init; cat /proc/1/comm 2>/dev/null; echo; echo "@sbin_init $(readlink /sbin/init 2>/dev/null)"
command -v systemctl >/dev/null 2>&1 && echo @systemctl
for d in /run/systemd/system/ /dev/.run/systemd/ /dev/.systemd/; do [ -e "$d" ] && echo @systemd_canary; done
command -v initctl >/dev/null 2>&1 && [ -e /etc/init/ ] && echo @upstart
[ -e /sbin/openrc ] && echo @openrc
[ -e /etc/init.d/ ] && echo @initd
echo @@pkg; for p in apt-get dnf yum zypper apk pacman; do command -v $p >/dev/null 2>&1 && { echo $p; break; }; done
`

// GatherFacts runs the facts script on the host (one command, with the
// play's become settings, as Ansible gathers as the become user) and
// returns the facts, named without the ansible_ prefix.
func GatherFacts(ctx context.Context, conn Conn, opts RunOptions, subset []string) (map[string]any, error) {
	ro := RunOptions{Become: opts.Become, BecomeUser: opts.BecomeUser, BecomePass: opts.BecomePass}
	res, err := conn.Run(ctx, factsScript, ro)
	if err != nil {
		return nil, fmt.Errorf("gathering facts: %w", err)
	}
	if len(res.Stdout) == 0 {
		return nil, fmt.Errorf("gathering facts: the host printed nothing (exit %d): %s", res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return ParseFacts(string(res.Stdout), subset), nil
}

// ParseFacts interprets the facts script's output.
func ParseFacts(out string, subset []string) map[string]any {
	sec := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(out, "\n") {
		if cur == "env" && line != envEnd {
			sec[cur] = append(sec[cur], line)
			continue
		}
		if name, ok := strings.CutPrefix(line, "@@"); ok {
			cur = name
			sec[cur] = []string{}
			continue
		}
		if cur != "" {
			sec[cur] = append(sec[cur], line)
		}
	}
	f := map[string]any{}
	line := func(s string, i int) string {
		if i < len(sec[s]) {
			return strings.TrimSpace(sec[s][i])
		}
		return ""
	}
	f["system"] = line("uname", 0)
	f["kernel"] = line("uname", 1)
	f["machine"] = line("uname", 2)
	f["kernel_version"] = line("uname", 3)
	arch := line("uname", 2)
	switch arch {
	case "i386", "i486", "i586", "i686":
		arch = "i386"
	}
	f["architecture"] = arch
	f["userspace_architecture"] = arch
	f["userspace_bits"] = "64"
	if strings.HasSuffix(arch, "86") || strings.HasPrefix(arch, "arm") && !strings.Contains(arch, "64") {
		f["userspace_bits"] = "32"
	}
	f["machine_id"] = line("machine-id", 0)

	hostFacts(f, line("hostname", 0), line("fqdn", 0))
	distFacts(f, sec["os-release"], line("debian_version", 0), line("redhat-release", 0))
	f["pkg_mgr"] = map[string]string{"apt-get": "apt", "": "unknown"}[line("pkg", 0)]
	if f["pkg_mgr"] == "" {
		f["pkg_mgr"] = line("pkg", 0)
	}
	dateFacts(f, sec["date"])
	userFacts(f, sec["id"])
	f["service_mgr"] = serviceMgr(sec["init"])
	f["env"] = envFacts(sec["env"])

	want := subsets(subset)
	f["gather_subset"] = subsetList(subset)
	if want["hardware"] {
		hardwareFacts(f, sec["cpuinfo"], line("nproc", 0), sec["meminfo"])
	}
	if want["network"] {
		networkFacts(f, sec["addr"], sec["link"], line("route4", 0), line("route6", 0))
	}
	if up := strings.Fields(line("uptime", 0)); len(up) > 0 {
		if v, err := strconv.ParseFloat(up[0], 64); err == nil {
			f["uptime_seconds"] = int(v)
		}
	}
	return f
}

func subsetList(subset []string) []any {
	if len(subset) == 0 {
		return []any{"all"}
	}
	out := make([]any, len(subset))
	for i, s := range subset {
		out[i] = s
	}
	return out
}

// subsets says which optional groups of facts to gather: "all" (the
// default) is every one, "min" (or !all) none; !name drops one.
func subsets(list []string) map[string]bool {
	want := map[string]bool{"hardware": true, "network": true}
	if len(list) == 0 {
		return want
	}
	all := false
	named := map[string]bool{}
	for _, s := range list {
		switch s = strings.TrimSpace(s); {
		case s == "all":
			all = true
		case strings.HasPrefix(s, "!"):
		default:
			named[s] = true
		}
	}
	for k := range want {
		want[k] = all || named[k]
	}
	for _, s := range list {
		if n, ok := strings.CutPrefix(strings.TrimSpace(s), "!"); ok {
			if n == "all" {
				for k := range want {
					want[k] = named[k]
				}
			} else {
				want[n] = false
			}
		}
	}
	return want
}

func hostFacts(f map[string]any, node, hosts string) {
	f["nodename"] = node
	short, _, _ := strings.Cut(node, ".")
	f["hostname"] = short
	// Python's socket.getfqdn: the first of the reverse lookup's names with
	// a dot, else its canonical name, else the node name.
	fqdn := node
	if fs := strings.Fields(hosts); len(fs) > 1 {
		fqdn = fs[1]
		for _, n := range fs[1:] {
			if strings.Contains(n, ".") {
				fqdn = n
				break
			}
		}
	}
	f["fqdn"] = fqdn
	_, domain, _ := strings.Cut(fqdn, ".")
	f["domain"] = domain
}

// distNames maps os-release IDs to Ansible's distribution names and families.
var distNames = map[string][2]string{
	"debian": {"Debian", "Debian"}, "ubuntu": {"Ubuntu", "Debian"}, "raspbian": {"Debian", "Debian"},
	"linuxmint": {"Linux Mint", "Debian"}, "kali": {"Kali", "Debian"},
	"amzn": {"Amazon", "RedHat"}, "centos": {"CentOS", "RedHat"}, "rhel": {"RedHat", "RedHat"},
	"rocky": {"Rocky", "RedHat"}, "almalinux": {"AlmaLinux", "RedHat"}, "fedora": {"Fedora", "RedHat"},
	"ol": {"OracleLinux", "RedHat"}, "scientific": {"Scientific", "RedHat"},
	"alpine": {"Alpine", "Alpine"}, "arch": {"Archlinux", "Archlinux"},
	"opensuse-leap": {"openSUSE Leap", "Suse"}, "opensuse-tumbleweed": {"openSUSE Tumbleweed", "Suse"},
	"sles": {"SLES", "Suse"}, "gentoo": {"Gentoo", "Gentoo"},
}

func distFacts(f map[string]any, osRelease []string, debianVersion, redhatRelease string) {
	kv := map[string]string{}
	for _, l := range osRelease {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if ok {
			kv[k] = strings.Trim(v, `"'`)
		}
	}
	id := kv["ID"]
	name, family := kv["NAME"], kv["NAME"]
	if n, ok := distNames[id]; ok {
		name, family = n[0], n[1]
	} else if id != "" {
		for _, like := range strings.Fields(kv["ID_LIKE"]) {
			if n, ok := distNames[like]; ok {
				family = n[1]
				break
			}
		}
	}
	if name == "" {
		name, family = "NA", "NA"
	}
	version := kv["VERSION_ID"]
	variety := name
	switch family {
	case "Debian":
		variety = "Debian"
		// Debian's point release is only in /etc/debian_version (12.11).
		if id == "debian" && debianVersion != "" && debianVersion[0] >= '0' && debianVersion[0] <= '9' {
			version = debianVersion
		}
	case "RedHat":
		variety = "RedHat"
		if id == "amzn" {
			variety = "Amazon"
		}
	}
	_ = redhatRelease
	if version == "" {
		version = "NA"
	}
	major, minor, hasMinor := strings.Cut(version, ".")
	if !hasMinor {
		minor = "NA"
	}
	release := kv["VERSION_CODENAME"]
	if release == "" {
		release = "NA"
	}
	f["distribution"] = name
	f["os_family"] = family
	f["distribution_version"] = version
	f["distribution_major_version"] = major
	f["distribution_minor_version"] = minor
	f["distribution_release"] = release
	f["distribution_file_variety"] = variety
	f["lsb"] = map[string]any{}
}

func dateFacts(f map[string]any, lines []string) {
	if len(lines) < 2 {
		return
	}
	p := strings.Split(strings.TrimSpace(lines[0]), "|")
	if len(p) < 13 {
		return
	}
	micro := p[12]
	if len(micro) >= 6 && micro[0] != '%' {
		micro = micro[:6]
	} else {
		micro = "000000"
	}
	utc := strings.TrimSpace(lines[1])
	tzDST := p[7]
	if len(lines) >= 4 {
		// Python's time.tzname[1]: the zone's daylight-saving name (its
		// standard name when it has none). Whichever of January and July has
		// the larger offset is summer time.
		jan, jul := strings.Fields(lines[2]), strings.Fields(lines[3])
		if len(jan) == 2 && len(jul) == 2 {
			tzDST = jul[1]
			if jan[0] > jul[0] {
				tzDST = jan[1]
			}
		}
	}
	f["date_time"] = map[string]any{
		"year": p[0], "month": p[1], "day": p[2], "hour": p[3], "minute": p[4], "second": p[5],
		"epoch": p[6], "epoch_int": p[6], "tz": p[7], "tz_offset": p[8], "tz_dst": tzDST,
		"weekday": p[9], "weekday_number": p[10], "weeknumber": p[11],
		"date": p[0] + "-" + p[1] + "-" + p[2], "time": p[3] + ":" + p[4] + ":" + p[5],
		"iso8601": utc + "Z", "iso8601_micro": utc + "." + micro + "Z",
		"iso8601_basic":       p[0] + p[1] + p[2] + "T" + p[3] + p[4] + p[5] + micro,
		"iso8601_basic_short": p[0] + p[1] + p[2] + "T" + p[3] + p[4] + p[5],
	}
}

func atoi(s string) any {
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		return n
	}
	return s
}

func userFacts(f map[string]any, lines []string) {
	get := func(i int) string {
		if i < len(lines) {
			return strings.TrimSpace(lines[i])
		}
		return ""
	}
	f["effective_user_id"] = atoi(get(0))
	f["effective_group_id"] = atoi(get(1))
	f["user_id"] = get(2)
	f["real_user_id"] = atoi(get(3))
	f["real_group_id"] = atoi(get(4))
	pw := strings.Split(get(5), ":")
	if len(pw) == 7 {
		f["user_uid"] = atoi(pw[2])
		f["user_gid"] = atoi(pw[3])
		f["user_gecos"] = pw[4]
		f["user_dir"] = pw[5]
		f["user_shell"] = pw[6]
	}
}

// serviceMgr follows Ansible's service_mgr detection: PID 1's name unless
// it is `init` or a shell, else systemd's canaries, upstart, openrc,
// sysvinit, and `service` when nothing is known.
func serviceMgr(lines []string) string {
	flags := map[string]string{}
	proc1 := ""
	if len(lines) > 0 {
		proc1 = strings.TrimSpace(lines[0])
	}
	for _, l := range lines[min(1, len(lines)):] {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		if strings.HasPrefix(k, "@") {
			flags[k[1:]] = strings.TrimSpace(v)
		}
	}
	if proc1 == "" && flags["sbin_init"] != "" {
		proc1 = path.Base(flags["sbin_init"])
	}
	if proc1 == "init" || strings.HasSuffix(proc1, "sh") {
		proc1 = ""
	}
	if proc1 != "" {
		if m, ok := map[string]string{"procd": "openwrt_init", "runit-init": "runit", "svscan": "svc", "openrc-init": "openrc"}[proc1]; ok {
			return m
		}
		return proc1
	}
	_, systemctl := flags["systemctl"]
	_, canary := flags["systemd_canary"]
	_, upstart := flags["upstart"]
	_, openrc := flags["openrc"]
	_, initd := flags["initd"]
	switch {
	case systemctl && canary:
		return "systemd"
	case upstart:
		return "upstart"
	case openrc:
		return "openrc"
	case systemctl && strings.HasSuffix(flags["sbin_init"], "systemd"):
		return "systemd"
	case initd:
		return "sysvinit"
	}
	return "service"
}

func envFacts(lines []string) map[string]any {
	env := map[string]any{}
	last := ""
	for _, l := range lines {
		k, v, ok := strings.Cut(l, "=")
		if ok && k != "" && !strings.ContainsAny(k, " \t") {
			env[k] = v
			last = k
			continue
		}
		if last != "" { // a value with a newline in it
			env[last] = env[last].(string) + "\n" + l
		}
	}
	if last != "" {
		env[last] = strings.TrimSuffix(env[last].(string), "\n")
	}
	return env
}

func hardwareFacts(f map[string]any, cpuinfo []string, nproc string, meminfo []string) {
	procs, sockets := 0, map[string]bool{}
	cores, siblings := 0, 0
	for _, l := range cpuinfo {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			procs++
		case "physical id":
			sockets[v] = true
		case "cpu cores":
			cores, _ = strconv.Atoi(v)
		case "siblings":
			siblings, _ = strconv.Atoi(v)
		}
	}
	// As Ansible's Linux hardware facts: sockets × cores × threads when
	// cpuinfo says, else one processor line per vCPU.
	count, perCore := len(sockets), 1
	if count == 0 {
		count, cores = procs, 1
	} else if cores > 0 && siblings > 0 {
		perCore = siblings / cores
	}
	if cores == 0 {
		cores = 1
	}
	f["processor_count"] = count
	f["processor_cores"] = cores
	f["processor_threads_per_core"] = perCore
	f["processor_vcpus"] = count * cores * perCore
	if len(sockets) == 0 {
		f["processor_vcpus"] = procs
	}
	f["processor_nproc"] = atoi(nproc)
	mem := map[string]int{}
	for _, l := range meminfo {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			mem[k] = kb / 1024
		}
	}
	f["memtotal_mb"] = mem["MemTotal"]
	f["memfree_mb"] = mem["MemFree"]
	f["swaptotal_mb"] = mem["SwapTotal"]
	f["swapfree_mb"] = mem["SwapFree"]
	f["memory_mb"] = map[string]any{
		"real":    map[string]any{"total": mem["MemTotal"], "free": mem["MemFree"], "used": mem["MemTotal"] - mem["MemFree"]},
		"nocache": map[string]any{"free": mem["MemFree"] + mem["Buffers"] + mem["Cached"], "used": mem["MemTotal"] - mem["MemFree"] - mem["Buffers"] - mem["Cached"]},
		"swap":    map[string]any{"total": mem["SwapTotal"], "free": mem["SwapFree"], "used": mem["SwapTotal"] - mem["SwapFree"]},
	}
}

// factName is how Ansible names an interface's fact: ansible_eth0, with -
// and : written _.
func factName(iface string) string {
	return strings.NewReplacer("-", "_", ":", "_", ".", "_").Replace(iface)
}

func networkFacts(f map[string]any, addrs, links []string, route4, route6 string) {
	ifaces := map[string]map[string]any{}
	var order []string
	for _, l := range links {
		// "2: eth0@if5: <BROADCAST,UP,LOWER_UP> mtu 1500 ... state UP ...\    link/ether 02:..."
		fs := strings.Fields(strings.ReplaceAll(l, `\`, " "))
		if len(fs) < 3 {
			continue
		}
		name := strings.TrimSuffix(fs[1], ":")
		name, _, _ = strings.Cut(name, "@")
		d := map[string]any{"device": name, "active": strings.Contains(fs[2], ",UP") || strings.Contains(fs[2], "<UP"),
			"promisc": strings.Contains(fs[2], "PROMISC"), "type": "unknown"}
		for i := 3; i+1 < len(fs); i++ {
			switch fs[i] {
			case "mtu":
				d["mtu"] = atoi(fs[i+1])
			case "link/ether":
				d["type"], d["macaddress"] = "ether", fs[i+1]
			case "link/loopback":
				d["type"] = "loopback"
			case "link/ppp":
				d["type"] = "ppp"
			case "link/none":
				d["type"] = "unknown"
			}
		}
		ifaces[name] = d
		order = append(order, name)
	}
	var all4, all6 []any
	for _, l := range addrs {
		fs := strings.Fields(strings.ReplaceAll(l, `\`, " "))
		if len(fs) < 4 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(fs[1], ":"), "@")
		d := ifaces[name]
		if d == nil {
			continue
		}
		fam, cidr := fs[2], fs[3]
		pfx, err := netip.ParsePrefix(cidr)
		if err != nil {
			continue
		}
		opt := func(key string) string {
			for i := 4; i+1 < len(fs); i++ {
				if fs[i] == key {
					return fs[i+1]
				}
			}
			return ""
		}
		switch fam {
		case "inet":
			a := pfx.Addr().String()
			label := name
			for i := 4; i+1 < len(fs); i++ {
				if fs[i] == "scope" && i+2 < len(fs) && fs[i+2] != "valid_lft" {
					label = fs[i+2]
				}
			}
			v4 := map[string]any{"address": a, "broadcast": opt("brd"), "netmask": netmask(pfx.Bits()),
				"network": pfx.Masked().Addr().String(), "prefix": strconv.Itoa(pfx.Bits())}
			if _, ok := d["ipv4"]; ok {
				sec, _ := d["ipv4_secondaries"].([]any)
				d["ipv4_secondaries"] = append(sec, v4)
			} else {
				d["ipv4"] = v4
				d["alias"] = label
			}
			if !strings.HasPrefix(a, "127.") {
				all4 = append(all4, a)
			}
		case "inet6":
			a := pfx.Addr().String()
			v6, _ := d["ipv6"].([]any)
			d["ipv6"] = append(v6, map[string]any{"address": a, "prefix": strconv.Itoa(pfx.Bits()), "scope": opt("scope")})
			if a != "::1" {
				all6 = append(all6, a)
			}
		}
	}
	names := append([]string(nil), order...)
	sort.Strings(names)
	list := make([]any, len(names))
	for i, n := range names {
		list[i] = n
		d := ifaces[n]
		delete(d, "alias")
		f[factName(n)] = d
	}
	if all4 == nil {
		all4 = []any{}
	}
	if all6 == nil {
		all6 = []any{}
	}
	f["interfaces"] = list
	f["all_ipv4_addresses"] = all4
	f["all_ipv6_addresses"] = all6
	f["default_ipv4"] = defaultRoute(route4, ifaces, "ipv4")
	f["default_ipv6"] = defaultRoute(route6, ifaces, "ipv6")
}

// defaultRoute is Ansible's default_ipv4/default_ipv6: the interface and
// source address of the route to a public address, with that interface's
// details.
func defaultRoute(route string, ifaces map[string]map[string]any, fam string) map[string]any {
	out := map[string]any{}
	fs := strings.Fields(route)
	for i := 0; i+1 < len(fs); i++ {
		switch fs[i] {
		case "dev":
			out["interface"] = fs[i+1]
		case "src":
			out["address"] = fs[i+1]
		case "via":
			out["gateway"] = fs[i+1]
		}
	}
	d := ifaces[fmt.Sprint(out["interface"])]
	if d == nil || out["address"] == nil {
		return out
	}
	for _, k := range []string{"macaddress", "mtu", "type"} {
		if v, ok := d[k]; ok {
			out[k] = v
		}
	}
	if fam == "ipv4" {
		if v4, ok := d["ipv4"].(map[string]any); ok && v4["address"] == out["address"] {
			for _, k := range []string{"broadcast", "netmask", "network", "prefix"} {
				out[k] = v4[k]
			}
			out["alias"] = out["interface"]
		}
	} else if v6, ok := d["ipv6"].([]any); ok {
		for _, e := range v6 {
			if m := e.(map[string]any); m["address"] == out["address"] {
				out["prefix"], out["scope"] = m["prefix"], m["scope"]
			}
		}
	}
	return out
}

func netmask(bits int) string {
	var m uint32
	if bits > 0 {
		m = ^uint32(0) << (32 - bits)
	}
	return fmt.Sprintf("%d.%d.%d.%d", m>>24, m>>16&255, m>>8&255, m&255)
}

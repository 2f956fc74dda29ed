package playbooks

// Ansible compatibility of the loader: Ansible's module names (and FQCNs) for
// ferry's modules with their parameters renamed, `action:`/`local_action:`/
// `args:`, `key=value` argument strings, `with_*` loops, and one line per
// module ferry does not have naming what to use instead. The task is rewritten
// into ferry's own form as YAML nodes that keep their positions, so the rest
// of the loader validates it like any other task.

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/tasks"
)

// moduleAlias is an Ansible module that ferry runs with one of its own.
type moduleAlias struct {
	module string
	params map[string]string // Ansible parameter → ferry's ("-": accepted and ignored)
	values map[string]map[string]string
}

var ansibleAliases = map[string]moduleAlias{
	"service":         {module: "systemd", params: map[string]string{"sleep": "-", "pattern": "-", "arguments": "-", "args": "-", "use": "-"}},
	"systemd_service": {module: "systemd", params: map[string]string{"scope": "-", "no_block": "-", "force": "-", "masked": "-", "unit": "name"}},
	"systemd":         {module: "systemd", params: map[string]string{"scope": "-", "no_block": "-", "force": "-", "masked": "-", "unit": "name"}},
	"uri": {module: "http", params: map[string]string{"status_code": "status", "return_content": "-", "body_format": "-",
		"follow_redirects": "-", "user": "url_username", "password": "url_password", "dest": "-", "creates": "-", "removes": "-", "use_proxy": "-"}},
	"docker_container": {module: "docker", params: map[string]string{"published_ports": "ports", "restart_policy": "restart",
		"network_mode": "network", "recreate": "-", "detach": "-", "keep_volumes": "-", "container_default_behavior": "-", "comparisons": "-"},
		values: map[string]map[string]string{"state": {"present": "started", "healthy": "started"}, "pull": {"true": "always", "yes": "always", "false": "missing", "no": "missing"}}},
	"elb_instance":        {module: "elb", params: map[string]string{"instance_id": "instance_id", "ec2_elbs": "load_balancers", "wait_timeout": "timeout", "enable_availability_zone": "-", "validate_certs": "-"}, values: map[string]map[string]string{"state": {"absent": "drained", "present": "registered"}}},
	"elb_classic_lb_info": {module: ""},
	"ec2_elb":             {module: "elb", params: map[string]string{"ec2_elbs": "load_balancers", "wait_timeout": "timeout", "enable_availability_zone": "-"}, values: map[string]map[string]string{"state": {"absent": "drained", "present": "registered"}}},
	"elb_target":          {module: "elb", params: map[string]string{"target_group_name": "target_groups", "target_group_arn": "target_groups", "target_id": "instance_id", "target_port": "-", "deregister_unused": "-", "target_status_timeout": "timeout", "target_status": "-"}, values: map[string]map[string]string{"state": {"absent": "drained", "present": "registered"}}},
	"slack":               {module: "webhook", params: map[string]string{"msg": "text", "token": "-", "color": "-", "icon_url": "-", "icon_emoji": "-", "link_names": "-", "parse": "-", "validate_certs": "-"}},
	"wait_for_connection": {module: "wait_for_connection"},
	"gather_facts":        {module: "setup", params: map[string]string{"parallel": "-"}},
	// warn: Ansible's old switch for its hints about commands (gone in 2.14)
	"command": {module: "command", params: map[string]string{"warn": "-"}},
	"shell":   {module: "shell", params: map[string]string{"warn": "-"}},
	// ferry always writes through a temp file and a rename.
	"lineinfile": {module: "lineinfile", params: map[string]string{"unsafe_writes": "-"}},
	"get_url":    {module: "get_url", params: map[string]string{"unsafe_writes": "-"}},
	"unarchive":  {module: "unarchive", params: map[string]string{"unsafe_writes": "-"}},
	// docker_compose_v2 takes ferry's compose parameters as they are; the
	// older docker_compose said yes/no for pull and build, smart for auto
	"docker_compose_v2": {module: "compose", params: map[string]string{"docker_host": "-", "tls": "-", "validate_certs": "-", "api_version": "-", "check_files_existing": "-", "assume_yes": "-"}},
	"docker_compose": {module: "compose", params: map[string]string{"docker_host": "-", "tls": "-", "validate_certs": "-", "api_version": "-", "dependencies": "-", "hostname_check": "-"},
		values: map[string]map[string]string{"pull": {"true": "always", "yes": "always", "false": "policy", "no": "policy"},
			"build": {"true": "always", "yes": "always", "false": "policy", "no": "policy"}, "recreate": {"smart": "auto"}}},
	"find": {module: "find", params: map[string]string{"path": "paths", "name": "paths", "pattern": "patterns", "exclude": "excludes", "get_checksum": "-", "checksum_algorithm": "-"}},
}

// windowsHint names what ferry does instead of a Windows module or connection.
const windowsHint = "ferry works on Linux hosts over SSH: Windows hosts are out of scope"

// unsupportedModules are Ansible modules ferry does not have, with what to
// use instead; `ferry check` reports each once.
var unsupportedModules = map[string]string{
	"apt": "ferry does not manage packages: bake them into the image, or run the package manager with `shell:`",
	"yum": "", "dnf": "", "package": "", "pip": "", "apk": "", "zypper": "", "homebrew": "", "npm": "", "gem": "",
	"git":           "ferry deploys build artifacts: build on the controller (or in CI) and ship them with `copy:` or `release:`",
	"synchronize":   "use `copy:` (a directory with a trailing / copies its contents; unchanged files are skipped by SHA-256)",
	"nagios":        "ferry has no nagios module: silence alerts with `shell:` (or `webhook:`) in `before:`/`after:`",
	"mysql_db":      "run the client with `shell:`",
	"mysql_user":    "run the client with `shell:`",
	"postgresql_db": "run the client with `shell:`",
	"user":          "ferry does not manage users: use `shell: useradd ...` or bake them into the image",
	"group":         "ferry does not manage groups: use `shell: groupadd ...` or bake them into the image",
	"cron":          "use `copy:` to /etc/cron.d",
	"selinux":       "use `shell:`", "seboolean": "use `shell:`", "firewalld": "use `shell:`", "ufw": "use `shell:`", "iptables": "use `shell:`",
	"ec2": "ferry does not provision: it deploys to instances the inventory finds", "ec2_instance": "", "ec2_asg": "use `asg:` (standby/in_service, suspend/resume)", "autoscaling_group": "use `asg:` (standby/in_service, suspend/resume)",
	"raw":          "use `shell:` (ferry needs no Python on hosts)",
	"async_status": "ferry has no async tasks: give the task a `timeout:`",
	"mail":         "use `webhook:`", "hipchat": "use `webhook:`", "mattermost": "use `webhook:`",
	"blockinfile": "use `template:` or `copy:` for the whole file, or `lineinfile:` line by line",
	"replace":     "use `template:` or `copy:` for the whole file", "ini_file": "use `template:`",
	"import_playbook": "`import_playbook:` goes at the top level of a playbook, in place of a play",
	"jboss":           "copy the .war into the deployments directory with `copy:` (JBoss deploys what appears there)",
	"win_service":     windowsHint, "win_copy": windowsHint, "win_shell": windowsHint,
}

// More of ansible.builtin and the common collections that ferry does not
// have, so that the short name and the FQCN get the same line.
func init() {
	for name, hint := range map[string]string{
		"ping":        "ferry's preflight connects to every host before anything runs; `wait_for_connection:` waits for one",
		"reboot":      "use `shell: systemctl reboot` (async) then `wait_for_connection:`",
		"fetch":       "read the file with `shell: cat FILE` and `register:`, or copy it off the host with scp",
		"slurp":       "use `shell: base64 FILE` with `register:` (or `cat` for text)",
		"tempfile":    "use `shell: mktemp` with `register:`",
		"getent":      "use `shell: getent ...` with `register:`",
		"hostname":    "ferry does not configure hosts: set the hostname in the image or with `shell:`",
		"known_hosts": "use `lineinfile:` on the known_hosts file",
		"assemble":    "use `template:` with a loop over the fragments, or `shell: cat`",
		"expect":      "use `shell:` with the answers on stdin",
		"debconf":     "", "apt_key": "", "apt_repository": "", "rpm_key": "", "yum_repository": "", "dpkg_selections": "",
		"redhat_subscription": "", "rhsm_repository": "", "rhn_register": "",
		"subversion":             "ferry deploys build artifacts: build on the controller (or in CI) and ship them with `copy:` or `release:`",
		"mount":                  "use `shell: mount ...` (ferry does not manage file systems)",
		"sysctl":                 "use `copy:` to /etc/sysctl.d and `shell: sysctl --system`",
		"authorized_key":         "use `lineinfile:` on the authorized_keys file",
		"set_stats":              "use `set_fact:` (or `register:`)",
		"validate_argument_spec": "use `assert:` on the role's variables",
		"win_ping":               windowsHint,
	} {
		if _, ok := unsupportedModules[name]; !ok {
			unsupportedModules[name] = hint
		}
	}
}

// unsupportedFor returns the ferry equivalent line for an Ansible module name
// (short or FQCN), and whether the name is a known Ansible module.
func unsupportedFor(name string) (string, bool) {
	short := shortName(name)
	hint, ok := unsupportedModules[short]
	if !ok && strings.HasPrefix(short, "win_") {
		// Windows hosts are out of scope: every win_* module gets one line.
		return windowsHint, true
	}
	if !ok {
		if strings.Count(name, ".") >= 2 {
			return "ferry has no equivalent of this collection module; `shell:` runs any command", true
		}
		return "", false
	}
	if hint == "" {
		switch short {
		case "ec2_instance":
			return unsupportedModules["ec2"], true
		}
		return unsupportedModules["apt"], true
	}
	return hint, true
}

// shortName strips an FQCN's collection: ansible.builtin.copy → copy.
func shortName(name string) string {
	for _, p := range []string{"ansible.builtin.", "ansible.legacy.", "ansible.posix.", "community.general.",
		"community.docker.", "amazon.aws.", "community.aws.", "ansible.windows."} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			return rest
		}
	}
	return name
}

// lookupAnsible finds the ferry module for an Ansible name, with its alias.
func lookupAnsible(name string) (string, *moduleAlias, bool) {
	short := shortName(name)
	if a, ok := ansibleAliases[short]; ok && a.module != "" {
		if _, ok := lookupModule(a.module); ok {
			return a.module, &a, true
		}
	}
	if short != name {
		if _, ok := lookupModule(short); ok {
			return short, nil, true
		}
	}
	return "", nil, false
}

// taskKeywords are the Ansible task keys the loader understands besides the module.
var ansibleTaskKeys = []string{"action", "local_action", "args", "with_items", "with_list", "with_dict",
	"loop_control", "notify", "delegate_to", "run_once", "listen", "vars", "block", "rescue", "always",
	"include_tasks", "import_tasks", "any_errors_fatal", "remote_user", "become_method", "check_mode",
	"diff", "delegate_facts", "connection", "debugger", "throttle", "include_role", "import_role"}

// structKeys are task keys that Ansible also names by FQCN.
var structKeys = map[string]bool{"include_role": true, "import_role": true, "include_tasks": true, "import_tasks": true, "meta": true}

// withLoops maps with_X to how its items come from the value.
var withLoops = map[string]string{"with_items": "flatten1", "with_list": "", "with_dict": "dict2items"}

// normalizeTask rewrites an Ansible task mapping into ferry's form: a new
// mapping whose nodes keep their original positions. It returns the node
// unchanged when there is nothing to rewrite.
func (l *loader) normalizeTask(n *yaml.Node) *yaml.Node {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	var argsNode, modNode, modKey *yaml.Node
	var alias *moduleAlias
	add := func(k, v *yaml.Node) { out.Content = append(out.Content, k, v) }
	modIdx := -1 // where the module goes: where it was written
	key := func(name string, at *yaml.Node) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name, Line: at.Line, Column: at.Column}
	}
	hasModule := false
	for _, kv := range l.pairs(n, "task") {
		if _, _, ok := lookupAnsible(kv.key); ok || isModule(kv.key) {
			hasModule = true
		}
	}
	for _, kv := range l.pairs(n, "task") {
		k, v := kv.k, kv.v
		if modKey == nil {
			modIdx = len(out.Content)
		}
		switch {
		case kv.key == "action" || kv.key == "local_action":
			name, args, ok := l.actionValue(v)
			if !ok {
				continue
			}
			if n, a, found := lookupAnsible(name); found {
				name, alias = n, a // ec2_elb through local_action: mapped as when written directly
			}
			if kv.key == "local_action" {
				add(key("delegate_to", k), &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "localhost", Line: k.Line, Column: k.Column})
			}
			modKey, modNode = key(name, k), args
		case kv.key == "args":
			argsNode = v
		case withLoops[kv.key] != "" || kv.key == "with_list":
			lk := key("loop", k)
			switch withLoops[kv.key] {
			case "dict2items":
				add(lk, l.loopFilter(v, "dict2items"))
			case "flatten1":
				add(lk, l.loopFilter(v, "flatten(levels=1)"))
			default:
				add(lk, v)
			}
		case shortName(kv.key) == "include":
			add(key("include_tasks", k), v) // Ansible's old include: of a task file
		case structKeys[shortName(kv.key)] && shortName(kv.key) != kv.key:
			add(key(shortName(kv.key), k), v) // ansible.builtin.include_role → include_role
		case kv.key == "with_nested" || kv.key == "with_subelements":
			add(k, v) // the task reads them (LoopItems)
		case strings.HasPrefix(kv.key, "with_"):
			l.errorf(l.pos(k), "write it as `loop:` with a filter (see the migration guide)", "%s is not supported", kv.key)
		case kv.key == "notify" && !hasModule && v.Kind == yaml.MappingNode:
			// ferry's former Slack module: `notify: {webhook: URL, text: ...}`
			l.warnf(l.pos(k), "the notify module is now called webhook (and its `webhook:` parameter `url:`); `notify:` on a task is Ansible's handler notification")
			modKey, modNode = key("webhook", k), renameKeys(v, map[string]string{"webhook": "url"})
		default:
			name, a, ok := lookupAnsible(kv.key)
			if (ok || isModule(kv.key)) && modKey != nil {
				add(k, v) // a second module: left for the task to report
				continue
			}
			if ok && (name != kv.key || a != nil) {
				modKey, modNode, alias = key(name, k), v, a
				continue
			}
			if isModule(kv.key) {
				modKey, modNode = k, v
				continue
			}
			add(k, v)
		}
	}
	if modKey == nil {
		if argsNode != nil {
			l.errorf(l.pos(argsNode), "put `args:` next to a module", "args: without a module")
		}
		return out
	}
	m, _ := lookupModule(modKey.Value)
	if modNode.Kind == yaml.ScalarNode && modNode.Tag != "!!null" && m != nil {
		modNode = l.kvNode(modNode, m.Spec().FreeForm, m.Spec().Params)
	}
	if argsNode != nil {
		if argsNode.Kind != yaml.MappingNode {
			l.errorf(l.pos(argsNode), "e.g. args: {chdir: /tmp}", "args: want a mapping, not %s", kindName(argsNode))
		} else {
			merged := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: modNode.Line, Column: modNode.Column}
			if modNode.Kind == yaml.MappingNode {
				merged.Content = append(merged.Content, modNode.Content...)
			} else if modNode.Kind == yaml.ScalarNode && modNode.Tag != "!!null" && m != nil && m.Spec().FreeForm != "" {
				merged.Content = append(merged.Content, key(m.Spec().FreeForm, modNode), modNode)
			}
			merged.Content = append(merged.Content, argsNode.Content...)
			modNode = merged
		}
	}
	if alias != nil && modNode.Kind == yaml.MappingNode {
		modNode = l.applyAlias(modNode, alias)
	}
	rest := append([]*yaml.Node{modKey, modNode}, out.Content[modIdx:]...)
	out.Content = append(out.Content[:modIdx], rest...)
	return out
}

// actionValue reads `action: "mod k=v"` or `action: {module: mod, k: v}`.
func (l *loader) actionValue(v *yaml.Node) (string, *yaml.Node, bool) {
	switch v.Kind {
	case yaml.ScalarNode:
		s := strings.TrimSpace(v.Value)
		name, rest, _ := strings.Cut(s, " ")
		if name == "" {
			break
		}
		mod := name
		arg := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.TrimSpace(rest), Line: v.Line, Column: v.Column}
		if strings.TrimSpace(rest) == "" {
			arg.Tag = "!!null"
		}
		return mod, arg, true
	case yaml.MappingNode:
		var name string
		args := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: v.Line, Column: v.Column}
		for _, kv := range l.pairs(v, "action") {
			if kv.key == "module" {
				name = kv.v.Value
				continue
			}
			args.Content = append(args.Content, kv.k, kv.v)
		}
		if name != "" {
			return name, args, true
		}
	}
	l.errorf(l.pos(v), `e.g. action: "shell echo hi", or local_action: {module: shell, cmd: echo hi}`, "action: want a module and its arguments")
	return "", nil, false
}

// loopFilter wraps a with_* value so that it loops like Ansible's lookup.
func (l *loader) loopFilter(v *yaml.Node, filter string) *yaml.Node {
	src := ""
	switch {
	case v.Kind == yaml.ScalarNode && template.HasTemplate(v.Value):
		if e, _, ok := template.SingleExpr(v.Value); ok {
			src = e
		}
	case v.Kind == yaml.ScalarNode:
		src = v.Value // Ansible's bare `with_items: names`
	}
	if src == "" {
		if filter == "dict2items" || v.Kind != yaml.SequenceNode {
			l.errorf(l.pos(v), `e.g. with_dict: "{{ mapping }}"`, "with_*: want a {{ }} expression or a list")
			return v
		}
		return v
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: v.Style, Value: "{{ (" + src + ") | " + filter + " }}", Line: v.Line, Column: v.Column}
}

func renameKeys(m *yaml.Node, names map[string]string) *yaml.Node {
	out := *m
	out.Content = append([]*yaml.Node(nil), m.Content...)
	for i := 0; i+1 < len(out.Content); i += 2 {
		if to, ok := names[out.Content[i].Value]; ok {
			k := *out.Content[i]
			k.Value = to
			out.Content[i] = &k
		}
	}
	return &out
}

// applyAlias renames an Ansible module's parameters (and values) to ferry's.
func (l *loader) applyAlias(m *yaml.Node, a *moduleAlias) *yaml.Node {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: m.Line, Column: m.Column}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		name := k.Value
		if to, ok := a.params[name]; ok {
			if to == "-" {
				continue
			}
			nk := *k
			nk.Value = to
			k, name = &nk, to
		}
		if name == "networks" && a.module == "docker" {
			// docker_container's networks: [{name: N}, ...] is ferry's
			// networks: [N, ...] (one: network: N)
			n := l.resolve(v)
			names := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: n.Line, Column: n.Column}
			ok := n.Kind == yaml.SequenceNode && len(n.Content) > 0
			for _, c := range n.Content {
				e := l.resolve(c)
				var nameNode *yaml.Node
				if e.Kind == yaml.MappingNode {
					for j := 0; j+1 < len(e.Content); j += 2 {
						if e.Content[j].Value == "name" {
							nameNode = e.Content[j+1]
						} else {
							ok = false // aliases, ipv4_address, links: not taken
						}
					}
				}
				if nameNode == nil {
					ok = false
					break
				}
				names.Content = append(names.Content, nameNode)
			}
			if !ok {
				l.errorf(l.pos(v), "networks: [{name: NET}, {name: OTHER}] (aliases, ipv4_address and links are not taken)", "docker_container: networks: want a list of networks, each with a name only")
				continue
			}
			if len(names.Content) == 1 {
				nk := *k
				nk.Value = "network"
				k, v, name = &nk, names.Content[0], "network"
			} else {
				v = names
			}
		}
		if vals, ok := a.values[name]; ok && v.Kind == yaml.ScalarNode {
			if to, ok := vals[strings.ToLower(v.Value)]; ok {
				nv := *v
				nv.Value, nv.Tag = to, "!!str"
				v = &nv
			}
		}
		out.Content = append(out.Content, k, v)
	}
	return out
}

// rawKeys are what Ansible takes out of a free-form command line as parameters.
var rawKeys = map[string]bool{"chdir": true, "creates": true, "removes": true, "executable": true, "warn": true, "stdin": true}

// kvNode turns `module: key=value ...` into a mapping node (Ansible's
// argument strings). For a free-form module only its known keys (chdir,
// creates, ...; var and msg for debug) are taken out; the rest is the free
// text. Values keep their {{ }}.
func (l *loader) kvNode(v *yaml.Node, freeForm string, params map[string]tasks.Param) *yaml.Node {
	if !strings.Contains(v.Value, "=") {
		return v
	}
	toks, err := splitKV(v.Value)
	if err != nil {
		l.errorf(l.pos(v), "close the quote", "%s", err)
		return v
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: v.Line, Column: v.Column}
	var raw []string
	for _, t := range toks {
		k, val, isKV := t.kv()
		_, known := params[k]
		// a command line keeps its words but chdir=, creates=, ...; other modules take their known keys
		take := isKV && (freeForm == "" || known && (freeForm == "cmd" && rawKeys[k] || freeForm != "cmd"))
		if !take {
			raw = append(raw, t.raw)
			continue
		}
		out.Content = append(out.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k, Line: v.Line, Column: v.Column + t.off},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val, Line: v.Line, Column: v.Column + t.off + len(k) + 1})
	}
	if len(raw) > 0 {
		if freeForm == "" {
			l.errorf(l.pos(v), "write parameters as key=value, or as a mapping", "%q is not a key=value argument", raw[0])
			return out
		}
		out.Content = append([]*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: freeForm, Line: v.Line, Column: v.Column},
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.Join(raw, " "), Line: v.Line, Column: v.Column},
		}, out.Content...)
	}
	return out
}

// kvToken is one word of an argument string, as written.
type kvToken struct {
	raw string
	off int
}

// kv splits `key=value` (value unquoted) when the word is one.
func (t kvToken) kv() (string, string, bool) {
	k, v, ok := strings.Cut(t.raw, "=")
	if !ok || !template.IsIdent(k) {
		return "", "", false
	}
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		inner := v[1 : len(v)-1]
		if v[0] == '"' {
			inner = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(inner)
		}
		v = inner
	}
	return k, v, true
}

// splitKV splits an argument string on spaces outside quotes and {{ }}/{% %},
// as Ansible's split_args does, keeping each word as written.
func splitKV(s string) ([]kvToken, error) {
	var out []kvToken
	start, depth := -1, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if start < 0 && c != ' ' && c != '\t' && c != '\n' {
			start = i
		}
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '{' && i+1 < len(s) && (s[i+1] == '{' || s[i+1] == '%'):
			depth++
			i++
		case (c == '}' || c == '%') && i+1 < len(s) && s[i+1] == '}' && depth > 0:
			depth--
			i++
		case (c == ' ' || c == '\t' || c == '\n') && depth == 0 && start >= 0:
			out = append(out, kvToken{raw: s[start:i], off: start})
			start = -1
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, clip(s))
	}
	if start >= 0 {
		out = append(out, kvToken{raw: s[start:], off: start})
	}
	return out, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 30 {
		return s[:30] + "..."
	}
	return s
}

// AnsibleAlias says which of ferry's modules runs an Ansible module name
// (short or FQCN) in a playbook, and how its parameters map: Ansible's name
// to ferry's, "-" for accepted and ignored. `ferry doc` uses it so that doc
// and playbooks resolve a name the same way.
func AnsibleAlias(name string) (module string, params map[string]string, ok bool) {
	m, a, ok := lookupAnsible(name)
	if !ok {
		return "", nil, false
	}
	if a != nil {
		params = a.params
	}
	return m, params, true
}

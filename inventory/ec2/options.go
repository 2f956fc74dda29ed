package ec2

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/internal/value"
	"github.com/ferrydeploy/ferry/internal/yamlnode"
)

// filterSet is one set of EC2 filters (name → values), in file order.
type filterSet []filter

type filter struct {
	Name   string
	Values []string
}

func (fs filterSet) has(name string) bool {
	for _, f := range fs {
		if f.Name == name {
			return true
		}
	}
	return false
}

type hostnamePref struct {
	Name      string // private-ip-address, tag:Name, ...
	Prefix    string // another preference whose value goes first (dict form)
	Separator string
}

type keyedGroup struct {
	Key               *vm.Program
	KeySrc            string
	Prefix            string
	Separator         string
	ParentGroup       string
	DefaultValue      *string
	TrailingSeparator bool
	LeadingSeparator  bool
}

type namedExpr struct {
	Name string
	Src  string
	Prog *vm.Program
}

type bastionOpt struct {
	Address string
	Filters filterSet
	User    string
	Port    int
}

// config is a parsed aws_ec2 inventory file.
type config struct {
	Regions            []string
	Filters            filterSet
	IncludeFilters     []filterSet
	ExcludeFilters     []filterSet
	Hostnames          []hostnamePref
	KeyedGroups        []keyedGroup
	Groups             []namedExpr
	Compose            []namedExpr
	AssumeRoles        []string
	IncludeBaseAccount *bool
	Bastion            *bastionOpt
	Profile            string
	EndpointURL        string
	Strict             bool
	Warnings           []string
}

var knownKeys = []string{"plugin", "regions", "filters", "include_filters", "exclude_filters", "hostnames",
	"keyed_groups", "groups", "compose", "assume_roles", "include_base_account", "bastion", "profile",
	"aws_profile", "endpoint_url", "strict", "iam_role_arn", "leading_separator"}

// Options of Ansible's plugin that ferry accepts and ignores, so an
// existing inventory file works unchanged.
var ignoredKeys = []string{"cache", "cache_plugin", "cache_timeout", "cache_connection", "cache_prefix",
	"strict_permissions", "use_contrib_script_compatible_sanitization", "use_contrib_script_compatible_ec2_tag_keys",
	"hostvars_prefix", "hostvars_suffix", "allow_duplicated_hosts", "use_ssm_inventory", "use_extra_vars",
	"aws_access_key", "aws_secret_key", "aws_security_token", "access_key", "secret_key", "session_token",
	"aws_access_key_id", "aws_secret_access_key", "validate_certs", "aws_ca_bundle", "aws_config"}

var hostnameNames = []string{"private-ip-address", "ip-address", "private-dns-name", "dns-name", "instance-id",
	"tag:NAME", "name"}

var keyedKeys = []string{"key", "prefix", "separator", "parent_group", "default_value", "trailing_separator", "leading_separator"}

var bastionKeys = []string{"filters", "user", "port", "address"}

type parser struct {
	doc  *yamlnode.Doc
	file string
	src  []byte
	vars map[string]any
	errs diag.List
}

func (p *parser) fail(n *yaml.Node, hint, format string, args ...any) {
	p.errs = append(p.errs, diag.New(p.src, diag.Pos{File: p.file, Line: n.Line, Col: n.Column}, hint, format, args...))
}

// parseConfig reads the inventory file. Every problem is a positioned error.
func parseConfig(file string, src []byte, vars map[string]any) (*config, error) {
	p := &parser{doc: yamlnode.New(0), file: file, src: src, vars: vars}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, diag.New(src, diag.Pos{File: file, Line: 1, Col: 1}, "", "YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, diag.New(src, diag.Pos{File: file, Line: 1, Col: 1}, "start the file with `plugin: aws_ec2`", "an aws_ec2 inventory must be a YAML mapping")
	}
	root := doc.Content[0]
	c := &config{Strict: false}
	leading := true
	var keyedNodes *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], p.doc.Resolve(root.Content[i+1])
		switch k.Value {
		case "plugin":
		case "regions":
			c.Regions = p.strings(v)
		case "filters":
			c.Filters = p.filters(v)
		case "include_filters", "exclude_filters":
			if v.Kind != yaml.SequenceNode {
				p.fail(v, "e.g.\n    - tag:Role: api", "%s must be a list of filter maps", k.Value)
				continue
			}
			for _, item := range v.Content {
				fs := p.filters(p.doc.Resolve(item))
				if k.Value == "include_filters" {
					c.IncludeFilters = append(c.IncludeFilters, fs)
				} else {
					c.ExcludeFilters = append(c.ExcludeFilters, fs)
				}
			}
		case "hostnames":
			c.Hostnames = p.hostnames(v)
		case "keyed_groups":
			keyedNodes = v
		case "groups":
			c.Groups = p.exprMap(v, "groups")
		case "compose":
			c.Compose = p.exprMap(v, "compose")
		case "assume_roles":
			c.AssumeRoles = append(c.AssumeRoles, p.strings(v)...)
		case "iam_role_arn":
			c.AssumeRoles = append(c.AssumeRoles, p.strings(v)...)
		case "include_base_account":
			b := p.boolean(v)
			c.IncludeBaseAccount = &b
		case "bastion":
			c.Bastion = p.bastion(v)
		case "profile", "aws_profile":
			c.Profile = p.scalar(v)
		case "endpoint_url":
			c.EndpointURL = p.endpointURL(v, c)
		case "strict":
			c.Strict = p.boolean(v)
		case "leading_separator":
			leading = p.boolean(v)
		default:
			if slices.Contains(ignoredKeys, k.Value) {
				c.Warnings = append(c.Warnings, fmt.Sprintf("%s:%d: option %q is ignored by ferry", file, k.Line, k.Value))
				continue
			}
			p.fail(k, suggest(k.Value, knownKeys), "unknown aws_ec2 option %q", k.Value)
		}
	}
	if keyedNodes != nil {
		c.KeyedGroups = p.keyedGroups(keyedNodes, leading)
	}
	for _, arn := range c.AssumeRoles {
		if !roleARN.MatchString(arn) {
			n := findScalar(root, arn)
			if n == nil {
				n = root
			}
			p.fail(n, "a role ARN looks like arn:aws:iam::123456789012:role/deploy", "%q is not an IAM role ARN", arn)
		}
	}
	if e := p.doc.Err(); e != nil {
		p.fail(e.Node, e.Hint(), "%s", e.Error())
	}
	if err := p.errs.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

var roleARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/.+$`)

// findScalar returns the first scalar node holding value (for positions), or nil.
func findScalar(root *yaml.Node, value string) *yaml.Node {
	if root.Kind == yaml.ScalarNode && root.Value == value {
		return root
	}
	for _, c := range root.Content {
		if n := findScalar(c, value); n != nil {
			return n
		}
	}
	return nil
}

// scalar returns a scalar's value with {{ }} rendered.
func (p *parser) scalar(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		p.fail(n, "", "expected a single value here")
		return ""
	}
	if n.Tag == "!!null" {
		return ""
	}
	return p.render(n, n.Value)
}

// render expands {{ expr }} with the caller's variables (env, ...), with
// the playbooks' template engine: the same expressions, functions and
// errors as in a playbook.
func (p *parser) render(n *yaml.Node, s string) string {
	if !template.HasTemplate(s) {
		return s
	}
	vars := p.vars
	if vars == nil {
		vars = map[string]any{}
	}
	t, err := template.CompileTemplate(s, diag.Pos{File: p.file, Line: n.Line, Col: n.Column})
	var out string
	if err == nil {
		out, err = t.RenderString(vars)
	}
	if err != nil {
		msg := err.Error()
		var ee *template.EvalError
		var de *diag.Error
		switch {
		case errors.As(err, &ee):
			msg = ee.Msg
		case errors.As(err, &de):
			msg = de.Msg
		}
		p.fail(n, "variables available here: "+strings.Join(slices.Sorted(maps.Keys(p.vars)), ", "), "cannot render %q: %s", s, msg)
		return ""
	}
	return out
}

func (p *parser) strings(n *yaml.Node) []string {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil
		}
		return []string{p.render(n, n.Value)}
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			c = p.doc.Resolve(c)
			if c.Kind != yaml.ScalarNode {
				p.fail(c, "", "expected a string")
				continue
			}
			out = append(out, p.render(c, c.Value))
		}
		return out
	}
	p.fail(n, "", "expected a string or a list of strings")
	return nil
}

func (p *parser) boolean(n *yaml.Node) bool {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return false
	}
	s := p.scalar(n)
	if b, ok := value.ParseBool(s); ok {
		return b
	}
	p.fail(n, "write "+value.Words, "expected true or false, not %q", s)
	return false
}

func (p *parser) filters(n *yaml.Node) filterSet {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.fail(n, "e.g. `tag:Role: api` or `instance-state-name: [running, stopped]`", "filters must be a map of EC2 filter names to values")
		return nil
	}
	var fs filterSet
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], p.doc.Resolve(n.Content[i+1])
		name := p.render(k, k.Value)
		if !validFilter(name) {
			p.fail(k, suggest(name, ec2FilterNames), "unknown EC2 filter %q", name)
			continue
		}
		fs = append(fs, filter{Name: name, Values: p.strings(v)})
	}
	return fs
}

// ec2FilterNames are DescribeInstances filters commonly used in
// inventories; others are accepted when they look like filter names.
var ec2FilterNames = []string{"instance-state-name", "instance-id", "instance-type", "availability-zone",
	"private-ip-address", "ip-address", "private-dns-name", "dns-name", "image-id", "vpc-id", "subnet-id",
	"key-name", "tag-key", "tag-value", "reservation-id", "instance-state-code", "architecture",
	"iam-instance-profile.arn", "network-interface.addresses.private-ip-address", "platform",
	"instance-lifecycle", "owner-id", "placement-group-name", "tenancy", "launch-time", "group-id", "group-name"}

func validFilter(name string) bool {
	if strings.HasPrefix(name, "tag:") && len(name) > 4 {
		return true
	}
	if slices.Contains(ec2FilterNames, name) {
		return true
	}
	// Other documented filters are dotted/dashed lowercase names; reject
	// anything else (typos such as "tag_Role" or "Tag:Role").
	return filterName.MatchString(name) && strings.ContainsAny(name, ".") && diag.Suggest(name, ec2FilterNames) == ""
}

var filterName = regexp.MustCompile(`^[a-z][a-z0-9.-]*$`)

func (p *parser) hostnames(n *yaml.Node) []hostnamePref {
	if n.Kind != yaml.SequenceNode {
		p.fail(n, "e.g. [tag:Name, private-ip-address]", "hostnames must be a list")
		return nil
	}
	var out []hostnamePref
	check := func(node *yaml.Node, name string) {
		if strings.HasPrefix(name, "tag:") && len(name) > 4 {
			return
		}
		if !slices.Contains(hostnameNames, name) || name == "name" || name == "tag:NAME" {
			p.fail(node, suggest(name, hostnameNames), "unknown hostname preference %q (known: private-ip-address, ip-address, private-dns-name, dns-name, tag:NAME, instance-id)", name)
		}
	}
	for _, item := range n.Content {
		item = p.doc.Resolve(item)
		switch item.Kind {
		case yaml.ScalarNode:
			name := p.render(item, item.Value)
			check(item, name)
			out = append(out, hostnamePref{Name: name})
		case yaml.MappingNode:
			h := hostnamePref{Separator: "_"}
			for i := 0; i+1 < len(item.Content); i += 2 {
				k, v := item.Content[i], p.doc.Resolve(item.Content[i+1])
				switch k.Value {
				case "name":
					h.Name = p.scalar(v)
					check(v, h.Name)
				case "prefix":
					h.Prefix = p.scalar(v)
					check(v, h.Prefix)
				case "separator":
					h.Separator = p.scalar(v)
				default:
					p.fail(k, diag.Suggest(k.Value, []string{"name", "prefix", "separator"}), "unknown hostnames key %q", k.Value)
				}
			}
			if h.Name == "" {
				p.fail(item, "", "a hostnames entry needs `name:`")
			}
			out = append(out, h)
		default:
			p.fail(item, "", "a hostnames entry is a preference name or {name:, prefix:, separator:}")
		}
	}
	return out
}

func (p *parser) compile(n *yaml.Node, src string) *vm.Program {
	prog, err := expr.Compile(jinjaToExpr(src), expr.AllowUndefinedVariables())
	if err != nil {
		msg := err.Error()
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		p.fail(n, "expressions use expr syntax, e.g. tags.Role or placement.availability_zone", "invalid expression %q: %s", src, msg)
		return nil
	}
	return prog
}

// jinjaToExpr strips the {{ }} some Ansible files put around expressions.
func jinjaToExpr(s string) string {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "{{") && strings.HasSuffix(t, "}}") && strings.Count(t, "{{") == 1 {
		return strings.TrimSpace(t[2 : len(t)-2])
	}
	return s
}

func (p *parser) exprMap(n *yaml.Node, what string) []namedExpr {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.fail(n, "", "%s must be a map of names to expressions", what)
		return nil
	}
	var out []namedExpr
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], p.doc.Resolve(n.Content[i+1])
		if v.Kind != yaml.ScalarNode {
			p.fail(v, "", "%s.%s must be an expression", what, k.Value)
			continue
		}
		src := v.Value
		if v.Tag == "!!bool" || v.Tag == "!!int" || v.Tag == "!!float" {
			src = strings.ToLower(v.Value)
		}
		if prog := p.compile(v, src); prog != nil {
			out = append(out, namedExpr{Name: k.Value, Src: src, Prog: prog})
		}
	}
	return out
}

func (p *parser) keyedGroups(n *yaml.Node, leading bool) []keyedGroup {
	if n.Kind != yaml.SequenceNode {
		p.fail(n, "e.g.\n    - key: tags.Role\n      prefix: role", "keyed_groups must be a list")
		return nil
	}
	var out []keyedGroup
	for _, item := range n.Content {
		item = p.doc.Resolve(item)
		if item.Kind != yaml.MappingNode {
			p.fail(item, "", "a keyed_groups entry is a map with key:, prefix:, separator:")
			continue
		}
		kg := keyedGroup{Separator: "_", TrailingSeparator: true, LeadingSeparator: leading}
		for i := 0; i+1 < len(item.Content); i += 2 {
			k, v := item.Content[i], p.doc.Resolve(item.Content[i+1])
			switch k.Value {
			case "key":
				if v.Kind != yaml.ScalarNode {
					p.fail(v, "", "key must be an expression")
					continue
				}
				kg.KeySrc = v.Value
				kg.Key = p.compile(v, v.Value)
			case "prefix":
				kg.Prefix = p.scalar(v)
			case "separator":
				kg.Separator = p.scalar(v)
			case "parent_group":
				kg.ParentGroup = p.scalar(v)
			case "default_value":
				s := p.scalar(v)
				kg.DefaultValue = &s
			case "trailing_separator":
				kg.TrailingSeparator = p.boolean(v)
			case "leading_separator":
				kg.LeadingSeparator = p.boolean(v)
			default:
				p.fail(k, diag.Suggest(k.Value, keyedKeys), "unknown keyed_groups key %q", k.Value)
			}
		}
		if kg.KeySrc == "" {
			p.fail(item, "e.g. key: tags.Role", "a keyed_groups entry needs key:")
			continue
		}
		out = append(out, kg)
	}
	return out
}

func (p *parser) bastion(n *yaml.Node) *bastionOpt {
	b := &bastionOpt{}
	switch n.Kind {
	case yaml.ScalarNode:
		b.Address = p.scalar(n)
		if b.Address == "" {
			return nil
		}
		return b
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], p.doc.Resolve(n.Content[i+1])
			switch k.Value {
			case "filters":
				b.Filters = p.filters(v)
			case "user":
				b.User = p.scalar(v)
			case "address":
				b.Address = p.scalar(v)
			case "port":
				s := p.scalar(v)
				port, err := strconv.Atoi(s)
				if err != nil || port <= 0 || port > 65535 {
					p.fail(v, "", "bastion port must be a number from 1 to 65535")
				}
				b.Port = port
			default:
				p.fail(k, diag.Suggest(k.Value, bastionKeys), "unknown bastion key %q", k.Value)
			}
		}
		if b.Address == "" && len(b.Filters) == 0 {
			p.fail(n, "e.g. bastion: {filters: {tag:Role: bastion}}", "bastion needs an address or filters that find it")
		}
		return b
	}
	p.fail(n, "", "bastion is an address or a map with filters:")
	return nil
}

// suggest prefers a candidate that extends the word (private-ip →
// private-ip-address), then the closest one by edit distance.
func suggest(word string, candidates []string) string {
	if word != "" {
		for _, c := range candidates {
			if strings.HasPrefix(c, word) {
				return fmt.Sprintf("did you mean %q?", c)
			}
		}
	}
	return diag.Suggest(word, candidates)
}

package inventory

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/yamlnode"
	"gopkg.in/yaml.v3"
)

// yamlRoot parses src and returns its top node (nil for an empty
// document), and the Doc that resolves its aliases.
func yamlRoot(file string, src []byte) (*yaml.Node, *yamlnode.Doc, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, nil, yamlError(file, src, err)
	}
	d := yamlnode.New(0)
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, d, nil
	}
	return d.Resolve(doc.Content[0]), d, nil
}

// expansionError is the document's alias expansion problem as a positioned
// error, or nil.
func expansionError(file string, src []byte, d *yamlnode.Doc) *diag.Error {
	e := d.Err()
	if e == nil {
		return nil
	}
	return diag.New(src, diag.Pos{File: file, Line: e.Node.Line, Col: e.Node.Column}, e.Hint(), "%s", e.Error())
}

// yamlError turns a yaml.v3 error into a positioned one.
func yamlError(file string, src []byte, err error) error { return diag.YAML(file, src, err) }

// yamlValue decodes a node into plain Go values with string map keys.
func yamlValue(d *yamlnode.Doc, n *yaml.Node) (any, error) {
	var v any
	yaml11Bools(n, 0)
	if err := d.Decode(n, &v); err != nil {
		return nil, err
	}
	return plain(v), nil
}

// yaml11Words are YAML 1.1's booleans beyond true/false: Ansible's YAML
// parser (PyYAML) reads an unquoted `yes` as true, yaml.v3 (YAML 1.2) as a string.
var yaml11Words = map[string]string{"yes": "true", "Yes": "true", "YES": "true", "on": "true", "On": "true", "ON": "true",
	"no": "false", "No": "false", "NO": "false", "off": "false", "Off": "false", "OFF": "false"}

// yaml11Bools retags plain (unquoted) YAML 1.1 booleans under n as booleans.
func yaml11Bools(n *yaml.Node, depth int) {
	if n == nil || depth > 200 {
		return
	}
	if n.Kind == yaml.ScalarNode && n.Style == 0 && n.Tag == "!!str" {
		if b, ok := yaml11Words[n.Value]; ok {
			n.Tag, n.Value = "!!bool", b
		}
		return
	}
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			continue // keys stay strings
		}
		yaml11Bools(c, depth+1)
	}
}

func plain(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = plain(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[scalarString(k)] = plain(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = plain(e)
		}
		return x
	}
	return v
}

var groupKeys = []string{"hosts", "children", "vars"}

type yamlParser struct {
	doc  *yamlnode.Doc
	file string
	src  []byte
	inv  *Inventory
	errs diag.List
}

func (p *yamlParser) fail(n *yaml.Node, hint, format string, args ...any) {
	p.errs = append(p.errs, diag.New(p.src, diag.Pos{File: p.file, Line: n.Line, Col: n.Column}, hint, format, args...))
}

func (p *yamlParser) warn(n *yaml.Node, format string, args ...any) {
	p.inv.Warnings = append(p.inv.Warnings, fmt.Sprintf("%s:%d:%d: %s", p.file, n.Line, n.Column, fmt.Sprintf(format, args...)))
}

// parseYAMLInventory reads an Ansible YAML inventory from its parsed root.
func parseYAMLInventory(file string, src []byte, doc *yamlnode.Doc, root *yaml.Node) (*Inventory, error) {
	p := &yamlParser{doc: doc, file: file, src: src, inv: New()}
	p.inv.Sources = []string{file}
	if root == nil {
		p.inv.Warnings = append(p.inv.Warnings, fmt.Sprintf("%s: empty inventory", file))
		return p.inv, nil
	}
	if root.Kind != yaml.MappingNode {
		p.fail(root, "start the file with `all:` and list hosts under `hosts:`", "a YAML inventory must be a mapping of group names, not %s", yamlnode.KindName(root))
		return nil, p.errs.Err()
	}
	for _, kv := range doc.Pairs(root, nil) {
		p.group(kv.Key, kv.Value, "")
	}
	if err := expansionError(file, src, doc); err != nil {
		p.errs = append(p.errs, err)
	}
	if err := p.errs.Err(); err != nil {
		return nil, err
	}
	p.inv.reconcile()
	return p.inv, nil
}

func (p *yamlParser) group(key, val *yaml.Node, parent string) {
	name := key.Value
	if key.Kind != yaml.ScalarNode || name == "" {
		p.fail(key, "", "a group name must be a non-empty string")
		return
	}
	p.inv.group(name)
	if parent != "" {
		if err := p.inv.addChild(parent, name); err != nil {
			p.fail(key, "", "%v", err)
			return
		}
	}
	if yamlnode.IsNull(val) {
		return
	}
	if val.Kind != yaml.MappingNode {
		p.fail(val, "a group holds `hosts:`, `children:` and `vars:` mappings", "group %q must be a mapping, not %s", name, yamlnode.KindName(val))
		return
	}
	for _, kv := range p.doc.Pairs(val, nil) {
		k, v := kv.Key, kv.Value
		switch k.Value {
		case "hosts":
			p.hosts(name, v)
		case "children":
			switch {
			case yamlnode.IsNull(v):
			case v.Kind == yaml.ScalarNode:
				p.group(v, nil, name)
			case v.Kind == yaml.MappingNode:
				for _, c := range p.doc.Pairs(v, nil) {
					p.group(c.Key, c.Value, name)
				}
			default:
				p.fail(v, "write each child group as a key ending in ':'", "children of group %q must be a mapping of group names, not %s", name, yamlnode.KindName(v))
			}
		case "vars":
			vars := p.vars(v, fmt.Sprintf("vars of group %q", name))
			g := p.inv.Groups[name]
			for k, x := range vars {
				g.Vars[k] = x
			}
		default:
			hint := suggest(k.Value, groupKeys)
			if hint == "" {
				hint = "a group holds only hosts:, children: and vars:; put a subgroup under children:"
			}
			p.fail(k, hint, "unknown key %q in group %q", k.Value, name)
		}
	}
}

func (p *yamlParser) hosts(group string, v *yaml.Node) {
	switch {
	case yamlnode.IsNull(v):
		return
	case v.Kind == yaml.ScalarNode:
		p.host(group, v, nil)
	case v.Kind == yaml.MappingNode:
		for _, kv := range p.doc.Pairs(v, nil) {
			p.host(group, kv.Key, kv.Value)
		}
	case v.Kind == yaml.SequenceNode:
		p.fail(v, "write each host as a key ending in ':' (e.g. `web1.example.com:`), not as a list item", "hosts of group %q must be a mapping of host names, not a list", group)
	default:
		p.fail(v, "", "hosts of group %q must be a mapping of host names, not %s", group, yamlnode.KindName(v))
	}
}

func (p *yamlParser) host(group string, key, val *yaml.Node) {
	if key.Kind != yaml.ScalarNode || key.Value == "" {
		p.fail(key, "", "a host name must be a non-empty string")
		return
	}
	names, port, err := expandHostPattern(key.Value)
	if err != nil {
		var re *rangeError
		col := key.Column
		if errors.As(err, &re) && key.Style == 0 {
			col += re.col
		}
		p.errs = append(p.errs, diag.New(p.src, diag.Pos{File: p.file, Line: key.Line, Col: col}, "", "%v", err))
		return
	}
	var vars map[string]any
	if !yamlnode.IsNull(val) {
		if val.Kind != yaml.MappingNode {
			p.fail(val, "put the host's variables in a mapping under it, or leave it empty", "variables of host %q must be a mapping, not %s", key.Value, yamlnode.KindName(val))
			return
		}
		vars = p.vars(val, fmt.Sprintf("variables of host %q", key.Value))
	}
	for _, n := range names {
		h := p.inv.host(n)
		if port != 0 {
			h.own["ansible_port"] = port
		}
		for k, x := range vars {
			h.own[k] = x
		}
		if group != "all" && group != "ungrouped" {
			p.inv.addHostToGroup(h, group)
		} else if group == "ungrouped" {
			p.inv.addHostToGroup(h, "ungrouped")
		}
	}
}

// vars decodes a variables mapping, checking well-known variables where
// they are written.
func (p *yamlParser) vars(n *yaml.Node, what string) map[string]any {
	return yamlVars(p.doc, n, what, p.fail, p.warn)
}

func yamlVars(doc *yamlnode.Doc, n *yaml.Node, what string, fail func(*yaml.Node, string, string, ...any), warn func(*yaml.Node, string, ...any)) map[string]any {
	out := map[string]any{}
	if yamlnode.IsNull(n) {
		return out
	}
	if n.Kind != yaml.MappingNode {
		fail(n, "write variables as `name: value` lines", "%s must be a mapping, not %s", what, yamlnode.KindName(n))
		return out
	}
	for _, kv := range doc.Pairs(n, nil) {
		k, v := kv.Key, kv.Value
		if k.Kind != yaml.ScalarNode {
			fail(k, "", "a variable name must be a string")
			continue
		}
		if v.Tag == "!vault" {
			warn(v, "%s is vault-encrypted: ferry does not decrypt vault values, it keeps the ciphertext", k.Value)
		}
		x, err := yamlValue(doc, v)
		if doc.Err() != nil {
			return out // reported once, by the caller
		}
		if err != nil {
			fail(v, "", "%s: %v", k.Value, strings.TrimPrefix(err.Error(), "yaml: "))
			continue
		}
		if err := checkVar(k.Value, x); err != nil {
			fail(v, "", "%v", err)
			continue
		}
		out[k.Value] = x
	}
	return out
}

// Package yamlnode is what every ferry loader (playbooks, inventories,
// aws_ec2 options, extra vars) needs from yaml.v3 nodes beyond parsing:
// aliases resolved under one expansion budget for the whole document,
// YAML merge keys, and names of node kinds for error messages.
//
// The budget is the point: yaml.v3 bounds alias expansion within one
// Decode call, but a loader walks and decodes a document piece by piece,
// so a few kilobytes of nested aliases ("billion laughs") could still
// make it build gigabytes or spend minutes. A Doc charges every alias a
// walk follows, and every Decode, with the number of nodes it expands to,
// and stops expanding once the document has spent its budget.
package yamlnode

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// DefaultMax is the number of nodes aliases may expand to in one document:
// room for an inventory of 10,000 hosts that each alias a 20-variable
// anchor, far below what would exhaust memory.
const DefaultMax = 500_000

// Doc is one parsed document being loaded. Not safe for concurrent use.
type Doc struct {
	max  int
	used int
	size map[*yaml.Node]int  // expanded size of a node (aliases followed), saturated at max+1
	ext  map[*yaml.Node]int  // nodes under a node reached through aliases, saturated
	busy map[*yaml.Node]bool // nodes whose Size is being computed
	mrg  map[*yaml.Node]bool // mappings whose merges are being read
	err  *Error
}

// Error says where a document's alias expansion was stopped.
type Error struct {
	Node  *yaml.Node // the alias (or decoded node) that went over, or the anchor that contains itself
	Cycle bool       // an alias inside the node it names
	Max   int
}

func (e *Error) Error() string {
	if e.Cycle {
		return "alias refers to the node that contains it"
	}
	return fmt.Sprintf("document too large (aliases expand to over %d nodes)", e.Max)
}

// Hint is what to tell the author.
func (e *Error) Hint() string {
	if e.Cycle {
		return "an anchor cannot contain an alias to itself"
	}
	return "repeat fewer aliases, or write the values out"
}

// New returns a Doc whose aliases may expand to max nodes (DefaultMax when max <= 0).
func New(max int) *Doc {
	if max <= 0 {
		max = DefaultMax
	}
	return &Doc{max: max, size: map[*yaml.Node]int{}, ext: map[*yaml.Node]int{}, busy: map[*yaml.Node]bool{}, mrg: map[*yaml.Node]bool{}}
}

// Err is the first expansion problem, or nil. Loaders report it once, with
// the node's position.
func (d *Doc) Err() *Error { return d.err }

func (d *Doc) fail(n *yaml.Node, cycle bool) {
	if d.err == nil {
		d.err = &Error{Node: n, Cycle: cycle, Max: d.max}
	}
}

func (d *Doc) sat(n int) int {
	if n > d.max {
		return d.max + 1
	}
	return n
}

// Size is the number of nodes n stands for with every alias expanded
// (saturated just above the budget; an anchor that contains itself counts
// as over the budget).
func (d *Doc) Size(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	if s, ok := d.size[n]; ok {
		return s
	}
	if d.busy[n] {
		d.fail(n, true)
		return d.max + 1
	}
	d.busy[n] = true
	s := 1
	if n.Kind == yaml.AliasNode {
		s = d.Size(n.Alias)
	} else {
		for _, c := range n.Content {
			s = d.sat(s + d.Size(c))
		}
	}
	delete(d.busy, n)
	d.size[n] = s
	return s
}

// expansion is the number of nodes under n that are reached through aliases.
func (d *Doc) expansion(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	if e, ok := d.ext[n]; ok {
		return e
	}
	e := 0
	if n.Kind == yaml.AliasNode {
		e = d.Size(n.Alias)
	} else {
		for _, c := range n.Content {
			e = d.sat(e + d.expansion(c))
		}
	}
	d.ext[n] = e
	return e
}

func (d *Doc) spend(n *yaml.Node, cost int) bool {
	if d.err != nil {
		return false
	}
	d.used += cost
	if d.used > d.max {
		d.fail(n, false)
		return false
	}
	return true
}

// Resolve follows aliases to the node they name, charging the budget with
// the size of what it names. Once the budget is spent (or the alias is
// inside its own anchor) it returns an empty null node at the alias's
// position instead, so that no walk expands further; Err says why.
func (d *Doc) Resolve(n *yaml.Node) *yaml.Node {
	if n == nil || n.Kind != yaml.AliasNode {
		return n
	}
	at := n
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if n.Alias == nil || i > 100 {
			return stub(at)
		}
		n = n.Alias
	}
	if !d.spend(at, d.Size(n)) {
		return stub(at)
	}
	return n
}

func stub(at *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: at.Line, Column: at.Column}
}

// Decode decodes n into v (yaml.Node.Decode), charging the budget with the
// nodes its aliases expand to.
func (d *Doc) Decode(n *yaml.Node, v any) error {
	if e := d.expansion(n); e > 0 || d.err != nil {
		if !d.spend(n, e) {
			return d.err
		}
	}
	return n.Decode(v)
}

// Pair is one key: value of a mapping, aliases resolved. Merged is set for
// entries that come from a merge key.
type Pair struct {
	Key, Value *yaml.Node
	Merged     bool
}

// IsMerge reports whether k is the YAML merge key `<<`.
func IsMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && (k.Tag == "!!merge" || (k.Value == "<<" && k.Style == 0))
}

// Pairs lists mapping m's entries with merge keys (`<<: *defaults`, or a
// list of aliases) applied: m's own entries in order (duplicates included,
// for the caller to report), then each merged entry whose key neither m
// nor an earlier merge sets. bad, if not nil, is called with every merge
// source that is not a mapping.
func (d *Doc) Pairs(m *yaml.Node, bad func(src *yaml.Node)) []Pair {
	var own, merged []Pair
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := d.Resolve(m.Content[i]), d.Resolve(m.Content[i+1])
		if !IsMerge(k) {
			own = append(own, Pair{Key: k, Value: v})
			continue
		}
		srcs := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			srcs = v.Content
		}
		for _, s := range srcs {
			s = d.Resolve(s)
			if s.Kind != yaml.MappingNode {
				if bad != nil {
					bad(s)
				}
				continue
			}
			if d.mrg[s] { // a mapping that merges itself
				d.fail(s, true)
				continue
			}
			d.mrg[s] = true
			for _, p := range d.Pairs(s, bad) {
				p.Merged = true
				merged = append(merged, p)
			}
			delete(d.mrg, s)
		}
	}
	seen := make(map[string]bool, len(own))
	for _, p := range own {
		if p.Key.Kind == yaml.ScalarNode {
			seen[p.Key.Value] = true
		}
	}
	out := own
	for _, p := range merged {
		if p.Key.Kind == yaml.ScalarNode && !seen[p.Key.Value] {
			seen[p.Key.Value] = true
			out = append(out, p)
		}
	}
	return out
}

// IsNull reports whether n is absent or a YAML null.
func IsNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// KindName names what n is, for messages such as "want a list, not a
// mapping" or "not a string ("api")".
func KindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!bool":
			return "a bool"
		case "!!int", "!!float":
			return "a number"
		}
		return fmt.Sprintf("a string (%q)", clip(n.Value))
	case yaml.AliasNode:
		return "an alias"
	}
	return "something else"
}

func clip(s string) string {
	if len(s) > 30 {
		return s[:30] + "..."
	}
	return s
}

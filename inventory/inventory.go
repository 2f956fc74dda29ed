// Package inventory loads the hosts ferry deploys to: Ansible's static YAML
// and INI inventories (with group_vars/ and host_vars/), and any source a
// registered plugin understands (EC2 lives in its own package). It resolves
// each host's variables with Ansible's precedence, normalizes the connection
// settings (address, user, port, key, bastion chain) and matches host patterns.
package inventory

import (
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Host is one inventory host.
type Host struct {
	Name   string
	Groups []string       // the host's groups, sorted, without "all" (Ansible's group_names)
	Vars   map[string]any // merged variables, well-known keys normalized

	own      map[string]any // variables set on the host in an inventory source
	fileVars map[string]any // host_vars/ files
	conn     conn           // connection settings resolved from Vars
}

// Jump is one bastion hop of a host's ProxyJump chain.
type Jump struct {
	User         string
	Host         string
	Port         int // 0: default
	IdentityFile string
}

// String renders the hop as ProxyJump does: [user@]host[:port].
func (j Jump) String() string {
	s := j.Host
	if j.Port != 0 {
		s = fmt.Sprintf("%s:%d", bracketIPv6(j.Host), j.Port)
	}
	if j.User != "" {
		s = j.User + "@" + s
	}
	return s
}

// Address is the host's network address (ansible_host), or its name.
func (h *Host) Address() string {
	if h.conn.address != "" {
		return h.conn.address
	}
	return h.Name
}

// User is the SSH login set by the inventory, or "" (ssh config and defaults decide).
func (h *Host) User() string { return h.conn.user }

// Port is the SSH port set by the inventory, or 0 when unset.
func (h *Host) Port() int { return h.conn.port }

// IdentityFile is the private key path set by the inventory, or "".
func (h *Host) IdentityFile() string { return h.conn.identityFile }

// Jumps is the ProxyJump chain set by the inventory, outermost hop first.
func (h *Host) Jumps() []Jump { return append([]Jump(nil), h.conn.jumps...) }

// Group is one inventory group.
type Group struct {
	Name     string
	Hosts    []string       // hosts placed directly in the group, in inventory order
	Children []string       // child groups, in the order they were added
	Vars     map[string]any // variables set on the group in an inventory source

	fileVars map[string]any // group_vars/ files
	parents  []string
	hostSet  map[string]bool // Hosts as a set, for large inventories
}

// Inventory is the merged result of every source. Load returns it resolved:
// from then on its read methods are safe for concurrent use as long as
// nothing mutates it (AddHost, AddChild, SetGroupVars, Merge mark it for
// re-resolution on the next read).
type Inventory struct {
	Hosts    []*Host // inventory order: the order hosts first appeared
	Groups   map[string]*Group
	Sources  []string
	Warnings []string

	hostIdx    map[string]int
	groupOrder []string // creation order, for --list and --graph
	dirty      bool
	implicit   *Host      // Ansible's implicit localhost, once a pattern named it (see localhost.go)
	implicitMu sync.Mutex // guards implicit, which read methods create
	// implicitVars holds host_vars/localhost (127.0.0.1, ::1) when the
	// inventory does not list that host: the implicit localhost's, by name.
	implicitVars map[string]map[string]any
}

// New returns an empty inventory holding the implicit groups all and ungrouped.
func New() *Inventory {
	inv := &Inventory{Groups: map[string]*Group{}, hostIdx: map[string]int{}}
	inv.group("all")
	inv.group("ungrouped")
	inv.link("all", "ungrouped")
	return inv
}

func (inv *Inventory) init() {
	if inv.Groups == nil {
		inv.Groups = map[string]*Group{}
	}
	if inv.hostIdx == nil {
		inv.hostIdx = map[string]int{}
		for i, h := range inv.Hosts {
			inv.hostIdx[h.Name] = i
		}
	}
	if _, ok := inv.Groups["all"]; !ok {
		inv.group("all")
	}
	if _, ok := inv.Groups["ungrouped"]; !ok {
		inv.group("ungrouped")
		inv.link("all", "ungrouped")
	}
}

// group returns the named group, creating it (without parents) if needed.
func (inv *Inventory) group(name string) *Group {
	if g, ok := inv.Groups[name]; ok {
		return g
	}
	g := &Group{Name: name, Vars: map[string]any{}}
	inv.Groups[name] = g
	inv.groupOrder = append(inv.groupOrder, name)
	inv.dirty = true
	return g
}

// host returns the named host, creating it if needed.
func (inv *Inventory) host(name string) *Host {
	if i, ok := inv.hostIdx[name]; ok {
		return inv.Hosts[i]
	}
	h := &Host{Name: name, own: map[string]any{}}
	inv.hostIdx[name] = len(inv.Hosts)
	inv.Hosts = append(inv.Hosts, h)
	inv.dirty = true
	return h
}

// link makes child a child group of parent; both must exist. It does not
// check for cycles (see addChild).
func (inv *Inventory) link(parent, child string) {
	p, c := inv.Groups[parent], inv.Groups[child]
	if !slices.Contains(p.Children, child) {
		p.Children = append(p.Children, child)
	}
	if !slices.Contains(c.parents, parent) {
		c.parents = append(c.parents, parent)
	}
	inv.dirty = true
}

// addChild links parent → child, creating both, unless that makes a loop.
func (inv *Inventory) addChild(parent, child string) error {
	inv.group(parent)
	inv.group(child)
	if parent == child || inv.isAncestor(child, parent) {
		return fmt.Errorf("adding group %q as a child of %q makes a loop", child, parent)
	}
	inv.link(parent, child)
	return nil
}

// isAncestor reports whether a is an ancestor of g.
func (inv *Inventory) isAncestor(a, g string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(n string) bool {
		if seen[n] {
			return false
		}
		seen[n] = true
		grp := inv.Groups[n]
		if grp == nil {
			return false
		}
		for _, p := range grp.parents {
			if p == a || walk(p) {
				return true
			}
		}
		return false
	}
	return walk(g)
}

func (inv *Inventory) addHostToGroup(h *Host, group string) {
	g := inv.group(group)
	if g.hostSet == nil || len(g.hostSet) != len(g.Hosts) {
		g.hostSet = make(map[string]bool, len(g.Hosts))
		for _, n := range g.Hosts {
			g.hostSet[n] = true
		}
	}
	if !g.hostSet[h.Name] {
		g.hostSet[h.Name] = true
		g.Hosts = append(g.Hosts, h.Name)
	}
	inv.dirty = true
}

// AddHost adds h (or merges it into the host of the same name: its Vars are
// set over the existing ones) and places it in groups, creating them as
// children of all. Plugins build their inventory with it.
func (inv *Inventory) AddHost(h *Host, groups ...string) {
	inv.init()
	dst := inv.host(h.Name)
	for k, v := range h.Vars {
		dst.own[k] = v
	}
	for _, g := range append(append([]string(nil), h.Groups...), groups...) {
		if g == "" || g == "all" {
			continue
		}
		if _, ok := inv.Groups[g]; !ok {
			inv.group(g)
			inv.link("all", g)
		}
		inv.addHostToGroup(dst, g)
	}
	// Connection settings are usable right away, before the inventory is resolved.
	dst.conn, _ = connFromLevels([]map[string]any{dst.own})
	inv.dirty = true
}

// AddChild makes child a child group of parent, creating them as needed
// (a new parent becomes a child of all). It refuses loops.
func (inv *Inventory) AddChild(parent, child string) error {
	inv.init()
	_, had := inv.Groups[parent]
	if err := inv.addChild(parent, child); err != nil {
		return err
	}
	if !had && parent != "all" {
		inv.link("all", parent)
	}
	return nil
}

// SetGroupVars sets variables on a group, creating it as a child of all if needed.
func (inv *Inventory) SetGroupVars(group string, vars map[string]any) {
	inv.init()
	if _, ok := inv.Groups[group]; !ok {
		inv.group(group)
		if group != "all" {
			inv.link("all", group)
		}
	}
	g := inv.Groups[group]
	for k, v := range vars {
		g.Vars[k] = v
	}
	inv.dirty = true
}

// Merge adds other's hosts, groups and variables; other's values win.
func (inv *Inventory) Merge(other *Inventory) {
	if other == nil {
		return
	}
	inv.init()
	other.init()
	for _, name := range other.groupOrder {
		og := other.Groups[name]
		g := inv.group(name)
		for k, v := range og.Vars {
			g.Vars[k] = v
		}
		if len(og.fileVars) > 0 {
			if g.fileVars == nil {
				g.fileVars = map[string]any{}
			}
			for k, v := range og.fileVars {
				g.fileVars[k] = v
			}
		}
	}
	for _, name := range other.groupOrder {
		for _, c := range other.Groups[name].Children {
			if inv.isAncestor(c, name) || c == name {
				inv.Warnings = append(inv.Warnings, fmt.Sprintf("ignored group %q as a child of %q: it would make a loop", c, name))
				continue
			}
			inv.link(name, c)
		}
	}
	for _, oh := range other.Hosts {
		h := inv.host(oh.Name)
		for k, v := range oh.own {
			h.own[k] = v
		}
		if len(oh.fileVars) > 0 {
			if h.fileVars == nil {
				h.fileVars = map[string]any{}
			}
			for k, v := range oh.fileVars {
				h.fileVars[k] = v
			}
		}
	}
	for _, name := range other.groupOrder {
		for _, hn := range other.Groups[name].Hosts {
			if i, ok := inv.hostIdx[hn]; ok {
				inv.addHostToGroup(inv.Hosts[i], name)
			}
		}
	}
	inv.Sources = append(inv.Sources, other.Sources...)
	inv.Warnings = append(inv.Warnings, other.Warnings...)
	inv.dirty = true
}

// Host returns the named host: an inventory host, else for localhost,
// 127.0.0.1 or ::1 the implicit localhost (as Ansible's get_host does).
func (inv *Inventory) Host(name string) (*Host, bool) {
	inv.ensure()
	i, ok := inv.hostIdx[name]
	if !ok {
		if IsLocalhostName(name) {
			return inv.implicitLocalhost(name), true
		}
		return nil, false
	}
	return inv.Hosts[i], true
}

// GroupNames returns every group name, sorted.
func (inv *Inventory) GroupNames() []string {
	inv.ensure()
	names := make([]string, 0, len(inv.Groups))
	for n := range inv.Groups {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ensure resolves the inventory if it changed since the last resolve.
func (inv *Inventory) ensure() {
	inv.init()
	if inv.dirty {
		inv.resolve()
	}
}

// reconcile applies Ansible's rules after a source is parsed: groups without
// a parent become children of all.
func (inv *Inventory) reconcile() {
	for _, name := range inv.groupOrder {
		g := inv.Groups[name]
		if name != "all" && len(g.parents) == 0 {
			inv.link("all", name)
		}
	}
}

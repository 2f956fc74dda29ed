package inventory

import (
	"maps"
)

// Ansible's implicit localhost: a pattern naming exactly localhost,
// 127.0.0.1 or ::1 selects the controller when the inventory does not list
// that name. It connects locally, sees the variables of group all, is in no
// group (so `all` and `ungrouped` never include it) and is not in Hosts:
// --list and --graph do not show it. A listed host of that name wins.

// IsLocalhostName reports whether name is one Ansible's implicit localhost answers to.
func IsLocalhostName(name string) bool {
	switch name {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// implicitIdx stands for the implicit localhost among host indexes: below
// every inventory host, so it sorts first (the controller runs first).
const implicitIdx = -1

// implicitLocalhost returns the implicit localhost, creating it under name
// (the first name a pattern used, as Ansible names it). Like Ansible, it is
// one host whichever of the names later patterns use.
// Read methods create it, so creation is guarded: concurrent reads stay safe.
func (inv *Inventory) implicitLocalhost(name string) *Host {
	inv.implicitMu.Lock()
	defer inv.implicitMu.Unlock()
	if inv.implicit == nil {
		inv.implicit = &Host{Name: name, own: map[string]any{"ansible_connection": "local"}}
		inv.resolveImplicit()
	}
	return inv.implicit
}

// Implicit reports whether h is the implicit localhost, not an inventory host.
func (inv *Inventory) Implicit(h *Host) bool {
	if inv == nil || h == nil {
		return false
	}
	inv.implicitMu.Lock()
	defer inv.implicitMu.Unlock()
	return h == inv.implicit
}

// resolveImplicit gives the implicit localhost the variables of group all
// (inventory, then group_vars/all) under its own and host_vars/NAME, and
// no group.
func (inv *Inventory) resolveImplicit() {
	h := inv.implicit
	if h == nil {
		return
	}
	var levels []map[string]any
	if all := inv.Groups["all"]; all != nil {
		levels = append(levels, all.Vars, all.fileVars)
	}
	h.fileVars = inv.implicitVars[h.Name] // host_vars/NAME, as for a listed host
	levels = append(levels, h.own, h.fileVars)
	vars := map[string]any{}
	for _, l := range levels {
		maps.Copy(vars, l)
	}
	h.conn, _ = connFromLevels(levels)
	h.Groups = nil
	normalize(h, vars)
	h.Vars = vars
}

// hostAt returns the host at index i of a match (implicitIdx: the implicit localhost).
func (inv *Inventory) hostAt(i int) *Host {
	if i == implicitIdx {
		inv.implicitMu.Lock()
		defer inv.implicitMu.Unlock()
		return inv.implicit
	}
	return inv.Hosts[i]
}

// LocalhostOnly reports whether every term of pattern names localhost,
// 127.0.0.1 or ::1: a play on it runs on the controller.
func LocalhostOnly(pattern string) bool {
	terms := splitPattern(pattern)
	for _, t := range terms {
		if !IsLocalhostName(t) {
			return false
		}
	}
	return len(terms) > 0
}

package inventory

import (
	"slices"
	"sort"

	"github.com/ferrydeploy/ferry/internal/value"
)

// resolve computes group depths, ungrouped membership, each host's groups
// and merged variables. Precedence follows Ansible, later winning:
// inventory group vars (all, then by depth, ansible_group_priority, name)
// < group_vars/all < group_vars/<group> (same order) < inventory host vars
// < host_vars/<host>.
func (inv *Inventory) resolve() {
	inv.dirty = false
	inv.reconcile()

	depth := map[string]int{}
	var depthOf func(string, map[string]bool) int
	depthOf = func(n string, visiting map[string]bool) int {
		if d, ok := depth[n]; ok {
			return d
		}
		if n == "all" || visiting[n] {
			return 0
		}
		visiting[n] = true
		d := 0
		for _, p := range inv.Groups[n].parents {
			if pd := depthOf(p, visiting) + 1; pd > d {
				d = pd
			}
		}
		delete(visiting, n)
		depth[n] = d
		return d
	}
	for _, n := range inv.groupOrder {
		depthOf(n, map[string]bool{})
	}
	priority := func(n string) int {
		if v, ok := inv.Groups[n].Vars["ansible_group_priority"]; ok {
			if p, ok := value.Int(v); ok {
				return p
			}
		}
		return 1
	}

	direct := map[string][]string{}
	for _, n := range inv.groupOrder {
		if n == "all" || n == "ungrouped" {
			continue
		}
		for _, hn := range inv.Groups[n].Hosts {
			direct[hn] = append(direct[hn], n)
		}
	}
	all := inv.Groups["all"]
	ungrouped := inv.Groups["ungrouped"]
	ungrouped.Hosts = ungrouped.Hosts[:0]
	for _, h := range inv.Hosts {
		if len(direct[h.Name]) == 0 {
			ungrouped.Hosts = append(ungrouped.Hosts, h.Name)
		}
	}
	inv.order()
	all.Hosts = all.Hosts[:0]
	var warns []string
	for _, h := range inv.Hosts {
		all.Hosts = append(all.Hosts, h.Name)
		set := map[string]bool{}
		var add func(string)
		add = func(n string) {
			if set[n] || n == "all" {
				return
			}
			set[n] = true
			for _, p := range inv.Groups[n].parents {
				add(p)
			}
		}
		for _, g := range direct[h.Name] {
			add(g)
		}
		if len(set) == 0 {
			set["ungrouped"] = true
		}
		groups := make([]string, 0, len(set))
		for n := range set {
			groups = append(groups, n)
		}
		sort.Strings(groups)
		h.Groups = groups

		ordered := append([]string(nil), groups...)
		sort.SliceStable(ordered, func(i, j int) bool {
			a, b := ordered[i], ordered[j]
			if depth[a] != depth[b] {
				return depth[a] < depth[b]
			}
			if pa, pb := priority(a), priority(b); pa != pb {
				return pa < pb
			}
			return a < b
		})
		levels := []map[string]any{all.Vars}
		for _, n := range ordered {
			levels = append(levels, inv.Groups[n].Vars)
		}
		levels = append(levels, all.fileVars)
		for _, n := range ordered {
			levels = append(levels, inv.Groups[n].fileVars)
		}
		levels = append(levels, h.own, h.fileVars)

		vars := map[string]any{}
		for _, l := range levels {
			for k, v := range l {
				vars[k] = v
			}
		}
		c, w := connFromLevels(levels)
		warns = append(warns, w...)
		h.conn = c
		normalize(h, vars)
		h.Vars = vars
	}
	inv.resolveImplicit()
	for _, w := range warns {
		if !slices.Contains(inv.Warnings, w) {
			inv.Warnings = append(inv.Warnings, w)
		}
	}
}

// order sorts Hosts into Ansible's order for `all`: groups breadth-first
// from all (ungrouped first, children in the order they were added), each
// group's hosts in the order they were added to it. Ansible walks each level
// as a set; ferry keeps the level's order so the result is stable.
func (inv *Inventory) order() {
	rank := make(map[string]int, len(inv.Hosts))
	seenG := map[string]bool{"all": true}
	level := []string{"all"}
	for len(level) > 0 {
		var next []string
		for _, n := range level {
			g := inv.Groups[n]
			if n != "all" {
				for _, h := range g.Hosts {
					if _, ok := rank[h]; !ok {
						rank[h] = len(rank)
					}
				}
			}
			for _, c := range g.Children {
				if !seenG[c] {
					seenG[c] = true
					next = append(next, c)
				}
			}
		}
		level = next
	}
	// Hosts only reachable through groups outside the tree (none after
	// reconcile) keep their relative order at the end.
	pos := make(map[*Host]int, len(inv.Hosts))
	for i, h := range inv.Hosts {
		pos[h] = i
	}
	sort.SliceStable(inv.Hosts, func(i, j int) bool {
		ri, oki := rank[inv.Hosts[i].Name]
		rj, okj := rank[inv.Hosts[j].Name]
		switch {
		case oki && okj:
			return ri < rj
		case oki != okj:
			return oki
		}
		return pos[inv.Hosts[i]] < pos[inv.Hosts[j]]
	})
	for i, h := range inv.Hosts {
		inv.hostIdx[h.Name] = i
	}
}

// normalize writes the resolved connection settings and ferry's per-host
// variables into vars, so every alias of a setting holds the winning value.
func normalize(h *Host, vars map[string]any) {
	c := h.conn
	vars["inventory_hostname"] = h.Name
	vars["address"] = h.Address()
	vars["user"] = c.user
	port := c.port
	if port == 0 {
		port = 22
	}
	vars["port"] = port
	if c.identityFile != "" {
		vars["identity_file"] = c.identityFile
	}
	groups := append([]string(nil), h.Groups...)
	vars["groups"] = groups
	vars["group_names"] = append([]string(nil), groups...)
	for _, k := range aliasHost {
		if _, ok := vars[k]; ok && c.address != "" {
			vars[k] = c.address
		}
	}
	for _, k := range aliasUser {
		if _, ok := vars[k]; ok {
			vars[k] = c.user
		}
	}
	for _, k := range aliasPort {
		if _, ok := vars[k]; ok && c.port != 0 {
			vars[k] = c.port
		}
	}
	for _, k := range aliasKey {
		if _, ok := vars[k]; ok && c.identityFile != "" {
			vars[k] = c.identityFile
		}
	}
	if len(c.jumps) > 0 {
		hops := make([]any, len(c.jumps))
		for i, j := range c.jumps {
			m := map[string]any{"host": j.Host}
			if j.User != "" {
				m["user"] = j.User
			}
			if j.Port != 0 {
				m["port"] = j.Port
			}
			if j.IdentityFile != "" {
				m["identity_file"] = j.IdentityFile
			}
			hops[i] = m
		}
		vars["jumps"] = hops
	}
}

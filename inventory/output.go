package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ferrydeploy/ferry/diag"
)

// ListJSON renders the inventory as `ansible-inventory --list` does:
// {"_meta": {"hostvars": {...}}, "all": {"children": [...]}, "GROUP":
// {"hosts": [...], "children": [...]}}, empty keys and empty groups left
// out, indented by four spaces. Host variables are the merged ones.
func (inv *Inventory) ListJSON() ([]byte, error) {
	return inv.listJSON(false)
}

// ComputedKeys are the variables ferry adds to every host (its resolved
// connection and groups), which ansible-inventory does not show.
var ComputedKeys = []string{"inventory_hostname", "address", "user", "port", "groups", "group_names", "identity_file", "jumps"}

// WithoutComputed returns vars without the ComputedKeys that h's sources do
// not set themselves: what ansible-inventory shows for the host.
func (inv *Inventory) WithoutComputed(h *Host, vars map[string]any) map[string]any {
	out := make(map[string]any, len(vars))
	for k, v := range vars {
		out[k] = v
	}
	for _, k := range ComputedKeys {
		if !inv.setBySource(h, k) {
			delete(out, k)
		}
	}
	return out
}

// setBySource reports whether an inventory source or vars file sets key for h.
func (inv *Inventory) setBySource(h *Host, key string) bool {
	if _, ok := h.own[key]; ok {
		return true
	}
	if _, ok := h.fileVars[key]; ok {
		return true
	}
	for _, name := range append([]string{"all"}, h.Groups...) {
		if g, ok := inv.Groups[name]; ok {
			if _, ok := g.Vars[key]; ok {
				return true
			}
			if _, ok := g.fileVars[key]; ok {
				return true
			}
		}
	}
	return false
}

// ListJSONAnsible is ListJSON without ferry's computed keys: byte for byte
// what `ansible-inventory --list` prints for the same sources.
func (inv *Inventory) ListJSONAnsible() ([]byte, error) {
	b, err := inv.listJSON(false)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("encode inventory: %w", err)
	}
	hv, _ := m["_meta"].(map[string]any)["hostvars"].(map[string]any)
	for name, v := range hv {
		h, ok := inv.Host(name)
		vars, _ := v.(map[string]any)
		if !ok || vars == nil {
			continue
		}
		vars = inv.WithoutComputed(h, vars)
		if len(vars) == 0 {
			delete(hv, name)
		} else {
			hv[name] = vars
		}
	}
	return marshalIndent(m)
}

// ExportJSON is `ansible-inventory --list --export`: group variables stay on
// their groups ("vars") and hostvars hold only what was set on each host.
func (inv *Inventory) ExportJSON() ([]byte, error) {
	return inv.listJSON(true)
}

func (inv *Inventory) listJSON(export bool) ([]byte, error) {
	inv.ensure()
	out := map[string]any{}
	seen := map[string]bool{}
	var format func(name string)
	format = func(name string) {
		g := inv.Groups[name]
		entry := map[string]any{}
		if name != "all" && len(g.Hosts) > 0 {
			entry["hosts"] = append([]string(nil), g.Hosts...)
		}
		if len(g.Children) > 0 {
			entry["children"] = append([]string(nil), g.Children...)
		}
		if export {
			vars := map[string]any{}
			for k, v := range g.Vars {
				vars[k] = v
			}
			for k, v := range g.fileVars {
				vars[k] = v
			}
			if len(vars) > 0 {
				entry["vars"] = vars
			}
		}
		if len(entry) > 0 {
			out[name] = entry
		}
		for _, c := range g.Children {
			if !seen[c] {
				seen[c] = true
				format(c)
			}
		}
	}
	seen["all"] = true
	format("all")
	hostvars := map[string]any{}
	for _, h := range inv.Hosts {
		if export {
			vars := map[string]any{}
			for k, v := range h.own {
				vars[k] = v
			}
			for k, v := range h.fileVars {
				vars[k] = v
			}
			if len(vars) > 0 {
				hostvars[h.Name] = vars
			}
			continue
		}
		if len(h.Vars) > 0 {
			hostvars[h.Name] = h.Vars
		}
	}
	out["_meta"] = map[string]any{"hostvars": hostvars}
	return marshalIndent(out)
}

func marshalIndent(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode inventory: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Graph renders the inventory from group (all when "") as
// `ansible-inventory --graph` does:
//
//	@all:
//	  |--@ungrouped:
//	  |--@web:
//	  |  |--web1
func (inv *Inventory) Graph(group string) string {
	inv.ensure()
	if group == "" {
		group = "all"
	}
	if _, ok := inv.Groups[group]; !ok {
		return ""
	}
	var b strings.Builder
	var walk func(name string, depth int, path map[string]bool)
	line := func(s string, depth int) {
		if depth > 0 {
			b.WriteString(strings.Repeat("  |", depth) + "--")
		}
		b.WriteString(s)
		b.WriteByte('\n')
	}
	walk = func(name string, depth int, path map[string]bool) {
		g := inv.Groups[name]
		line("@"+name+":", depth)
		if path[name] {
			return
		}
		path[name] = true
		for _, c := range g.Children {
			walk(c, depth+1, path)
		}
		delete(path, name)
		if name != "all" {
			for _, h := range g.Hosts {
				line(h, depth+1)
			}
		}
	}
	walk(group, 0, map[string]bool{})
	return b.String()
}

// HasGroup reports whether the inventory defines group.
func (inv *Inventory) HasGroup(name string) bool {
	inv.ensure()
	_, ok := inv.Groups[name]
	return ok
}

// HostVars returns a copy of one host's merged variables (`--host NAME`).
func (inv *Inventory) HostVars(name string) (map[string]any, error) {
	h, ok := inv.Host(name)
	if !ok {
		names := make([]string, len(inv.Hosts))
		for i, x := range inv.Hosts {
			names[i] = x.Name
		}
		return nil, &diag.Invalid{Err: fmt.Errorf("host %q is not in the inventory%s", name, withSuggestion(suggest(name, names)))}
	}
	out := make(map[string]any, len(h.Vars))
	for k, v := range h.Vars {
		out[k] = v
	}
	return out, nil
}

func withSuggestion(s string) string {
	if s == "" {
		return ""
	}
	return "; " + s
}

package inventory

import (
	"errors"
	"regexp"
	"slices"
	"strings"

	"github.com/ferrydeploy/ferry/diag"
)

var (
	iniSection   = regexp.MustCompile(`^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$`)
	iniGroupName = regexp.MustCompile(`^([^:\]\s]+)\s*(?:[#;].*)?$`)
)

var iniSectionKinds = []string{"vars", "children", "hosts"}

// parseINI reads an Ansible INI inventory.
func parseINI(file string, src []byte) (*Inventory, error) {
	inv := New()
	var errs diag.List
	fail := func(line, col int, hint, format string, args ...any) {
		errs = append(errs, diag.New(src, diag.Pos{File: file, Line: line, Col: col}, hint, format, args...))
	}
	type pending struct {
		line    int
		kind    string // "vars" or "children"
		parents []string
		col     int
	}
	pendingDecl := map[string]*pending{}
	var pendingOrder []string
	defined := map[string]bool{"all": true, "ungrouped": true}
	group, kind := "ungrouped", "hosts"

	lines := strings.Split(string(src), "\n")
	for i, raw := range lines {
		lineNo := i + 1
		raw = strings.TrimRight(raw, "\r")
		if i == 0 {
			raw = strings.TrimPrefix(raw, "\ufeff")
		}
		line := strings.TrimSpace(raw)
		indent := strings.Index(raw, line) // 0-based column of the first non-space
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if m := iniSection.FindStringSubmatch(line); m != nil {
			group, kind = m[1], m[2]
			if kind == "" {
				kind = "hosts"
			}
			if !slices.Contains(iniSectionKinds, kind) {
				col := indent + 1 + len(m[1]) + 2
				fail(lineNo, col, suggest(kind, iniSectionKinds), "section [%s:%s] has unknown type %q (known: hosts, vars, children)", m[1], kind, kind)
				kind = "skip"
				continue
			}
			if kind != "vars" {
				defined[group] = true
				if p, ok := pendingDecl[group]; ok {
					if p.kind == "children" {
						for _, parent := range p.parents {
							if err := inv.addChild(parent, group); err != nil {
								fail(p.line, p.col, "", "%v", err)
							}
						}
					}
					delete(pendingDecl, group)
				}
			} else if _, ok := pendingDecl[group]; !ok && !defined[group] {
				pendingDecl[group] = &pending{line: lineNo, kind: "vars", col: indent + 2}
				pendingOrder = append(pendingOrder, group)
			}
			inv.group(group)
			continue
		}
		if line[0] == '[' && line[len(line)-1] == ']' {
			fail(lineNo, indent+1, "section names have no spaces: [group], [group:vars] or [group:children]", "invalid section header %s", line)
			kind = "skip"
			continue
		}
		switch kind {
		case "skip":
		case "hosts":
			toks, err := shellTokens(line, true)
			if err != nil {
				var le *lexError
				col := indent + 1
				if errors.As(err, &le) {
					col += le.col
				}
				fail(lineNo, col, "close the quote, or escape it with a backslash", "%v", err)
				continue
			}
			if len(toks) == 0 {
				continue
			}
			names, port, err := expandHostPattern(toks[0].text)
			if err != nil {
				col := indent + 1 + toks[0].col
				var re *rangeError
				if errors.As(err, &re) {
					col += re.col
				}
				fail(lineNo, col, "", "%v", err)
				continue
			}
			vars := map[string]any{}
			if port != 0 {
				vars["ansible_port"] = port
			}
			ok := true
			for _, t := range toks[1:] {
				k, v, found := strings.Cut(t.text, "=")
				col := indent + 1 + t.col
				if !found || k == "" {
					fail(lineNo, col, "host variables are written key=value; quote values that contain spaces", "expected key=value host variable, got %q", t.text)
					ok = false
					continue
				}
				val := pyValue(v)
				if err := checkVar(k, val); err != nil {
					fail(lineNo, col+len(k)+1, "", "%v", err)
					ok = false
					continue
				}
				vars[k] = val
			}
			if !ok {
				continue
			}
			for _, n := range names {
				h := inv.host(n)
				for k, v := range vars {
					h.own[k] = v
				}
				if group != "ungrouped" {
					inv.addHostToGroup(h, group)
				}
			}
		case "vars":
			k, v, found := strings.Cut(line, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !found || k == "" {
				fail(lineNo, indent+1, "variables in a [group:vars] section are written key=value", "expected key=value, got %q", line)
				continue
			}
			val := pyValue(v)
			if err := checkVar(k, val); err != nil {
				fail(lineNo, indent+1+strings.Index(line, "=")+1, "", "%v", err)
				continue
			}
			inv.Groups[group].Vars[k] = val
		case "children":
			m := iniGroupName.FindStringSubmatch(line)
			if m == nil {
				fail(lineNo, indent+1, "a [group:children] section lists one group name per line", "expected a group name, got %q", line)
				continue
			}
			child := m[1]
			if _, ok := inv.Groups[child]; !ok {
				p, ok := pendingDecl[child]
				if !ok {
					p = &pending{line: lineNo, kind: "children", col: indent + 1}
					pendingDecl[child] = p
					pendingOrder = append(pendingOrder, child)
				}
				if p.kind == "children" {
					p.parents = append(p.parents, group)
				}
				continue
			}
			if err := inv.addChild(group, child); err != nil {
				fail(lineNo, indent+1, "", "%v", err)
			}
		}
	}
	for _, name := range pendingOrder {
		p, ok := pendingDecl[name]
		if !ok {
			continue
		}
		known := inv.GroupNames()
		if p.kind == "vars" {
			fail(p.line, p.col, suggest(name, known), "section [%s:vars] is for group %q, which is not defined in this file; add a [%s] section", name, name, name)
		} else {
			fail(p.line, p.col, suggest(name, known), "section [%s:children] names group %q, which is not defined in this file; add a [%s] section", p.parents[len(p.parents)-1], name, name)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	inv.reconcile()
	inv.Sources = []string{file}
	return inv, nil
}

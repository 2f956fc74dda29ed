package tasks

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// String names the type as `ferry doc` shows it.
func (t Type) String() string {
	switch t {
	case String:
		return "string"
	case Int:
		return "integer"
	case Bool:
		return "bool"
	case Duration:
		return "duration"
	case List:
		return "list"
	case Map:
		return "mapping"
	case Expr:
		return "expression"
	}
	return "any"
}

// Markdown documents the module from its Spec: what `ferry doc MODULE`
// prints and what docs/modules.md holds, so the reference cannot drift
// from what ferry validates.
func (s Spec) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n%s.\n\n", s.Name, strings.TrimSuffix(s.Doc, "."))
	var notes []string
	if s.Controller {
		notes = append(notes, "runs on the controller (no connection to the host; `become` does not apply)")
	} else {
		notes = append(notes, "runs on the host, over SSH")
	}
	if s.AWS {
		notes = append(notes, "calls AWS with the controller's credentials")
	}
	if s.Approval != nil {
		notes = append(notes, "may ask the operator to approve (needs the TUI, a terminal, or `--yes`)")
	}
	if s.FreeForm != "" {
		notes = append(notes, fmt.Sprintf("free form: `%s: TEXT` sets `%s`", s.Name, s.FreeForm))
	}
	if s.AnyParams {
		notes = append(notes, "takes any `name: value` arguments")
	}
	for _, g := range s.OneOf {
		notes = append(notes, "give exactly one of `"+strings.Join(g, "`, `")+"`")
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	b.WriteString("\n")
	if len(s.Params) > 0 {
		b.WriteString("| parameter | type | required | choices | description |\n")
		b.WriteString("| --- | --- | --- | --- | --- |\n")
		for _, k := range slices.Sorted(maps.Keys(s.Params)) {
			p := s.Params[k]
			req := ""
			if p.Required {
				req = "yes"
			}
			doc := p.Doc
			if p.Default != "" {
				doc += " (default `" + p.Default + "`)"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", k, p.Type, req, code(strings.Join(p.Choices, ", ")), cell(doc))
		}
		b.WriteString("\n")
	}
	if len(s.Returns) > 0 {
		b.WriteString("Returns (with `register`), besides `changed`, `failed` and `msg`:\n\n")
		keys := make([]string, 0, len(s.Returns))
		for k := range s.Returns {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "- `%s`: %s\n", k, s.Returns[k])
		}
		b.WriteString("\n")
	}
	return b.String()
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// ModulesMarkdown is docs/modules.md: every registered module.
func ModulesMarkdown() string {
	var b strings.Builder
	b.WriteString("# Modules\n\n")
	b.WriteString("<!-- Generated from the modules' Specs (tasks/*.go) by `make docs`; `make test` fails when it is stale. Do not edit. -->\n\n")
	b.WriteString("Every module ferry has, with the arguments it validates. `ferry doc MODULE` prints the same text.\n")
	b.WriteString("Module names may be written with Ansible's prefixes (`ansible.builtin.copy`).\n\n")
	specs := Specs()
	for _, s := range specs {
		fmt.Fprintf(&b, "- [%s](#%s): %s\n", s.Name, s.Name, strings.TrimSuffix(s.Doc, "."))
	}
	b.WriteString("\n")
	for _, s := range specs {
		b.WriteString(s.Markdown())
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

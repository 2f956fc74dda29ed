// Package template is ferry's expression engine: `{{ }}` templates and bare
// expressions (expr-lang, with strict variables), their translation from
// Jinja, the filters, tests and lookups, and `{% %}` template files.
//
// It is a leaf: it knows nothing of plays, hosts, modules or connections, so
// inventory plugins and environments can compile templates without pulling
// in the runner. It never reads the process environment: lookup('env', ...)
// reads the env_vars map in the variables it is given.
//
// Files: expr.go (compiling and evaluating), jinja.go (Jinja to expr),
// jinja_template.go (`{% %}` files), jinja_funcs.go and jinja_more.go (the
// tables of filters, tests and globals, and the operators), then one file
// per family: filters_string.go, filters_number.go, filters_collection.go,
// filters_data.go (JSON, YAML, hashes), filters_net.go (ipaddr), tests.go
// and lookups.go.
package template

import (
	"regexp"

	"github.com/expr-lang/expr/ast"
)

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// IsIdent reports whether s can name a variable (a loop_var, a register, a
// {% set %} target).
func IsIdent(s string) bool { return identRe.MatchString(s) }

// SingleExpr returns the expression inside s when s is exactly one
// `{{ expression }}` (`when: "{{ x }}"`, `with_items: "{{ xs }}"`), and its
// rune offset in s; ok is false for plain text, mixed text or a bad template.
func SingleExpr(s string) (src string, offset int, ok bool) {
	segs, err := splitTemplate(s)
	if err != nil || len(segs) != 1 || !segs[0].whole {
		return "", 0, false
	}
	return segs[0].text, segs[0].offset, true
}

// Reserved are the variables every expression sees, set by the runner; plays,
// `register`, `-e` and environment files cannot define them.
var Reserved = []string{"env", "env_vars", "run", "host", "extra", "inventory_hostname", "groups", "group_names", "hostvars"}

// envArg gives the lookups their variables: `$j_lookup(...)` becomes
// `$j_lookup($env, ...)`, so lookup('env', ...) reads env_vars from the
// variables it is evaluated with instead of the process environment.
func envArg(c *ast.CallNode) {
	id, ok := c.Callee.(*ast.IdentifierNode)
	if !ok || (id.Value != "$j_lookup" && id.Value != "$j_query") {
		return
	}
	env := &ast.IdentifierNode{Value: "$env"}
	env.SetLocation(c.Location())
	c.Arguments = append([]ast.Node{env}, c.Arguments...)
}

package cli

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/playbooks"
	"github.com/ferrydeploy/ferry/tasks"
)

// DocCmd prints module documentation from the modules' Specs, like
// ansible-doc: the list of modules, or one module's arguments.
type DocCmd struct {
	Module string `arg:"" optional:"" help:"Module to document (ansible.builtin.X works too); without one, list the modules."`
}

// Run implements the command.
func (c *DocCmd) Run(g *Globals) error {
	if c.Module == "" {
		w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		for _, s := range tasks.Specs() {
			fmt.Fprintf(w, "%s\t%s\n", s.Name, strings.TrimSuffix(s.Doc, "."))
		}
		return w.Flush()
	}
	m, ok := playbooks.LookupModule(c.Module)
	if !ok {
		// An Ansible name a playbook accepts (uri, service, amazon.aws.elb_target):
		// the module that runs it, after how its parameters map.
		name, params, alias := playbooks.AnsibleAlias(c.Module)
		if alias {
			m, ok = playbooks.LookupModule(name)
		}
		if !ok {
			hint := diag.Suggest(c.Module, tasks.Names())
			if hint == "" {
				hint = "`ferry doc` lists the modules"
			}
			return diag.Invalidf("no module %q: %s", c.Module, hint)
		}
		fmt.Fprint(g.stdout, aliasDoc(c.Module, name, params))
	}
	fmt.Fprint(g.stdout, m.Spec().Markdown())
	return nil
}

// aliasDoc says which module runs an Ansible module name and how its
// parameters are renamed or ignored.
func aliasDoc(ansible, module string, params map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "`%s` (Ansible) runs as ferry's `%s` module.\n", ansible, module)
	var renamed, ignored []string
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if v := params[k]; v == "-" {
			ignored = append(ignored, k)
		} else if v != k {
			renamed = append(renamed, k+" → "+v)
		}
	}
	if len(renamed) > 0 {
		fmt.Fprintf(&b, "Parameters renamed: %s.\n", strings.Join(renamed, ", "))
	}
	if len(ignored) > 0 {
		fmt.Fprintf(&b, "Accepted and ignored: %s.\n", strings.Join(ignored, ", "))
	}
	b.WriteString("\n")
	return b.String()
}

package cli

import (
	"fmt"
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
		hint := diag.Suggest(c.Module, tasks.Names())
		if hint == "" {
			hint = "`ferry doc` lists the modules"
		}
		return diag.Invalidf("no module %q: %s", c.Module, hint)
	}
	fmt.Fprint(g.stdout, m.Spec().Markdown())
	return nil
}

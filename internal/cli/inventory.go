package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ferrydeploy/ferry/diag"
)

// InventoryCmd shows the inventory like ansible-inventory.
type InventoryCmd struct {
	Inventory inventorySources `short:"i" env:"FERRY_INVENTORY" placeholder:"FILE|DIR|HOST,..." help:"Inventory file or directory, or an inline host list such as web1,web2, (repeatable)."`
	List      bool             `xor:"mode" help:"All groups and host variables, as ansible-inventory --list (JSON). The default."`
	Graph     bool             `xor:"mode" help:"The group tree."`
	Host      string           `xor:"mode" placeholder:"NAME" help:"One host's variables (JSON)."`
	Group     string           `arg:"" optional:"" help:"With --graph: the group to start from (default all)."`
	FerryVars bool             `name:"ferry-vars" help:"Also show the variables ferry computes for every host (address, user, port, groups, ...)."`
	EnvFlags
}

// Run implements the command.
func (c *InventoryCmd) Run(g *Globals) error {
	return interruptible(g.ctx, func() error { return c.show(g) })
}

func (c *InventoryCmd) show(g *Globals) error {
	hf := HostFlags{Inventory: c.Inventory}
	inv, keep, err := c.load(g, &hf)
	if err != nil {
		return err
	}
	for _, w := range inv.Warnings {
		fmt.Fprintf(g.stderr, "ferry: warning: %s\n", w)
	}
	switch {
	case c.Graph:
		group := c.Group
		if group == "" {
			group = "all"
		}
		if _, ok := inv.Groups[group]; !ok {
			return &diag.Invalid{Err: fmt.Errorf("group %q is not in the inventory (groups: %s)", group, strings.Join(inv.GroupNames(), ", "))}
		}
		fmt.Fprint(g.stdout, keep.graph(inv.Graph(group)))
	case c.Host != "":
		if !keep.has(c.Host) {
			return diag.Invalidf("host %q is not in environment %s (its inventory and limit)", c.Host, c.Env+c.Branch)
		}
		vars, err := inv.HostVars(c.Host)
		if err != nil {
			return err
		}
		if !c.FerryVars {
			h, _ := inv.Host(c.Host)
			vars = inv.WithoutComputed(h, vars)
		}
		b, err := json.MarshalIndent(vars, "", "    ")
		if err != nil {
			return fmt.Errorf("encode host vars: %w", err)
		}
		fmt.Fprintf(g.stdout, "%s\n", b)
	default:
		list := inv.ListJSONAnsible
		if c.FerryVars {
			list = inv.ListJSON
		}
		b, err := list()
		if err != nil {
			return err
		}
		if b, err = keep.list(b); err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "%s\n", b)
	}
	return nil
}

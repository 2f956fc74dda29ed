//go:build !ferryrunner

package cli

import "errors"

// RunCmd runs a playbook.
type RunCmd struct {
	Playbook string `arg:"" type:"existingfile" help:"Playbook file."`
}

// Run implements the command.
func (c *RunCmd) Run(g *Globals) error { return errors.New("ferry run: not built yet") }

// CheckCmd validates a playbook.
type CheckCmd struct {
	Playbook string `arg:"" help:"Playbook file."`
}

// Run implements the command.
func (c *CheckCmd) Run(g *Globals) error { return errors.New("ferry check: not built yet") }

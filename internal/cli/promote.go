package cli

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/environments"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/playbooks"
)

// PromoteCmd deploys the release running on one environment to another.
type PromoteCmd struct {
	From string `required:"" placeholder:"ENV" help:"Environment whose running release is promoted."`
	To   string `required:"" placeholder:"ENV" help:"Environment to deploy it to."`
	RunCmd
}

// appOf is the state file name of the playbook: its first play's literal
// `app` variable, else the playbook's file name.
func appOf(pb *playbooks.Playbook, path string) string {
	for _, p := range pb.Plays {
		for _, v := range p.Vars {
			if s, ok := v.Value.(string); ok && v.Name == "app" && !template.HasTemplate(s) {
				return environments.AppName(s, path)
			}
		}
	}
	return environments.AppName("", path)
}

// Run implements the command.
func (c *PromoteCmd) Run(g *Globals) error {
	if c.Env != "" || c.Branch != "" || len(c.Inventory) > 0 {
		return diag.Invalidf("promote takes its environments from --from and --to (ferry.yml): leave out --env, --branch and -i")
	}
	if c.From == c.To {
		return diag.Invalidf("--from and --to are both %q: promote moves a release between two environments", c.From)
	}
	pb, err := playbooks.Load(c.Playbook, g.env.List())
	if err != nil {
		return err
	}
	userExtra, err := playbooks.ParseExtraVars(c.Extra)
	if err != nil {
		return err
	}
	if _, ok := userExtra["version"]; ok {
		return diag.Invalidf("promote sets version to what runs on %s: leave out -e version", c.From)
	}
	src, err := g.resolveTarget(c.From, "", false, false, false)
	if err != nil {
		return err
	}
	if src == nil || len(src.Inventory) == 0 {
		return diag.Invalidf("--from %s: no inventory for it in ferry.yml", c.From)
	}
	hf := HostFlags{Forks: c.Forks, Bastion: c.Bastion}
	e, err := hf.loadEnv(g.ctx, g.env, src)
	if err != nil {
		return err
	}
	st, err := readEnvStatus(g, &hf, e)
	if err != nil {
		return err
	}
	app := appOf(pb, c.Playbook)
	versions := map[string][]string{}
	var unreachable []string
	var first *environments.Release
	for _, r := range st.Hosts {
		if r.Error != "" {
			unreachable = append(unreachable, r.Host)
			continue
		}
		rel, ok := r.Releases[app]
		v := "(none)"
		if ok {
			v = rel.Version
			if first == nil {
				first = &rel
			}
		}
		versions[v] = append(versions[v], r.Host)
	}
	if len(unreachable) > 0 {
		return exit(exitcode.Unreachable, fmt.Errorf("promote: cannot read the release of %s on %s; nothing was deployed", app, strings.Join(unreachable, ", ")))
	}
	if len(versions) != 1 || first == nil {
		var parts []string
		vs := slices.Sorted(maps.Keys(versions))
		for _, v := range vs {
			parts = append(parts, fmt.Sprintf("%s on %s", v, strings.Join(versions[v], ", ")))
		}
		printStatus(g.stderr, st)
		return diag.Invalidf("promote: %s has drifted (%s): %s; deploy one release to all of %s first (`ferry status --env %s` shows it); nothing was deployed",
			c.From, app, strings.Join(parts, "; "), c.From, c.From)
	}
	fmt.Fprintf(g.stderr, "ferry: promoting %s %s (run %s, by %s) from %s to %s\n", app, first.Version, first.RunID, first.User, c.From, c.To)
	// The release's recorded extra vars first, then -e, then the version.
	var extra []string
	if len(first.Extra) > 0 {
		b, err := json.Marshal(first.Extra)
		if err != nil {
			return err
		}
		extra = append(extra, string(b))
	}
	extra = append(extra, c.Extra...)
	extra = append(extra, "version="+first.Version)
	run := c.RunCmd
	run.Extra, run.Env = extra, c.To
	return run.Run(g)
}

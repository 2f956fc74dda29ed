package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/environments"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/worker"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/playbooks"
)

// Launch implements worker.Runner: the release the environment of the
// hook runs (what its other hosts record), deployed to the launched
// instance only. Anything that keeps ferry from knowing what to deploy
// where fails the launch (the worker then abandons it): an instance must
// not go in service with code nobody chose.
func (r *cliRunner) Launch(ctx context.Context, m awsapi.Message, l *worker.Launch) worker.Outcome {
	prefix := "[launch " + l.EC2InstanceID + "] "
	say := func(format string, args ...any) {
		r.say(prefix + fmt.Sprintf(format, args...) + "\n")
	}
	fail := func(err error) worker.Outcome {
		say("%v", err)
		return worker.Outcome{ExitCode: exitcode.Invalid, Err: err}
	}
	meta, err := l.Metadata()
	if err != nil {
		return fail(err)
	}
	g := *r.g
	g.ctx = ctx
	env := meta.Environment
	if env == "" {
		if env, err = r.envOfGroup(&g, l); err != nil {
			return fail(err)
		}
	}
	t, err := g.resolveTarget(env, "", len(r.c.Inventory) > 0, false, true)
	if err != nil {
		return fail(err)
	}
	hf := HostFlags{Inventory: r.c.Inventory, Forks: r.c.Forks, Bastion: r.c.Bastion}
	e, err := hf.loadEnv(ctx, t)
	if err != nil {
		return fail(err)
	}
	var host *inventory.Host
	var others []*inventory.Host
	for _, h := range e.all {
		if id, _ := h.Vars["instance_id"].(string); id == l.EC2InstanceID {
			host = h
		} else {
			others = append(others, h)
		}
	}
	if host == nil {
		return fail(fmt.Errorf("instance %s (launched in %s) is not a host of environment %s: its inventory must find new instances (tags the launch template sets)", l.EC2InstanceID, l.AutoScalingGroupName, env))
	}
	if len(others) == 0 {
		return fail(fmt.Errorf("environment %s has no host but the new instance %s: no release to give it", env, l.EC2InstanceID))
	}
	e.selected = others
	st, err := readEnvStatus(&g, &hf, e)
	if err != nil {
		return fail(err)
	}
	playbook := meta.Playbook
	if playbook == "" {
		playbook = r.c.LaunchPlaybook
	}
	rel, err := currentRelease(st, playbook)
	if err != nil {
		return fail(fmt.Errorf("environment %s: %w", env, err))
	}
	if playbook == "" {
		playbook = rel.Playbook
	}
	if playbook == "" {
		return fail(fmt.Errorf("no playbook for launches of %s: name it in the hook's metadata or with --launch-playbook", l.AutoScalingGroupName))
	}
	say("deploying %s %s (run %s by %s) to %s with %s", rel.App, rel.Version, rel.RunID, rel.User, host.Name, playbook)
	h, _ := os.Hostname()
	args := []string{playbook, "--env", env, "--limit", host.Name,
		"--requested-by", "autoscaling", "--requested-from",
		fmt.Sprintf("ferry worker on %s for the launch of %s in %s (hook %s), message %s", h, l.EC2InstanceID, l.AutoScalingGroupName, l.LifecycleHookName, m.ID)}
	if len(rel.Extra) > 0 {
		args = append(args, "-e", extraJSON(rel.Extra))
	}
	args = append(args, "-e", "version="+rel.Version)
	return r.run(ctx, prefix, args...)
}

// envOfGroup finds the environment of ferry.yml whose inventory holds
// the launched instance or other instances of its group, for hooks whose
// metadata names none.
func (r *cliRunner) envOfGroup(g *Globals, l *worker.Launch) (string, error) {
	hint := fmt.Sprintf("name it in the notification metadata of hook %s: {\"environment\":\"NAME\"}", l.LifecycleHookName)
	cfg, err := g.loadConfig()
	if err != nil {
		return "", err
	}
	if cfg == nil {
		return "", fmt.Errorf("no ferry.yml to find the environment of auto scaling group %s in: %s", l.AutoScalingGroupName, hint)
	}
	var found []string
	for _, name := range cfg.Names() {
		t, err := g.resolveTarget(name, "", len(r.c.Inventory) > 0, false, true)
		if err != nil {
			return "", err
		}
		hf := HostFlags{Inventory: r.c.Inventory}
		e, err := hf.loadEnv(g.ctx, t)
		if err != nil {
			continue // an environment that selects no host holds no instance either
		}
		for _, h := range e.all {
			id, _ := h.Vars["instance_id"].(string)
			group, _ := h.Vars["autoscaling_group"].(string)
			if id == l.EC2InstanceID || group == l.AutoScalingGroupName {
				found = append(found, name)
				break
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("no environment of ferry.yml holds instances of auto scaling group %s: %s", l.AutoScalingGroupName, hint)
	}
	return "", fmt.Errorf("environments %s all hold instances of auto scaling group %s: %s", strings.Join(found, ", "), l.AutoScalingGroupName, hint)
}

// currentRelease is the release most hosts of the status run: of the
// playbook's app, or of the only app they record when playbook is "".
func currentRelease(st *envStatus, playbook string) (environments.Release, error) {
	app := ""
	if playbook != "" {
		pb, err := playbooks.Load(playbook)
		if err != nil {
			return environments.Release{}, err
		}
		app = appOf(pb, playbook)
	}
	var states []environments.HostState
	apps := map[string]bool{}
	var unreachable []string
	for _, h := range st.Hosts {
		if h.Error != "" {
			unreachable = append(unreachable, h.Host)
			continue
		}
		states = append(states, environments.HostState{Host: h.Host, Releases: h.Releases})
		for a := range h.Releases {
			apps[a] = true
		}
	}
	if app == "" {
		if len(apps) != 1 {
			return environments.Release{}, fmt.Errorf("its hosts record %d apps (%s): name the playbook in the hook's metadata", len(apps), strings.Join(slices.Sorted(maps.Keys(apps)), ", "))
		}
		app = slices.Sorted(maps.Keys(apps))[0]
	}
	version, _ := environments.Drift(states, app)
	var best *environments.Release
	for _, s := range states {
		if rel, ok := s.Releases[app]; ok && rel.Version == version && (best == nil || rel.Time.After(best.Time)) {
			best = &rel
		}
	}
	if best == nil {
		why := "no host records a release of " + app
		if len(unreachable) > 0 {
			why += " (unreachable: " + strings.Join(unreachable, ", ") + ")"
		}
		return environments.Release{}, errors.New(why)
	}
	return *best, nil
}

// say writes one line to the worker's output.
func (r *cliRunner) say(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprint(r.g.stdout, s)
}

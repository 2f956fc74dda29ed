package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/ferrydeploy/ferry/awsapi"
	"github.com/ferrydeploy/ferry/internal/exitcode"
	"github.com/ferrydeploy/ferry/internal/worker"
	"github.com/ferrydeploy/ferry/inventory"
	"github.com/ferrydeploy/ferry/output"
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
	if meta.Environment != "" {
		// Named in the message: held to the worker's allow-list.
		if err := r.policy.Env(env, g.protectedEnv(env)); err != nil {
			return fail(fmt.Errorf("hook %s: %w", l.LifecycleHookName, err))
		}
	}
	t, err := g.resolveTarget(env, "", len(r.c.Inventory) > 0, false, true)
	if err != nil {
		return fail(err)
	}
	hf := HostFlags{Inventory: r.c.Inventory, Forks: r.c.Forks, Bastion: r.c.Bastion}
	e, err := hf.loadEnv(ctx, g.env, t)
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
	// What to deploy comes from the worker's own records, never from the
	// hosts: root on one host could write a release file naming any
	// playbook and variables, and steer every new instance.
	playbook := meta.Playbook
	if playbook != "" {
		// The hook's metadata travels in the message: held to the
		// worker's allow-list, as a deploy request's playbook is.
		if playbook, err = r.policy.Playbook(playbook); err != nil {
			return fail(fmt.Errorf("hook %s: %w", l.LifecycleHookName, err))
		}
	} else {
		playbook = r.c.LaunchPlaybook
	}
	var match func(string) bool
	if playbook != "" {
		pb, err := playbooks.Load(playbook, g.env.List())
		if err != nil {
			return fail(err)
		}
		app := appOf(pb, playbook)
		match = func(recorded string) bool {
			rpb, err := playbooks.Load(recorded, g.env.List())
			return err == nil && appOf(rpb, recorded) == app
		}
	}
	last, ok, err := playbooks.LastDeploy(r.c.RecordDir, env, match)
	if err != nil {
		return fail(fmt.Errorf("environment %s: %w", env, err))
	}
	if !ok {
		return fail(fmt.Errorf("environment %s: no run in this worker's records (%s) deployed it successfully: nothing to give the new instance; deploy it through the worker (or with --record-dir %s) first", env, r.c.RecordDir, r.c.RecordDir))
	}
	if playbook == "" {
		playbook = last.Playbook
	}
	say("deploying %s (run %s by %s) to %s with %s", last.Version, last.RunID, output.SafeText(last.User), host.Name, playbook)
	h, _ := os.Hostname()
	args := []string{"--env=" + env, "--limit=" + host.Name,
		"--requested-by=autoscaling", "--requested-from=" +
			fmt.Sprintf("ferry worker on %s for the launch of %s in %s (hook %s), message %s", h, l.EC2InstanceID, l.AutoScalingGroupName, l.LifecycleHookName, m.ID)}
	extra := map[string]any{}
	for k, v := range last.Extra {
		extra[k] = v
	}
	extra["version"] = last.Version
	args = append(args, "--extra-vars="+extraJSON(extra), "--", playbook)
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
		e, err := hf.loadEnv(g.ctx, g.env, t)
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

// say writes one line to the worker's output.
func (r *cliRunner) say(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprint(r.g.stdout, s)
}

// Ansible's magic variables: what a play knows about itself and the run
// (ansible_play_hosts, playbook_dir, role_path, omit, ...).

package playbooks

import (
	"os/exec"
	"path/filepath"
	"strings"
)

// Magic are the Ansible magic variables the runner sets besides Reserved;
// `ferry check` knows they exist.
var Magic = []string{"ansible_play_hosts", "ansible_play_hosts_all", "ansible_play_batch", "play_hosts",
	"ansible_play_name", "playbook_dir", "role_path", "role_name", "ansible_version", "omit", "ansible_check_mode",
	"ansible_diff_mode", "inventory_dir", "inventory_file", "ansible_run_tags", "ansible_skip_tags",
	"inventory_hostname_short", "ansible_limit", "ansible_forks", "ansible_config_file", "ansible_inventory_sources", "ansible_playbook_python"}

// ferry answers ansible_version with the Ansible release whose playbook
// semantics it follows, so `ansible_version.full is version('2.9', '>=')`
// guards pass.
var ansibleVersion = map[string]any{"full": "2.16.0", "major": 2, "minor": 16, "revision": 0, "string": "2.16.0"}

// omitValue stands for `{{ omit }}`: a module argument that renders to it is
// left out, as in Ansible.
const omitValue = "__omit_place_holder__ferry_9c2f41"

// runMagic adds the run-wide magic variables to the builtins.
func (r *Runner) runMagic(b map[string]any) {
	dir, _ := filepath.Abs(filepath.Dir(r.pb.Path))
	b["playbook_dir"] = dir
	b["ansible_version"] = ansibleVersion
	b["omit"] = omitValue
	b["ansible_check_mode"] = r.opts.Check
	b["ansible_diff_mode"] = false
	tags := []any{"all"}
	if len(r.opts.Tags) > 0 {
		tags = anyList(r.opts.Tags)
	}
	b["ansible_run_tags"] = tags
	b["ansible_skip_tags"] = anyList(r.opts.SkipTags)
	b["ansible_limit"] = r.opts.Limit
	b["ansible_forks"] = r.opts.Forks
	b["ansible_config_file"] = ""
	// ferry runs no Python; playbooks print this or hand it to a script, so
	// it names the controller's python3 when there is one.
	py, _ := exec.LookPath("python3")
	b["ansible_playbook_python"] = py
	var sources []any
	invDir, invFile := "", ""
	for _, s := range strings.Split(r.opts.Source, ",") {
		if s = strings.TrimSpace(s); s == "" || !strings.ContainsAny(s, "/.") {
			continue // `-i host1,host2,` names hosts, not a source
		}
		abs, _ := filepath.Abs(s)
		sources = append(sources, abs)
		if invFile == "" {
			invFile, invDir = abs, filepath.Dir(abs)
		}
	}
	b["ansible_inventory_sources"] = sources
	b["inventory_dir"] = invDir
	b["inventory_file"] = invFile
}

func anyList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// playMagic is what a play's tasks know of its hosts: all of them, those
// not failed so far, and the batch being worked on.
type playMagic struct {
	name             string
	all, live, batch []any
}

func (m *playMagic) set(b map[string]any) {
	if m == nil {
		return
	}
	b["ansible_play_name"] = m.name
	b["ansible_play_hosts_all"] = m.all
	b["ansible_play_hosts"] = m.live
	b["ansible_play_batch"] = m.batch
	b["play_hosts"] = m.batch
}

// dropOmitted removes the arguments that rendered to `{{ omit }}`.
func dropOmitted(args map[string]any) map[string]any {
	for k, v := range args {
		if s, ok := v.(string); ok && s == omitValue {
			delete(args, k)
		}
	}
	return args
}

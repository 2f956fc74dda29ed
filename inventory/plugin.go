package inventory

import (
	"context"
	"sort"
	"sync"
)

// Options are what Load passes on to plugins.
type Options struct {
	// Vars are the variables available to {{ }} in plugin options (env, ...); may be nil.
	Vars map[string]any
	// PlaybookDir, when set, is the playbook's directory: its group_vars/
	// and host_vars/ apply after the inventory's, as Ansible's do.
	PlaybookDir string
	// Env is the command's environment, for plugins that read variables
	// (aws_ec2: the AWS SDK's); nil is the process's.
	Env func(key string) (string, bool)
}

// Plugin builds an inventory from a YAML file whose top-level `plugin:` key
// names it. path is the file, src its content. Errors about the file's
// content should be *diag.Error (see diag.New) so they map to exit code 4.
type Plugin func(ctx context.Context, path string, src []byte, opts Options) (*Inventory, error)

var plugins = struct {
	sync.RWMutex
	m map[string]Plugin
}{m: map[string]Plugin{}}

// RegisterPlugin makes p handle inventory files with `plugin: NAME` for each
// of names (e.g. "aws_ec2", "amazon.aws.aws_ec2"). A later registration of a
// name replaces the earlier one.
func RegisterPlugin(p Plugin, names ...string) {
	plugins.Lock()
	defer plugins.Unlock()
	for _, n := range names {
		plugins.m[n] = p
	}
}

func lookupPlugin(name string) (Plugin, bool) {
	plugins.RLock()
	defer plugins.RUnlock()
	p, ok := plugins.m[name]
	return p, ok
}

// PluginNames returns the registered plugin names, sorted.
func PluginNames() []string {
	plugins.RLock()
	defer plugins.RUnlock()
	names := make([]string, 0, len(plugins.m))
	for n := range plugins.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

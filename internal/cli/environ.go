package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
)

// environ is the environment a command runs with: the process's for the
// ferry binary (Main), each test's own in tests, so that tests can run in
// parallel in one process. Nothing in this package reads os.Getenv: flags'
// env tags, FERRY_SSH_KEY, the become password, HOME/USER/SSH_AUTH_SOCK for
// SSH and the CI variables all come from here.
type environ map[string]string

// environOf reads KEY=VALUE pairs (os.Environ's form); a later pair wins.
func environOf(kv []string) environ {
	e := environ{}
	for _, s := range kv {
		if k, v, ok := strings.Cut(s, "="); ok && k != "" {
			e[k] = v
		}
	}
	return e
}

// Get is the value of k, "" when unset.
func (e environ) Get(k string) string { return e[k] }

// Lookup is the value of k and whether it is set.
func (e environ) Lookup(k string) (string, bool) {
	v, ok := e[k]
	return v, ok
}

// List is the environment as KEY=VALUE pairs, sorted.
func (e environ) List() []string {
	out := make([]string, 0, len(e))
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// kongEnv makes kong read flags' env tags (`env:"FERRY_..."`) from env
// instead of the process: after the model is built, each value's env names
// move out of its tag (where kong would os.LookupEnv them) into envs; a
// resolver gives a flag not set on the command line the first of them that
// env sets; help shows them as kong does.
func kongEnv(env environ) []kong.Option {
	envs := map[*kong.Value][]string{}
	strip := func(v *kong.Value) {
		if v != nil && v.Tag != nil && len(v.Tag.Envs) > 0 {
			envs[v] = v.Tag.Envs
			v.Tag.Envs = nil
		}
	}
	return []kong.Option{
		kong.PostBuild(func(k *kong.Kong) error {
			return kong.Visit(k.Model, func(n kong.Visitable, next kong.Next) error {
				switch x := n.(type) {
				case *kong.Flag:
					strip(x.Value)
				case *kong.Value:
					strip(x)
				}
				return next(nil)
			})
		}),
		kong.Resolvers(kong.ResolverFunc(func(_ *kong.Context, _ *kong.Path, f *kong.Flag) (any, error) {
			for _, name := range envs[f.Value] {
				if v, ok := env.Lookup(name); ok {
					return v, nil
				}
			}
			return nil, nil
		})),
		kong.ValueFormatter(func(v *kong.Value) string {
			if len(envs[v]) == 0 {
				return v.Help
			}
			names := make([]string, len(envs[v]))
			for i, n := range envs[v] {
				names[i] = "$" + n
			}
			suffix := "(" + strings.Join(names, ", ") + ")"
			switch {
			case strings.HasSuffix(v.Help, "."):
				return v.Help[:len(v.Help)-1] + " " + suffix + "."
			case v.Help == "":
				return suffix
			default:
				return v.Help + " " + suffix
			}
		}),
	}
}

// lookPath finds an executable named name in the command's PATH (not the
// process's): "" when there is none.
func (e environ) lookPath(name string) string {
	for _, dir := range filepath.SplitList(e.Get("PATH")) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

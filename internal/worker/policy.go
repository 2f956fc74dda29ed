package worker

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// A queue message is data from whoever can send to the queue, not an
// operator's command line: the worker runs it with its own keys and --yes.
// Policy is what the worker's operator lets a message ask for; anything
// else is refused before a run starts.
type Policy struct {
	// PlaybookDir is where requested playbooks must be: a request names a
	// relative path under it (no absolute path, no "..", no symlink out).
	PlaybookDir string
	// Envs are the environments requests may deploy to, as path.Match
	// patterns ("dev-*"); none: every environment that is not protected.
	// A protected environment is allowed only when named exactly.
	Envs []string
	// Vars are the -e names a request may give, each with the pattern its
	// value (text, number or bool) must match whole.
	Vars map[string]*regexp.Regexp
}

// DefaultVars is what a worker accepts with no --allow-var: a version.
var DefaultVars = map[string]*regexp.Regexp{"version": regexp.MustCompile(`^(?:[A-Za-z0-9][A-Za-z0-9._+-]{0,127})$`)}

// ParseAllowVar reads NAME=REGEX (--allow-var): the value must match REGEX whole.
func ParseAllowVar(s string) (string, *regexp.Regexp, error) {
	name, pat, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return "", nil, fmt.Errorf("--allow-var %q: want NAME=REGEX, e.g. 'version=^v[0-9.]+$'", s)
	}
	re, err := regexp.Compile(`^(?:` + pat + `)$`)
	if err != nil {
		return "", nil, fmt.Errorf("--allow-var %s: %w", name, err)
	}
	return name, re, nil
}

// Playbook returns the path of the request's playbook under PlaybookDir,
// or why the request may not name it.
func (p *Policy) Playbook(name string) (string, error) {
	if name == "" || filepath.IsAbs(name) || strings.HasPrefix(name, "-") || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("playbook %q: a request names a playbook relative to the worker's --playbook-dir", name)
	}
	for _, part := range strings.Split(filepath.ToSlash(name), "/") {
		if part == ".." {
			return "", fmt.Errorf("playbook %q: \"..\" is not allowed: a request names a playbook under the worker's --playbook-dir", name)
		}
	}
	dir, err := filepath.Abs(p.PlaybookDir)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	full := filepath.Join(dir, name)
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", fmt.Errorf("playbook %q: not found under the worker's --playbook-dir %s", name, dir)
	}
	if rel, err := filepath.Rel(dir, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("playbook %q: it leads out of the worker's --playbook-dir %s (to %s)", name, dir, real)
	}
	return full, nil
}

// Env says why the request may not deploy to env ("" when it may);
// protected says whether env is protected (ferry.yml).
func (p *Policy) Env(env string, protected bool) error {
	for _, pat := range p.Envs {
		if pat == env {
			return nil
		}
		if ok, _ := path.Match(pat, env); ok && !protected {
			return nil
		}
	}
	switch {
	case protected:
		return fmt.Errorf("environment %q is protected: a worker deploys to it only when its --allow-env names it", env)
	case len(p.Envs) > 0:
		return fmt.Errorf("environment %q is not in the worker's --allow-env (%s)", env, strings.Join(p.Envs, ", "))
	}
	return nil
}

// ExtraVars says why the request's -e values are not allowed (nil when
// they are): every name must be allowed, every value a text, number or
// bool matching its pattern.
func (p *Policy) ExtraVars(extra map[string]any) error {
	allowed := p.Vars
	if allowed == nil {
		allowed = DefaultVars
	}
	var errs []error
	names := make([]string, 0, len(extra))
	for k := range extra {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		re, ok := allowed[k]
		if !ok {
			errs = append(errs, fmt.Errorf("-e %s: not a variable the worker's --allow-var lets a request set", k))
			continue
		}
		var s string
		switch v := extra[k].(type) {
		case string:
			s = v
		case bool, float64, int, int64:
			s = fmt.Sprint(v)
		default:
			errs = append(errs, fmt.Errorf("-e %s: a request sets text, numbers or bools, not %T", k, v))
			continue
		}
		if !re.MatchString(s) {
			errs = append(errs, fmt.Errorf("-e %s: value %q does not match the worker's --allow-var %s=%s", k, s, k, strings.TrimSuffix(strings.TrimPrefix(re.String(), "^(?:"), ")$")))
		}
	}
	return errors.Join(errs...)
}

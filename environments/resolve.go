package environments

import (
	"context"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"time"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/template"
)

// Target is where a command goes: a named or personal environment resolved
// to inventory sources, a limit and variables.
type Target struct {
	Name      string
	Inventory []string // empty: the command's -i decides
	Limit     string   // host pattern ("" for all)
	Vars      map[string]any
	Protected bool
	Personal  bool              // derived from a branch
	Branch    string            // the branch it was derived from
	Groups    map[string]string // the branch pattern's named groups
}

// InventoryVars are the variables {{ }} in inventory options may use.
func (t *Target) InventoryVars() map[string]any {
	v := map[string]any{"env": t.Name}
	for k, g := range t.Groups {
		v[k] = g
	}
	return v
}

// Request says what the command was asked for.
type Request struct {
	Env    string // --env
	Branch string // --branch
	// Detect: with neither --env nor --branch, find the branch from the CI's
	// variables or git (commands that were given no inventory either).
	Detect bool
	// Guard: the command changes hosts (run, promote's target, lock
	// release): protected environments need --env and, without a terminal, --yes.
	Guard       bool
	Interactive bool
	Yes         bool
	Getenv      func(string) string
	Git         func(ctx context.Context) (string, error) // nil: `git branch --show-current`
}

// BranchVars are the CI variables that name the branch, in the order tried.
var BranchVars = []string{"GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BRANCH_NAME", "BUILDKITE_BRANCH"}

// DetectBranch returns the branch from the CI's variables, else from git,
// and where it came from; "" when neither knows.
func DetectBranch(ctx context.Context, getenv func(string) string, git func(context.Context) (string, error)) (branch, from string) {
	for _, v := range BranchVars {
		if b := strings.TrimSpace(getenv(v)); b != "" {
			return b, v
		}
	}
	if git == nil {
		git = gitBranch
	}
	if b, err := git(ctx); err == nil && b != "" {
		return b, "git branch --show-current"
	}
	return "", ""
}

func gitBranch(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "branch", "--show-current").Output()
	return strings.TrimSpace(string(out)), err
}

// Resolve applies ferry.yml and the guard rails to a request. cfg may be
// nil (no ferry.yml): --env then only names the environment. A nil Target
// and nil error mean no environment was asked for.
func Resolve(ctx context.Context, cfg *Config, req Request) (*Target, error) {
	if req.Getenv == nil {
		req.Getenv = func(string) string { return "" }
	}
	if req.Env != "" && req.Branch != "" {
		return nil, diag.Invalidf("--env and --branch both given: pass one (--branch picks a personal environment, --env names one)")
	}
	if req.Env != "" {
		return resolveEnv(cfg, req)
	}
	branch, from := req.Branch, "--branch"
	if branch == "" && req.Detect && cfg != nil && cfg.Personal != nil {
		branch, from = DetectBranch(ctx, req.Getenv, req.Git)
		if branch == "" {
			return nil, diag.Invalidf("no environment: pass --env NAME (%s), --branch BRANCH or -i INVENTORY; no branch found in %s or git", strings.Join(cfg.Names(), ", "), strings.Join(BranchVars, ", "))
		}
	}
	if branch == "" {
		return nil, nil
	}
	if cfg == nil || cfg.Personal == nil {
		if req.Branch != "" && cfg == nil {
			return nil, nil // no ferry.yml: --branch only sets run.branch
		}
		return nil, diag.Invalidf("%s %q: %s has no `personal:` section, so no branch picks an environment; use --env NAME", from, branch, cfgName(cfg))
	}
	return resolveBranch(cfg, branch, from)
}

func cfgName(cfg *Config) string {
	if cfg == nil {
		return DefaultFile
	}
	return cfg.Path
}

// resolveEnv resolves --env: a named environment, or a personal one by name.
func resolveEnv(cfg *Config, req Request) (*Target, error) {
	name := req.Env
	if !nameRe.MatchString(name) {
		return nil, diag.Invalidf("--env %q is not a valid environment name (letters, digits, '-', '_', '.')", name)
	}
	if cfg == nil {
		return &Target{Name: name}, nil
	}
	if e, ok := cfg.Environments[name]; ok {
		var err error
		if e.Protected && req.Guard && !req.Interactive && !req.Yes {
			return nil, diag.Invalidf("environment %q is protected and there is no terminal to confirm: pass --yes to deploy to it from a script or CI job", name)
		}
		t := &Target{Name: name, Vars: e.Vars, Protected: e.Protected}
		// {{ env }} may appear in a named environment's paths and limit too.
		vars := map[string]any{"env": name}
		for _, inv := range e.Inventory {
			s, err := renderText(inv, e.Pos, vars)
			if err != nil {
				return nil, err
			}
			t.Inventory = append(t.Inventory, s)
		}
		if t.Limit, err = renderText(e.Limit, e.Pos, vars); err != nil {
			return nil, err
		}
		return t, nil
	}
	if p := cfg.Personal; p != nil {
		if groups, ok := p.invert(name); ok {
			// The same guard rails as --branch: a name is only another
			// way to write the branch's groups.
			return guardedTarget(cfg, name, "", fmt.Sprintf("--env %q", name), groups)
		}
	}
	names := cfg.Names()
	hint := diag.Suggest(name, names)
	if hint != "" {
		hint = "; " + hint
	}
	return nil, diag.Invalidf("--env %q: no such environment in %s (named: %s)%s", name, cfg.Path, strings.Join(names, ", "), hint)
}

// resolveBranch maps a branch to its personal environment, refusing any
// branch that would reach a named or protected environment.
func resolveBranch(cfg *Config, branch, from string) (*Target, error) {
	p := cfg.Personal
	m := p.Pattern.FindStringSubmatch(branch)
	if m == nil {
		return nil, diag.Invalidf("branch %q (from %s) matches no personal pattern (%s: branch_pattern %s): deploy it with --env NAME, or name the branch after the pattern, e.g. dev/<user>/%s",
			branch, from, cfg.Path, p.Pattern, lastPart(branch))
	}
	groups := map[string]string{}
	for i, g := range p.Pattern.SubexpNames() {
		if g != "" {
			groups[g] = m[i]
		}
	}
	vars := map[string]any{}
	for k, v := range groups {
		vars[k] = v
	}
	name, err := p.Env.RenderString(vars)
	if err != nil {
		return nil, diag.Invalidf("%s: personal env for branch %q: %v", cfg.Path, branch, err)
	}
	return guardedTarget(cfg, name, branch, fmt.Sprintf("branch %q", branch), groups)
}

// guardedTarget is the personal environment name with the pattern's
// groups, once the guard rails let it through: whether it came from a
// branch or from --env (by hand, or a worker's queue message), it never
// reaches a named or protected environment: not by its name, not by a
// group naming one, not by a group the branch pattern would not let
// through, not by an inventory source or limit a named environment uses.
func guardedTarget(cfg *Config, name, branch, what string, groups map[string]string) (*Target, error) {
	p := cfg.Personal
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		v := groups[k]
		if e, ok := cfg.Environments[strings.ToLower(v)]; ok {
			return nil, diag.Invalidf("%s names environment %q (group %s=%q): a personal environment never deploys to a named environment; deploy there with --env %s%s", what, e.Name, k, v, e.Name, protectedNote(e))
		}
		if v == "" || strings.Contains(v, "..") || !p.groupAllows(k, v) {
			return nil, diag.Invalidf("%s: %s=%q is not what personal.branch_pattern (%s) in %s lets a branch give: a personal environment by name takes the same values as by branch", what, k, v, p.Pattern, cfg.Path)
		}
	}
	if e, ok := cfg.Environments[name]; ok {
		return nil, diag.Invalidf("%s resolves to %q, a named environment: a personal environment never deploys there; use --env %s%s, or change personal.env in %s", what, name, name, protectedNote(e), cfg.Path)
	}
	if !nameRe.MatchString(name) {
		return nil, diag.Invalidf("%s gives environment name %q, which is not valid (letters, digits, '-', '_', '.'): tighten personal.branch_pattern in %s", what, name, cfg.Path)
	}
	t, err := p.target(cfg, name, branch, groups)
	if err != nil {
		return nil, err
	}
	for _, en := range cfg.Names() {
		e := cfg.Environments[en]
		vars := map[string]any{"env": en}
		for _, inv := range e.Inventory {
			s, err := renderText(inv, e.Pos, vars)
			if err != nil {
				continue
			}
			for _, mine := range t.Inventory {
				if filepath.Clean(mine) == filepath.Clean(s) && (t.Limit == "" || e.Limit == "" || t.Limit == e.Limit) {
					return nil, diag.Invalidf("%s: personal environment %q would use %s, the inventory of environment %q%s: a personal environment never reaches a named one; use --env %s, or give personal.inventory a source of its own in %s", what, name, mine, en, protectedNote(e), en, cfg.Path)
				}
			}
		}
	}
	return t, nil
}

// groupAllows reports whether the branch pattern's named group g can
// match v whole: what --env gives a group is held to what a branch could.
func (p *Personal) groupAllows(g, v string) bool {
	re, err := syntax.Parse(p.Pattern.String(), syntax.Perl)
	if err != nil {
		return false
	}
	var sub *syntax.Regexp
	var walk func(r *syntax.Regexp)
	walk = func(r *syntax.Regexp) {
		if sub != nil {
			return
		}
		if r.Op == syntax.OpCapture && r.Name == g {
			sub = r.Sub[0]
			return
		}
		for _, s := range r.Sub {
			walk(s)
		}
	}
	walk(re)
	if sub == nil {
		return false
	}
	whole, err := regexp.Compile(`^(?:` + sub.String() + `)$`)
	return err == nil && whole.MatchString(v)
}

func protectedNote(e *Env) string {
	if e.Protected {
		return " (protected: without a terminal it also needs --yes)"
	}
	return ""
}

func lastPart(b string) string {
	if i := strings.LastIndexByte(b, '/'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// target renders the personal inventory and limit for env name.
func (p *Personal) target(cfg *Config, name, branch string, groups map[string]string) (*Target, error) {
	vars := map[string]any{"env": name}
	for k, v := range groups {
		vars[k] = v
	}
	t := &Target{Name: name, Personal: true, Branch: branch, Groups: groups, Vars: p.Vars}
	for _, tpl := range p.Inventory {
		s, err := tpl.RenderString(vars)
		if err != nil {
			return nil, diag.Invalidf("%s: personal inventory for %s: %v", cfg.Path, name, err)
		}
		t.Inventory = append(t.Inventory, s)
	}
	if p.Limit != nil {
		s, err := p.Limit.RenderString(vars)
		if err != nil {
			return nil, diag.Invalidf("%s: personal limit for %s: %v", cfg.Path, name, err)
		}
		t.Limit = s
	}
	return t, nil
}

// invert matches an environment name against the personal env template
// ('dev-{{ user }}' matches dev-ben with user=ben), so `--env dev-ben`
// finds Ben's environment without a branch. Only templates made of text
// and plain variables can be inverted.
func (p *Personal) invert(name string) (map[string]string, bool) {
	src := p.envSrc
	idx := identInTemplate.FindAllStringSubmatchIndex(src, -1)
	if len(idx) == 0 || strings.Count(src, "{{") != len(idx) {
		return nil, false
	}
	var b strings.Builder
	b.WriteString("^")
	last := 0
	seen := map[string]bool{}
	for _, m := range idx {
		b.WriteString(regexp.QuoteMeta(src[last:m[0]]))
		id := src[m[2]:m[3]]
		if seen[id] {
			b.WriteString(`(?:.+)`)
		} else {
			fmt.Fprintf(&b, `(?P<%s>[A-Za-z0-9_.-]+)`, id)
		}
		seen[id] = true
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(src[last:]) + "$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, false
	}
	m := re.FindStringSubmatch(name)
	if m == nil {
		return nil, false
	}
	groups := map[string]string{}
	for i, g := range re.SubexpNames() {
		if g != "" {
			groups[g] = m[i]
		}
	}
	// The name must render back to itself.
	vars := map[string]any{}
	for k, v := range groups {
		vars[k] = v
	}
	if s, err := p.Env.RenderString(vars); err != nil || s != name {
		return nil, false
	}
	return groups, true
}

// renderText renders {{ }} in s (a path or pattern from ferry.yml).
func renderText(s string, pos diag.Pos, vars map[string]any) (string, error) {
	if !template.HasTemplate(s) {
		return s, nil
	}
	t, err := template.CompileTemplate(s, pos)
	if err != nil {
		return "", err
	}
	out, err := t.RenderString(vars)
	if err != nil {
		return "", diag.Invalidf("%s: %q: %v", pos, s, err)
	}
	return out, nil
}

// Package environments is ferry's notion of where a rollout goes: ferry.yml
// (named environments and the personal environment a git branch derives),
// the guard rails that keep a branch away from production, the deploy lock
// each environment holds on its hosts, and the release state every host
// keeps about what it runs.
package environments

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/template"
	"github.com/ferrydeploy/ferry/internal/value"
	"github.com/ferrydeploy/ferry/internal/yamlnode"
)

// DefaultFile is the configuration read when --config is not given (if present).
const DefaultFile = "ferry.yml"

// Config is a loaded ferry.yml.
type Config struct {
	Path         string
	Environments map[string]*Env // by name
	Personal     *Personal       // nil when ferry.yml has no personal section
	src          []byte
}

// Env is a named environment.
type Env struct {
	Name      string
	Inventory []string // paths, relative to the config file's directory already resolved
	Limit     string   // host pattern
	Vars      map[string]any
	Protected bool
	Pos       diag.Pos
}

// Personal derives a developer's environment from a branch name.
type Personal struct {
	Pattern   *regexp.Regexp
	Env       *template.Template
	Inventory []*template.Template
	Limit     *template.Template // nil: none
	Vars      map[string]any
	Pos       diag.Pos
	envSrc    string
}

var (
	topKeys      = []string{"environments", "personal"}
	envKeys      = []string{"inventory", "limit", "vars", "protected"}
	personalKeys = []string{"branch_pattern", "env", "inventory", "limit", "vars"}
	// Names end up in file names on the hosts (the lock, the records): keep them plain.
	nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
)

// maxConfigSize bounds what Load reads; a ferry.yml is a few hundred bytes.
const maxConfigSize = 1 << 20

// Load reads and validates the ferry.yml at path. Every problem is reported
// at once, with file:line:column (a diag.List).
func Load(path string) (*Config, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, diag.Invalidf("read config: %v (pass --config FILE, or leave it out to use ./%s when present)", err, DefaultFile)
	}
	if fi.Size() > maxConfigSize {
		return nil, diag.Invalidf("config %s: %d bytes is too large (at most %d)", path, fi.Size(), maxConfigSize)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, diag.Invalidf("read config: %v", err)
	}
	return Parse(path, src)
}

// parser holds the state of one Parse.
type parser struct {
	path string
	dir  string
	src  []byte
	errs diag.List
	doc  *yamlnode.Doc // aliases, under one expansion budget for the file
}

func (p *parser) pos(n *yaml.Node) diag.Pos {
	return diag.Pos{File: p.path, Line: n.Line, Col: n.Column}
}

func (p *parser) fail(n *yaml.Node, hint, format string, args ...any) {
	p.errs = append(p.errs, diag.New(p.src, p.pos(n), hint, format, args...))
}

// resolve follows aliases, charging the document's expansion budget.
func (p *parser) resolve(n *yaml.Node) *yaml.Node { return p.doc.Resolve(n) }

// mapping returns n's key/value pairs, checking keys against known.
func (p *parser) mapping(n *yaml.Node, what string, known []string) [][2]*yaml.Node {
	n = p.resolve(n)
	if n.Kind != yaml.MappingNode {
		if n.Tag == "!!null" {
			return nil
		}
		p.fail(n, "", "%s must be a mapping, not %s", what, kind(n))
		return nil
	}
	var out [][2]*yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := p.resolve(n.Content[i]), p.resolve(n.Content[i+1])
		if p.doc.Err() != nil {
			return nil
		}
		if known != nil && !slices.Contains(known, k.Value) {
			p.fail(k, diag.Suggest(k.Value, known), "unknown key %q in %s (known: %s)", k.Value, what, strings.Join(known, ", "))
			continue
		}
		if seen[k.Value] {
			p.fail(k, "", "%q is given twice in %s", k.Value, what)
			continue
		}
		seen[k.Value] = true
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out
}

// kind names what a node is, for messages.
var kind = yamlnode.KindName

func (p *parser) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.fail(n, "", "%s must be a string, not %s", what, kind(n))
		return "", false
	}
	return n.Value, true
}

// strList reads one string or a list of them.
func (p *parser) strList(n *yaml.Node, what string) []string {
	if n.Kind == yaml.SequenceNode {
		var out []string
		for _, c := range n.Content {
			if s, ok := p.str(p.resolve(c), what); ok {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			p.fail(n, "", "%s is an empty list", what)
		}
		return out
	}
	if s, ok := p.str(n, what); ok {
		return []string{s}
	}
	return nil
}

func (p *parser) vars(n *yaml.Node, what string) map[string]any {
	if n.Kind != yaml.MappingNode {
		p.fail(n, "", "%s must be a mapping of variables, not %s", what, kind(n))
		return nil
	}
	var m map[string]any
	if err := p.doc.Decode(n, &m); err != nil {
		if p.doc.Err() == nil { // an expansion problem is reported once, by Parse
			p.fail(n, "", "%s: %v", what, err)
		}
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if k == "env" || slices.Contains(template.Reserved, k) {
			p.fail(n.Content[i], "", "%s: %q is reserved (set by ferry)", what, k)
		}
	}
	return m
}

func (p *parser) relPath(s string) string {
	if s == "" || filepath.IsAbs(s) || strings.HasPrefix(s, "{{") {
		return s
	}
	return filepath.Join(p.dir, s)
}

// Parse validates src as the ferry.yml at path.
func Parse(path string, src []byte) (*Config, error) {
	p := &parser{path: path, dir: filepath.Dir(path), src: src, doc: yamlnode.New(0)}
	cfg := &Config{Path: path, Environments: map[string]*Env{}, src: src}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, diag.List{diag.YAML(path, src, err)}.Err()
	}
	if doc.Kind == 0 || len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
		return cfg, nil // an empty ferry.yml names nothing
	}
	for _, kv := range p.mapping(doc.Content[0], "ferry.yml", topKeys) {
		switch kv[0].Value {
		case "environments":
			for _, e := range p.mapping(kv[1], "environments", nil) {
				if p.doc.Err() != nil {
					break // the expansion error says it all
				}
				if env := p.env(e[0], e[1]); env != nil {
					cfg.Environments[env.Name] = env
				}
			}
		case "personal":
			cfg.Personal = p.personal(kv[1])
		}
	}
	if cfg.Personal != nil && len(cfg.Environments) > 0 {
		// A personal environment whose template is a constant could only
		// ever be a fixed name: refuse the obvious collision at load time.
		if _, named := cfg.Environments[cfg.Personal.envSrc]; named {
			p.errs = append(p.errs, diag.New(src, cfg.Personal.Pos, "a branch must never reach a named environment: make env depend on the branch, e.g. 'dev-{{ user }}'", "personal env %q is the name of an environment", cfg.Personal.envSrc))
		}
	}
	if e := p.doc.Err(); e != nil {
		p.fail(e.Node, e.Hint(), "%s", e.Error())
	}
	if err := p.errs.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (p *parser) env(k, v *yaml.Node) *Env {
	name := k.Value
	if !nameRe.MatchString(name) {
		p.fail(k, "letters, digits, '-', '_' and '.'; it names files on the hosts", "environment name %q is not valid", name)
		return nil
	}
	e := &Env{Name: name, Pos: p.pos(k)}
	for _, kv := range p.mapping(v, "environment "+name, envKeys) {
		val := kv[1]
		switch kv[0].Value {
		case "inventory":
			for _, s := range p.strList(val, "inventory") {
				e.Inventory = append(e.Inventory, p.relPath(s))
			}
		case "limit":
			e.Limit, _ = p.str(val, "limit")
		case "vars":
			e.Vars = p.vars(val, "vars")
		case "protected":
			b, ok := value.ParseBool(val.Value)
			if val.Kind != yaml.ScalarNode || !ok {
				p.fail(val, "write "+value.Words, "protected must be true or false, not %s", kind(val))
			}
			e.Protected = b
		}
	}
	if len(e.Inventory) == 0 {
		p.fail(k, "e.g. "+name+": {inventory: inventory/"+name+".aws_ec2.yml}", "environment %q has no inventory", name)
	}
	return e
}

func (p *parser) template(n *yaml.Node, s string) *template.Template {
	t, err := template.CompileTemplate(s, p.pos(n))
	if err != nil {
		_ = p.errs.Collect(err)
		return nil
	}
	return t
}

func (p *parser) personal(n *yaml.Node) *Personal {
	pe := &Personal{Pos: p.pos(n)}
	var patNode, envNode *yaml.Node
	for _, kv := range p.mapping(n, "personal", personalKeys) {
		val := kv[1]
		switch kv[0].Value {
		case "branch_pattern":
			patNode = val
			s, ok := p.str(val, "branch_pattern")
			if !ok {
				continue
			}
			re, err := regexp.Compile(s)
			if err != nil {
				p.fail(val, "Go regular expressions (RE2), named groups as (?P<user>...)", "branch_pattern: %v", err)
				continue
			}
			pe.Pattern = re
		case "env":
			envNode = val
			if s, ok := p.str(val, "env"); ok {
				pe.envSrc = s
				pe.Env = p.template(val, s)
			}
		case "inventory":
			for _, s := range p.strList(val, "inventory") {
				if t := p.template(val, p.relPath(s)); t != nil {
					pe.Inventory = append(pe.Inventory, t)
				}
			}
		case "limit":
			if s, ok := p.str(val, "limit"); ok {
				pe.Limit = p.template(val, s)
			}
		case "vars":
			pe.Vars = p.vars(val, "vars")
		}
	}
	missing := func(key, example string) {
		p.fail(n, "e.g. "+key+": "+example, "personal has no %s", key)
	}
	if patNode == nil {
		missing("branch_pattern", `'^(?:remote-run|dev)/(?P<user>[a-z0-9-]+)/'`)
	}
	if envNode == nil {
		missing("env", `'dev-{{ user }}'`)
	}
	if len(pe.Inventory) == 0 && !p.hasKey(n, "inventory") {
		missing("inventory", "inventory/personal.aws_ec2.yml")
	}
	if pe.Pattern != nil && pe.Env != nil && pe.Pattern.NumSubexp() > 0 {
		// Every variable the templates use must be a named group.
		groups := map[string]bool{"env": true}
		for _, g := range pe.Pattern.SubexpNames() {
			if g != "" {
				groups[g] = true
			}
		}
		for _, id := range templateIdents(pe.envSrc) {
			if !groups[id] {
				p.fail(envNode, diag.Suggest(id, keys(groups)), "env uses %q, which is not a named group of branch_pattern (groups: %s)", id, strings.Join(keys(groups), ", "))
			}
		}
	}
	if pe.Pattern == nil || pe.Env == nil {
		return nil
	}
	return pe
}

func (p *parser) hasKey(n *yaml.Node, key string) bool {
	n = p.resolve(n)
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

var identInTemplate = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)

// templateIdents returns the plain variables of a template ({{ user }}).
func templateIdents(s string) []string {
	var out []string
	for _, m := range identInTemplate.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Names returns the named environments, sorted.
func (c *Config) Names() []string { return keys(c.Environments) }

package inventory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/yamlnode"
	"gopkg.in/yaml.v3"
)

// ignoredExts are the file endings Ansible skips in an inventory directory
// (its INVENTORY_IGNORE_EXTS default, .ini and .cfg included).
var ignoredExts = []string{".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".ini", ".cfg", ".retry"}

// Load reads every inventory source in paths (files, directories, or a
// comma-separated host list such as "web1,web2,") and merges them in order,
// then applies group_vars/ and host_vars/ found next to each source. On
// error it returns no inventory: invalid input comes as *diag.Error or
// diag.List (exit code 4).
func Load(ctx context.Context, paths []string, opts Options) (*Inventory, error) {
	inv := New()
	var errs diag.List
	var bases []string
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sub, base, err := loadSource(ctx, p, opts)
		if err != nil {
			if err := errs.Collect(err); err != nil {
				return nil, err
			}
			continue
		}
		inv.Merge(sub)
		if base != "" && !slices.Contains(bases, base) {
			bases = append(bases, base)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if d := opts.PlaybookDir; d != "" {
		if abs, err := filepath.Abs(d); err == nil && !slices.Contains(bases, abs) && !slices.Contains(bases, d) {
			bases = append(bases, d)
		}
	}
	for _, b := range bases {
		if err := inv.loadVarsDirs(b); err != nil {
			if err := errs.Collect(err); err != nil {
				return nil, err
			}
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	inv.resolve()
	return inv, nil
}

// loadSource loads one -i argument and returns the directory whose
// group_vars/ and host_vars/ apply to it ("" for none).
func loadSource(ctx context.Context, p string, opts Options) (*Inventory, string, error) {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && strings.Contains(p, ",") {
			return hostList(p)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", &diag.Error{Pos: diag.Pos{File: p}, Msg: "inventory source not found", Hint: "check the path given to -i: a file, a directory, or a host list with a comma in it (-i web1,web2 or -i web1,)"}
		}
		return nil, "", fmt.Errorf("inventory %s: %w", p, err)
	}
	if !st.IsDir() {
		inv, err := loadFile(ctx, p, opts)
		return inv, filepath.Dir(p), err
	}
	inv := New()
	inv.Sources = nil
	var errs diag.List
	loaded := 0
	err = walkDir(p, func(file string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		loaded++
		sub, err := loadFile(ctx, file, opts)
		if err != nil {
			return errs.Collect(err)
		}
		inv.Merge(sub)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if err := errs.Err(); err != nil {
		return nil, "", err
	}
	if loaded == 0 {
		// Ansible warns and goes on with no hosts; a run on nothing is never what was meant
		return nil, "", &diag.Error{Pos: diag.Pos{File: p}, Msg: "inventory directory holds no inventory file",
			Hint: "put a hosts file (YAML or INI) or an aws_ec2 plugin file in it; group_vars/, host_vars/, hidden files and .ini/.cfg/.md are not read as inventories"}
	}
	return inv, p, nil
}

// walkDir calls fn for every inventory file under dir, sorted, as Ansible
// does: hidden entries, ignored extensions, group_vars/ and host_vars/ skipped.
func walkDir(dir string, fn func(string) error) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read inventory directory: %w", err)
	}
	for _, e := range entries { // os.ReadDir sorts by name
		name := e.Name()
		if strings.HasPrefix(name, ".") || ignoredName(name) {
			continue
		}
		full := filepath.Join(dir, name)
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			if st, err := os.Stat(full); err == nil {
				isDir = st.IsDir()
			}
		}
		if isDir {
			if name == "group_vars" || name == "host_vars" {
				continue
			}
			if err := walkDir(full, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(full); err != nil {
			return err
		}
	}
	return nil
}

func ignoredName(name string) bool {
	for _, x := range ignoredExts {
		if strings.HasSuffix(name, x) {
			return true
		}
	}
	return false
}

// hostList reads Ansible's "-i host1,host2," form.
func hostList(p string) (*Inventory, string, error) {
	inv := New()
	inv.Sources = []string{p}
	for _, part := range strings.Split(p, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		names, port, err := expandHostPattern(part)
		if err != nil {
			return nil, "", &diag.Error{Pos: diag.Pos{File: p}, Msg: fmt.Sprintf("host list entry %q: %v", part, err)}
		}
		for _, n := range names {
			h := inv.host(n)
			if port != 0 {
				h.own["ansible_port"] = port
			}
		}
	}
	return inv, "", nil
}

var yamlKeyLine = regexp.MustCompile(`^(---|[\w.-]+:(\s|$))`)

// loadFile parses one inventory file: a plugin configuration, a YAML
// inventory or an INI inventory, chosen by extension and content.
func loadFile(ctx context.Context, file string, opts Options) (*Inventory, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	if bytes.HasPrefix(src, []byte("$ANSIBLE_VAULT")) {
		return nil, &diag.Error{Pos: diag.Pos{File: file, Line: 1, Col: 1}, Msg: "inventory file is vault-encrypted", Hint: "ferry cannot decrypt Ansible Vault: decrypt it (ansible-vault decrypt) or keep secrets in vars files"}
	}
	if bytes.HasPrefix(src, []byte("#!")) {
		if st, err := os.Stat(file); err == nil && st.Mode()&0o111 != 0 {
			return nil, diag.New(src, diag.Pos{File: file, Line: 1, Col: 1}, "write its output to a static file, or use an inventory plugin such as aws_ec2", "inventory scripts are not supported")
		}
	}
	ext := strings.ToLower(filepath.Ext(file))
	switch ext {
	case ".ini", ".cfg":
		return parseINI(file, src)
	case ".yml", ".yaml", ".json":
		root, doc, err := yamlRoot(file, src)
		if err != nil {
			return nil, err
		}
		return yamlOrPlugin(ctx, file, src, doc, root, opts)
	}
	root, doc, yerr := yamlRoot(file, src)
	if yerr == nil && looksLikeYAMLInventory(doc, root) {
		return yamlOrPlugin(ctx, file, src, doc, root, opts)
	}
	if yerr != nil && looksLikeYAML(src) {
		return nil, yerr
	}
	return parseINI(file, src)
}

// looksLikeYAML reports whether the first meaningful line of src is a YAML
// document start or a `key:` line, i.e. the author meant YAML.
func looksLikeYAML(src []byte) bool {
	for _, l := range strings.Split(string(src), "\n") {
		t := strings.TrimSpace(l)
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		return yamlKeyLine.MatchString(t) && !strings.Contains(t, "=")
	}
	return false
}

// looksLikeYAMLInventory reports whether a file without a YAML extension
// that parsed as YAML has an inventory's shape: group names (no spaces or
// '=') mapping to mappings or nothing. An INI host line such as
// `h1 e={'k': 2}` is valid YAML too, but not this.
func looksLikeYAMLInventory(doc *yamlnode.Doc, root *yaml.Node) bool {
	if root == nil || root.Kind != yaml.MappingNode {
		return false
	}
	for _, kv := range doc.Pairs(root, nil) {
		if kv.Key.Value == "plugin" {
			return true
		}
		if strings.ContainsAny(kv.Key.Value, " \t=") || !(yamlnode.IsNull(kv.Value) || kv.Value.Kind == yaml.MappingNode) {
			return false
		}
	}
	return true
}

func yamlOrPlugin(ctx context.Context, file string, src []byte, doc *yamlnode.Doc, root *yaml.Node, opts Options) (*Inventory, error) {
	if root != nil && root.Kind == yaml.MappingNode {
		for _, kv := range doc.Pairs(root, nil) {
			if kv.Key.Value != "plugin" {
				continue
			}
			return runPlugin(ctx, file, src, kv.Value, opts)
		}
	}
	return parseYAMLInventory(file, src, doc, root)
}

func runPlugin(ctx context.Context, file string, src []byte, val *yaml.Node, opts Options) (*Inventory, error) {
	pos := diag.Pos{File: file, Line: val.Line, Col: val.Column}
	known := PluginNames()
	if val.Kind != yaml.ScalarNode || val.Value == "" || yamlnode.IsNull(val) {
		return nil, diag.New(src, pos, "e.g. `plugin: aws_ec2`", "plugin must name an inventory plugin")
	}
	p, ok := lookupPlugin(val.Value)
	if !ok {
		hint := suggest(val.Value, known)
		if len(known) > 0 {
			if hint != "" {
				hint += " "
			}
			hint += "known plugins: " + strings.Join(known, ", ")
		} else {
			hint = "no inventory plugin is available in this build"
		}
		return nil, diag.New(src, pos, hint, "unknown inventory plugin %q", val.Value)
	}
	inv, err := p(ctx, file, src, opts)
	if err != nil {
		return nil, err
	}
	if inv == nil {
		inv = New()
	}
	inv.init()
	if len(inv.Sources) == 0 {
		inv.Sources = []string{file}
	}
	inv.reconcile()
	return inv, nil
}

// loadVarsDirs applies base/group_vars and base/host_vars as Ansible's
// host_group_vars plugin does: for entity NAME the file NAME, NAME.yml,
// NAME.yaml, NAME.json, or every file under the directory NAME/.
var varsExts = []string{"", ".yml", ".yaml", ".json"}

// rankOf orders the spellings of a vars file as Ansible tries them.
func rankOf(ext string, isDir bool) int {
	if isDir {
		return 0
	}
	for i, e := range varsExts {
		if e == ext {
			return i
		}
	}
	return len(varsExts)
}

func (inv *Inventory) loadVarsDirs(base string) error {
	var errs diag.List
	apply := func(sub string, known func(string) bool, names func() []string, set func(string, map[string]any)) error {
		dir := filepath.Join(base, sub)
		entries, err := os.ReadDir(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) || isNotDir(err) {
				return nil
			}
			return fmt.Errorf("read %s: %w", dir, err)
		}
		files := map[string][]string{}
		best := map[string]int{}
		var order []string
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
				continue
			}
			full := filepath.Join(dir, name)
			ext := filepath.Ext(name)
			entity := name
			isDir := e.IsDir()
			if st, err := os.Stat(full); err == nil {
				isDir = st.IsDir()
			}
			if !isDir {
				switch ext {
				case ".yml", ".yaml", ".json":
					entity = strings.TrimSuffix(name, ext)
				case "":
				default:
					continue
				}
			}
			if !known(entity) {
				w := fmt.Sprintf("%s matches no %s", full, strings.TrimSuffix(sub, "_vars"))
				if s := suggest(entity, names()); s != "" {
					w += ": " + s
				}
				inv.Warnings = append(inv.Warnings, w)
				continue
			}
			if _, ok := files[entity]; !ok {
				order = append(order, entity)
				best[entity] = len(varsExts)
			}
			// As Ansible's find_vars_files: the first of NAME (file or
			// directory), NAME.yml, NAME.yaml, NAME.json that exists is read,
			// the others are not.
			r := rankOf(ext, isDir)
			if r > best[entity] {
				continue
			}
			if r < best[entity] {
				best[entity], files[entity] = r, nil
			}
			if isDir {
				files[entity] = append(files[entity], varsDirFiles(full)...)
			} else {
				files[entity] = append(files[entity], full)
			}
		}
		for _, entity := range order {
			fl := files[entity]
			sort.SliceStable(fl, func(i, j int) bool { return extRank(fl[i], entity) < extRank(fl[j], entity) })
			merged := map[string]any{}
			for _, f := range fl {
				vars, err := inv.readVarsFile(f)
				if err != nil {
					if err := errs.Collect(err); err != nil {
						return err
					}
					continue
				}
				for k, v := range vars {
					merged[k] = v
				}
			}
			set(entity, merged)
		}
		return nil
	}
	err := apply("group_vars",
		func(n string) bool { _, ok := inv.Groups[n]; return ok },
		func() []string { return append([]string(nil), inv.groupOrder...) },
		func(n string, vars map[string]any) {
			g := inv.Groups[n]
			if g.fileVars == nil {
				g.fileVars = map[string]any{}
			}
			for k, v := range vars {
				g.fileVars[k] = v
			}
		})
	if err != nil {
		return err
	}
	err = apply("host_vars",
		func(n string) bool { _, ok := inv.hostIdx[n]; return ok || IsLocalhostName(n) },
		func() []string {
			out := make([]string, len(inv.Hosts))
			for i, h := range inv.Hosts {
				out[i] = h.Name
			}
			return out
		},
		func(n string, vars map[string]any) {
			i, ok := inv.hostIdx[n]
			if !ok { // the implicit localhost's, as in Ansible
				if inv.implicitVars == nil {
					inv.implicitVars = map[string]map[string]any{}
				}
				if inv.implicitVars[n] == nil {
					inv.implicitVars[n] = map[string]any{}
				}
				maps.Copy(inv.implicitVars[n], vars)
				return
			}
			h := inv.Hosts[i]
			if h.fileVars == nil {
				h.fileVars = map[string]any{}
			}
			for k, v := range vars {
				h.fileVars[k] = v
			}
		})
	if err != nil {
		return err
	}
	inv.dirty = true
	return errs.Err()
}

func isNotDir(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "not a directory")
}

// extRank orders an entity's files as Ansible looks them up: NAME (or the
// files of NAME/), NAME.yml, NAME.yaml, NAME.json.
func extRank(file, entity string) int {
	switch filepath.Base(file) {
	case entity + ".yml":
		return 1
	case entity + ".yaml":
		return 2
	case entity + ".json":
		return 3
	}
	return 0
}

// varsDirFiles lists the vars files under dir, recursively and sorted.
func varsDirFiles(dir string) []string {
	var out []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
			continue
		}
		full := filepath.Join(dir, name)
		if e.IsDir() {
			out = append(out, varsDirFiles(full)...)
			continue
		}
		switch filepath.Ext(name) {
		case "", ".yml", ".yaml", ".json":
			out = append(out, full)
		}
	}
	return out
}

func (inv *Inventory) readVarsFile(file string) (map[string]any, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read vars file: %w", err)
	}
	if bytes.HasPrefix(src, []byte("$ANSIBLE_VAULT")) {
		inv.Warnings = append(inv.Warnings, fmt.Sprintf("%s is vault-encrypted: ferry does not decrypt Ansible Vault, its variables are not loaded", file))
		return nil, nil
	}
	root, doc, err := yamlRoot(file, src)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, nil
	}
	var errs diag.List
	fail := func(n *yaml.Node, hint, format string, args ...any) {
		errs = append(errs, diag.New(src, diag.Pos{File: file, Line: n.Line, Col: n.Column}, hint, format, args...))
	}
	warn := func(n *yaml.Node, format string, args ...any) {
		inv.Warnings = append(inv.Warnings, fmt.Sprintf("%s:%d:%d: %s", file, n.Line, n.Column, fmt.Sprintf(format, args...)))
	}
	vars := yamlVars(doc, root, "a vars file", fail, warn)
	if err := expansionError(file, src, doc); err != nil {
		errs = append(errs, err)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return vars, nil
}

package tasks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

func init() { Register(includeVarsModule{}) }

// includeVarsModule reads a YAML (or JSON) file of variables on the
// controller and sets them as host variables, as Ansible's include_vars.
type includeVarsModule struct{}

func (includeVarsModule) Spec() Spec {
	return Spec{
		Name: "include_vars", Controller: true, FreeForm: "file", VarsFile: "file",
		Doc: "Set host variables from a YAML or JSON file on the controller (a role's vars/ first, then files next to the playbook)",
		Params: map[string]Param{
			"file": {Type: String, Required: true, Doc: "the file: relative to the role's vars/ or the playbook's directory"},
			"name": {Type: String, Doc: "put the file's variables under this one variable instead"},
		},
		Returns: map[string]string{"ansible_facts": "the variables set"},
	}
}

// VarsFilePath finds a vars file as include_vars does: as given when
// absolute, else in the role's vars/ (dir is the role's files/ or the
// role), then in dir.
func VarsFilePath(dir, file string) string {
	if filepath.IsAbs(file) {
		return file
	}
	role := dir
	if b := filepath.Base(dir); b == "files" || b == "templates" {
		role = filepath.Dir(dir)
	}
	for _, c := range []string{filepath.Join(role, "vars", file), filepath.Join(dir, file), filepath.Join(role, file)} {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c
		}
	}
	return filepath.Join(dir, file)
}

// ReadVarsFile reads a mapping of variables from a YAML or JSON file.
func ReadVarsFile(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

func (includeVarsModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	a := NewArgs("include_vars", args)
	file := a.String("file", "")
	name := a.String("name", "")
	if err := a.Err(); err != nil {
		return Outcome{}, err
	}
	if file == "" {
		return Outcome{}, errors.New("include_vars: give the file")
	}
	path := VarsFilePath(h.Dir, file)
	vars, err := ReadVarsFile(path)
	if err != nil {
		return Outcome{}, fmt.Errorf("include_vars: %w", err)
	}
	for k := range vars {
		if !identRe.MatchString(k) {
			return Outcome{}, fmt.Errorf("include_vars: %s: %q is not a variable name", path, k)
		}
	}
	if err := renderVarsFile(h, vars); err != nil {
		return Outcome{}, fmt.Errorf("include_vars: %s: %w", path, err)
	}
	facts := vars
	if name != "" {
		facts = map[string]any{name: vars}
	}
	return Outcome{Msg: "set " + joinKeys(facts), Facts: facts, Result: map[string]any{"ansible_facts": facts}}, nil
}

// renderVarsFile renders the file's {{ }} strings, which may read the
// file's other (plain string) variables, as Ansible's lazy templating
// allows: a few passes, each rendering what the last one resolved.
func renderVarsFile(h *Host, vars map[string]any) error {
	if h.Render == nil {
		return nil
	}
	pending := map[string]string{}
	for k, v := range vars {
		if s, ok := v.(string); ok && strings.Contains(s, "{{") {
			pending[k] = s
		}
	}
	for pass := 0; len(pending) > 0; pass++ {
		var prelude strings.Builder
		for k, v := range vars {
			if s, ok := v.(string); ok && pending[k] == "" && !strings.ContainsAny(s, "{}%") {
				fmt.Fprintf(&prelude, "{%% set %s = %s %%}", k, strconv.Quote(s))
			}
		}
		progress := false
		var last error
		for _, k := range slices.Sorted(maps.Keys(anyMap(pending))) {
			out, err := h.Render(prelude.String() + pending[k])
			if err != nil {
				last = fmt.Errorf("%s: %w", k, err)
				continue
			}
			vars[k] = out
			delete(pending, k)
			progress = true
		}
		if !progress {
			return last
		}
	}
	return nil
}

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

package playbooks

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/template"
)

// ParseExtraVars reads the values of repeated -e flags, later ones winning
// (a key's whole value is replaced). Each value is one of:
//
//   - KEY=VALUE: VALUE is a string, always, as in Ansible (`-e version=1.10`
//     is "1.10", not a number); everything after the first = is the value.
//   - @FILE: a YAML or JSON file holding a mapping (typed values).
//   - a JSON or YAML flow mapping starting with `{`: `-e '{"replicas": 3}'` (typed).
//
// Keys must be variable names (letters, digits, _) and not one of template.Reserved.
// Errors are diag errors: positioned in a file, or naming the flag value.
func ParseExtraVars(values []string) (map[string]any, error) {
	out := map[string]any{}
	var errs diag.List
	for _, v := range values {
		m, err := parseExtra(v)
		if err != nil {
			if l, ok := err.(diag.List); ok {
				errs = append(errs, l...)
				continue
			}
			if e, ok := err.(*diag.Error); ok {
				errs = append(errs, e)
				continue
			}
			return nil, err
		}
		for k, x := range m {
			out[k] = x
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func parseExtra(v string) (map[string]any, error) {
	trimmed := strings.TrimSpace(v)
	switch {
	case strings.HasPrefix(trimmed, "@"):
		path := strings.TrimPrefix(trimmed, "@")
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, diag.Invalidf("-e %s: %v", trimmed, err)
		}
		return parseExtraDoc(path, src, "")
	case strings.HasPrefix(trimmed, "{"):
		return parseExtraDoc("-e", []byte(trimmed), trimmed)
	}
	key, val, ok := strings.Cut(v, "=")
	if !ok {
		return nil, diag.Invalidf("-e %q: want KEY=VALUE, @FILE or a JSON object", v)
	}
	key = strings.TrimSpace(key)
	if err := checkExtraKey(key); err != nil {
		return nil, diag.Invalidf("-e %q: %v", v, err)
	}
	return map[string]any{key: val}, nil
}

func checkExtraKey(key string) error {
	if !template.IsIdent(key) {
		return fmt.Errorf("%q is not a variable name (letters, digits and _)", key)
	}
	if slices.Contains(template.Reserved, key) {
		return fmt.Errorf("%q is reserved (set by ferry); every -e value is also readable as extra.NAME", key)
	}
	return nil
}

// parseExtraDoc reads a mapping of extra vars from a file (or a flag value, when flag is set).
func parseExtraDoc(path string, src []byte, flag string) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		if flag != "" {
			var js map[string]any
			if jerr := json.Unmarshal(src, &js); jerr != nil {
				return nil, diag.Invalidf("-e %s: not a JSON object: %v", flag, jerr)
			}
		}
		l := &loader{path: path, src: src}
		return nil, diag.List{l.yamlError(err)}
	}
	l := &loader{path: path, src: src}
	if len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
		return map[string]any{}, nil
	}
	root := l.resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		if flag != "" {
			return nil, diag.Invalidf("-e %s: want a mapping of variables", flag)
		}
		l.errorf(l.pos(root), "e.g. version: 1.2.3", "extra vars: want a mapping of variables, not %s", kindName(root))
		return nil, l.errs
	}
	out := map[string]any{}
	for _, kv := range l.pairs(root, "extra vars") {
		if err := checkExtraKey(kv.key); err != nil {
			l.errorf(l.pos(kv.k), "", "extra vars: %v", err)
			continue
		}
		out[kv.key] = l.value(kv.v, "", nil)
	}
	l.expansionErr()
	if len(l.errs) > 0 {
		if flag != "" {
			return nil, diag.Invalidf("-e %s: %v", flag, l.errs[0].Msg)
		}
		return nil, l.errs
	}
	return out, nil
}

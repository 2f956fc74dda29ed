package tasks

import (
	"context"
	"errors"
	"maps"
	"regexp"
	"slices"
)

func init() { Register(setFactModule{}) }

// setFactModule sets host variables from its arguments (already rendered).
// Its Spec has AnyParams: every key is a variable name.
type setFactModule struct{}

func (setFactModule) Spec() Spec {
	return Spec{Name: "set_fact", Doc: "Set host variables for the rest of the run", Controller: true, AnyParams: true, DefinesFacts: true,
		Returns: map[string]string{"ansible_facts": "the variables set"}}
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (setFactModule) Run(ctx context.Context, h *Host, args map[string]any) (Outcome, error) {
	if len(args) == 0 {
		return Outcome{}, errors.New("set_fact: give at least one name: value")
	}
	facts := make(map[string]any, len(args))
	for _, k := range slices.Sorted(maps.Keys(args)) {
		if k == "cacheable" { // Ansible's fact-cache flag: nothing to cache here
			continue
		}
		if !identRe.MatchString(k) {
			return Outcome{}, errors.New("set_fact: " + k + " is not a variable name (letters, digits, _)")
		}
		facts[k] = args[k]
	}
	return Outcome{Msg: "set " + joinKeys(facts), Facts: facts, Result: map[string]any{"ansible_facts": facts}}, nil
}

func joinKeys(m map[string]any) string {
	s := ""
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			s += ", "
		}
		s += k
	}
	return s
}

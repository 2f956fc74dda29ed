package tasks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ferrydeploy/ferry/internal/value"
)

// Call validates args against m's Spec and runs m: the one place where a
// module's arguments are checked at run time, so that Run reads them
// without repeating the Spec's rules.
func Call(ctx context.Context, m Module, h *Host, args map[string]any) (Outcome, error) {
	if err := m.Spec().Validate(args); err != nil {
		return Outcome{}, err
	}
	return m.Run(ctx, h, args)
}

// Validate checks rendered arguments against the Spec: known names,
// required ones, one-of groups, and each value's type and choices.
func (s Spec) Validate(args map[string]any) error {
	var errs []error
	fail := func(key, format string, v ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", s.Name, key, fmt.Sprintf(format, v...)))
	}
	anyKeys := s.AnyParams || (s.Params == nil && s.FreeForm == "")
	for _, k := range slices.Sorted(maps.Keys(args)) {
		p, ok := s.Params[k]
		if !ok {
			if !anyKeys {
				fail(k, "unknown parameter")
			}
			continue
		}
		if args[k] == nil {
			continue
		}
		if err := p.Check(args[k]); err != nil {
			fail(k, "%v", err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Params)) {
		if s.Params[k].Required && args[k] == nil {
			fail(k, "is required")
		}
	}
	for _, p := range s.OneOfProblems(args) {
		errs = append(errs, errors.New(p.Msg))
	}
	return errors.Join(errs...)
}

// Problem is one thing wrong with a call's arguments, and what to do.
type Problem struct{ Msg, Hint string }

// OneOfProblems checks the OneOf groups against the given arguments (at
// load time, and rendered at run time).
func (s Spec) OneOfProblems(args map[string]any) []Problem {
	var out []Problem
	for _, group := range s.OneOf {
		var given []string
		for _, g := range group {
			if args[g] != nil {
				given = append(given, g)
			}
		}
		switch {
		case len(given) == 0:
			out = append(out, Problem{Msg: fmt.Sprintf("%s: needs one of %s", s.Name, strings.Join(group, ", "))})
		case len(given) > 1:
			out = append(out, Problem{Msg: fmt.Sprintf("%s: takes only one of %s, got %s", s.Name, strings.Join(group, ", "), strings.Join(given, " and ")),
				Hint: "keep one of them"})
		}
	}
	return out
}

// Check reports whether v (a rendered, non-nil value) fits the param: the
// same rules at load time (`ferry check`) and at run time.
func (p Param) Check(v any) error {
	switch p.Type {
	case String:
		s, ok := scalarString(v)
		if !ok {
			return fmt.Errorf("want a string, not %s", typeName(v))
		}
		if len(p.Choices) > 0 && !slices.Contains(p.Choices, s) {
			return fmt.Errorf("%q is not one of %s", s, strings.Join(p.Choices, ", "))
		}
	case Int:
		if _, ok := value.Int(v); !ok {
			return fmt.Errorf("want a whole number, not %s", typeName(v))
		}
	case Bool:
		if _, ok := value.Bool(v); !ok {
			return fmt.Errorf("want true or false (%s), not %v", value.Words, v)
		}
	case Duration:
		if _, err := value.Duration(v); err != nil {
			return err
		}
	case List:
		switch v.(type) {
		case []any, []string:
		default:
			if _, ok := scalarString(v); !ok {
				return fmt.Errorf("want a list, not %s", typeName(v))
			}
		}
	case Map:
		if _, ok := toMap(v); !ok {
			return fmt.Errorf("want a mapping, not %s", typeName(v))
		}
	}
	return nil
}

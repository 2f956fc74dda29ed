// Jinja's tests (`is defined`, `is changed`, `is match`, `is version`) and the comparisons they share with the `in` and `==` operators.

package template

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode"
)

func kindTest(f func(any) bool) jfunc {
	return func(a []any, _ kwargs) (any, error) { return f(arg(a, 0)), nil }
}

func isString(v any) bool { _, ok := v.(string); return ok }

func runTest(name string, v any, args []any) (bool, error) {
	if name == "" {
		return truthy(v), nil
	}
	switch name {
	case "==", "!=", "<", ">", "<=", ">=":
		return cmpOp(name, v, arg(args, 0)), nil
	}
	t, ok := testImpls[name]
	if !ok {
		return false, fmt.Errorf("unknown test %q", name)
	}
	r, err := t(append([]any{v}, args...), nil)
	return truthy(r), err
}

func resultTest(key string, want bool) jfunc {
	return func(a []any, _ kwargs) (any, error) {
		m, ok := arg(a, 0).(map[string]any)
		if !ok {
			return nil, fmt.Errorf("is %s: want a registered result, got %s", key, Describe(arg(a, 0)))
		}
		v := toBool(m[key])
		if key == "failed" && !want {
			return !v, nil
		}
		return v == want, nil
	}
}

func tRegex(kind string) jfunc {
	return func(a []any, kw kwargs) (any, error) {
		re, err := pyRegex(Text(arg(a, 1)), toBool(kw["ignorecase"]), toBool(kw["multiline"]))
		if err != nil {
			return nil, err
		}
		s := Text(arg(a, 0))
		if kind == "match" {
			loc := re.FindStringIndex(s)
			return loc != nil && loc[0] == 0, nil
		}
		return re.MatchString(s), nil
	}
}

func tEq(a []any, _ kwargs) (any, error) { return cmpOp("==", arg(a, 0), arg(a, 1)), nil }

func cmpTest(op string) jfunc {
	return func(a []any, _ kwargs) (any, error) { return cmpOp(op, arg(a, 0), arg(a, 1)), nil }
}

func cmpOp(op string, x, y any) bool {
	switch op {
	case "==":
		return equal(x, y)
	case "!=":
		return !equal(x, y)
	case "<":
		return less(x, y)
	case ">":
		return less(y, x)
	case "<=":
		return !less(y, x)
	case ">=":
		return !less(x, y)
	}
	return false
}

func equal(x, y any) bool {
	if a, ok := toNumber(x); ok {
		if b, ok := toNumber(y); ok {
			return a == b
		}
	}
	return reflect.DeepEqual(x, y)
}

// tVersion is Ansible's version test: version('1.2', '>=').
func tVersion(a []any, kw kwargs) (any, error) {
	op := Text(opt(a, kw, 2, "operator", "=="))
	c := compareVersions(Text(arg(a, 0)), Text(arg(a, 1)))
	switch op {
	case "<", "lt":
		return c < 0, nil
	case "<=", "le":
		return c <= 0, nil
	case ">", "gt":
		return c > 0, nil
	case ">=", "ge":
		return c >= 0, nil
	case "==", "=", "eq":
		return c == 0, nil
	case "!=", "<>", "ne":
		return c != 0, nil
	}
	return nil, fmt.Errorf("version: unknown operator %q", op)
}

// compareVersions compares dotted versions part by part, numbers as numbers.
func compareVersions(x, y string) int {
	split := func(s string) []string {
		return strings.FieldsFunc(strings.TrimPrefix(s, "v"), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	}
	a, b := split(x), split(y)
	for i := 0; i < len(a) || i < len(b); i++ {
		var p, q string
		if i < len(a) {
			p = a[i]
		}
		if i < len(b) {
			q = b[i]
		}
		pn, e1 := strconv.Atoi(p)
		qn, e2 := strconv.Atoi(q)
		if p == "" {
			e1, pn = nil, 0
		}
		if q == "" {
			e2, qn = nil, 0
		}
		switch {
		case e1 == nil && e2 == nil:
			if pn != qn {
				if pn < qn {
					return -1
				}
				return 1
			}
		case p != q:
			if p < q {
				return -1
			}
			return 1
		}
	}
	return 0
}

func inOp(x, container any) bool {
	switch c := container.(type) {
	case string:
		return strings.Contains(c, Text(x))
	case map[string]any:
		_, ok := c[Text(x)]
		return ok
	case nil:
		return false
	}
	l, err := toList(container)
	if err != nil {
		return false
	}
	for _, y := range l {
		if equal(x, y) {
			return true
		}
	}
	return false
}

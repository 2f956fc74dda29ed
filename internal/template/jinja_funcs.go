package template

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"math"
	"path"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/builtin"

	"github.com/ferrydeploy/ferry/diag"
	"github.com/ferrydeploy/ferry/internal/shell"
	"github.com/ferrydeploy/ferry/internal/value"
)

// kwargs are a Jinja call's keyword arguments (`map(attribute='name')`).
type kwargs map[string]any

// jfunc is one filter or test: the value, the positional arguments, the keywords.
type jfunc func(args []any, kw kwargs) (any, error)

// jinjaFilters maps a Jinja filter name to the expr function it becomes.
var jinjaFilters = map[string]string{}

// jinjaTests maps a Jinja test name to the expr function it becomes.
var jinjaTests = map[string]string{}

// jinjaGlobals are Jinja's global functions (`range(3)`, `lookup('env', 'HOME')`).
var jinjaGlobals = map[string]string{"range": "$j_range", "lookup": "$j_lookup", "query": "$j_query", "q": "$j_query", "dict": "$j_dict"}

var filterImpls = map[string]jfunc{}
var testImpls = map[string]jfunc{}

// lenientFuncs take an argument that may be undefined (a `default` covers it).
var lenientFuncs = map[string]bool{"default": true, "$j_default": true, "$j_defined": true, "$j_undefined": true,
	"$j_mandatory": true, "$j_none": true}

func init() {
	filterImpls = map[string]jfunc{
		"default": fDefault, "d": fDefault, "mandatory": fMandatory,
		"bool": one(func(v any) (any, error) { return toBool(v), nil }),
		"int":  fInt, "float": fFloat,
		"string": one(func(v any) (any, error) { return Text(v), nil }),
		"lower":  str1(strings.ToLower), "upper": str1(strings.ToUpper), "trim": str1(strings.TrimSpace),
		"capitalize": str1(func(s string) string {
			if s == "" {
				return s
			}
			return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
		}),
		"title":  str1(title),
		"length": fLength, "count": fLength,
		"join": fJoin, "split": fSplit, "replace": fReplace,
		"regex_replace": fRegexReplace, "regex_search": fRegexSearch, "regex_findall": fRegexFindall,
		"regex_escape": str1(regexp.QuoteMeta),
		"first":        fFirst, "last": fLast, "unique": fUnique, "sort": fSort, "reverse": fReverse,
		"list": fList, "flatten": fFlatten,
		"to_json": fToJSON, "to_nice_json": fToNiceJSON, "from_json": fFromJSON,
		"to_yaml": fToYAML, "to_nice_yaml": fToYAML, "from_yaml": fFromYAML,
		"basename": str1(path.Base), "dirname": str1(path.Dir),
		"b64encode": str1(func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }),
		"b64decode": fB64decode,
		"quote":     str1(shell.Quote),
		"ternary":   fTernary, "combine": fCombine, "dict2items": fDict2items, "items2dict": fItems2dict,
		"map": fMap, "select": fSelect(false), "reject": fSelect(true),
		"selectattr": fSelectAttr(false), "rejectattr": fSelectAttr(true),
		"min": fMinMax(-1), "max": fMinMax(1), "sum": fSum, "abs": fAbs, "round": fRound,
		"difference": fSetOp("difference"), "intersect": fSetOp("intersect"), "union": fSetOp("union"),
		"zip": fZip, "version_compare": tVersion,
		// tests used as filters, as old playbooks do (`when: result|changed`)
		"changed": resultTest("changed", true), "failed": resultTest("failed", true),
		"success": resultTest("failed", false), "succeeded": resultTest("failed", false), "skipped": resultTest("skipped", true),
	}
	testImpls = map[string]jfunc{
		"defined":   one(func(v any) (any, error) { return v != nil, nil }),
		"undefined": one(func(v any) (any, error) { return v == nil, nil }),
		"none":      one(func(v any) (any, error) { return v == nil, nil }),
		"failed":    resultTest("failed", true), "failure": resultTest("failed", true),
		"succeeded": resultTest("failed", false), "success": resultTest("failed", false), "successful": resultTest("failed", false),
		"changed": resultTest("changed", true), "change": resultTest("changed", true),
		"skipped": resultTest("skipped", true), "skip": resultTest("skipped", true),
		"match": tRegex("match"), "search": tRegex("search"), "regex": tRegex("search"),
		"version": tVersion, "version_compare": tVersion,
		"string":  kindTest(func(v any) bool { _, ok := v.(string); return ok }),
		"number":  kindTest(func(v any) bool { _, ok := toNumber(v); return ok && !isString(v) }),
		"integer": kindTest(func(v any) bool { k := reflect.ValueOf(v).Kind(); return k >= reflect.Int && k <= reflect.Uint64 }),
		"float":   kindTest(func(v any) bool { _, ok := v.(float64); return ok }),
		"boolean": kindTest(func(v any) bool { _, ok := v.(bool); return ok }),
		"mapping": kindTest(func(v any) bool { return reflect.ValueOf(v).Kind() == reflect.Map }),
		"sequence": kindTest(func(v any) bool {
			k := reflect.ValueOf(v).Kind()
			return k == reflect.Slice || k == reflect.String
		}),
		"iterable": kindTest(func(v any) bool {
			k := reflect.ValueOf(v).Kind()
			return k == reflect.Slice || k == reflect.Map || k == reflect.String
		}),
		"true":   kindTest(func(v any) bool { return v == true }),
		"false":  kindTest(func(v any) bool { return v == false }),
		"truthy": kindTest(truthy), "falsy": kindTest(func(v any) bool { return !truthy(v) }),
		"equalto": tEq, "eq": tEq, "sameas": tEq,
		"in":       func(a []any, _ kwargs) (any, error) { return inOp(arg(a, 0), arg(a, 1)), nil },
		"contains": func(a []any, _ kwargs) (any, error) { return inOp(arg(a, 1), arg(a, 0)), nil },
		"lower":    kindTest(func(v any) bool { s, ok := v.(string); return ok && s == strings.ToLower(s) }),
		"upper":    kindTest(func(v any) bool { s, ok := v.(string); return ok && s == strings.ToUpper(s) }),
		"even":     kindTest(func(v any) bool { n, ok := toNumber(v); return ok && math.Mod(n, 2) == 0 }),
		"odd":      kindTest(func(v any) bool { n, ok := toNumber(v); return ok && math.Abs(math.Mod(n, 2)) == 1 }),
		"divisibleby": func(a []any, _ kwargs) (any, error) {
			x, _ := toNumber(arg(a, 0))
			y, _ := toNumber(arg(a, 1))
			return y != 0 && math.Mod(x, y) == 0, nil
		},
		"gt": cmpTest(">"), "ge": cmpTest(">="), "lt": cmpTest("<"), "le": cmpTest("<="), "ne": cmpTest("!="),
	}
	for name := range filterImpls {
		jinjaFilters[name] = "$j_" + name
	}
	for name := range testImpls {
		jinjaTests[name] = "$j_is_" + name
	}
	jinjaTests["defined"], jinjaTests["undefined"], jinjaTests["none"] = "$j_defined", "$j_undefined", "$j_none"
	add := func(name string, fn func(params ...any) (any, error)) {
		functions = append(functions, expr.Function(name, fn))
		funcNames = append(funcNames, name)
	}
	for name, impl := range filterImpls {
		add("$j_"+name, wrap(impl))
	}
	for name, impl := range testImpls {
		add("$j_is_"+name, wrap(impl))
	}
	add("$j_defined", wrap(testImpls["defined"]))
	add("$j_undefined", wrap(testImpls["undefined"]))
	add("$j_none", wrap(testImpls["none"]))
	add("$j_truthy", func(p ...any) (any, error) { return truthy(arg(p, 0)), nil })
	add("$j_in", func(p ...any) (any, error) { return inOp(arg(p, 0), arg(p, 1)), nil })
	add("$j_cat", func(p ...any) (any, error) { return Text(arg(p, 0)) + Text(arg(p, 1)), nil })
	add("$j_add", func(p ...any) (any, error) { return jAdd(arg(p, 0), arg(p, 1)) })
	add("$j_mod", func(p ...any) (any, error) { return jMod(arg(p, 0), arg(p, 1)) })
	add("$j_floordiv", func(p ...any) (any, error) {
		x, ok1 := toNumber(arg(p, 0))
		y, ok2 := toNumber(arg(p, 1))
		if !ok1 || !ok2 || y == 0 {
			return nil, errors.New("//: want two numbers, the second not 0")
		}
		return numResult(math.Floor(x / y)), nil
	})
	add("$j_kw", func(p ...any) (any, error) {
		m, _ := arg(p, 0).(map[string]any)
		return kwargs(m), nil
	})
	add("$j_method", jMethod)
	add("$j_range", wrap(jRange))
	add("$j_lookup", wrap(jLookup))
	add("$j_query", wrap(func(a []any, kw kwargs) (any, error) {
		v, err := jLookup(a, kw)
		if err != nil {
			return nil, err
		}
		if l, ok := v.([]any); ok {
			return l, nil
		}
		return []any{v}, nil
	}))
	add("$j_dict", func(p ...any) (any, error) {
		out := map[string]any{}
		for _, x := range p {
			if kw, ok := x.(kwargs); ok {
				for k, v := range kw {
					out[k] = v
				}
			} else if l, ok := x.([]any); ok {
				for _, pair := range l {
					if pl, ok := pair.([]any); ok && len(pl) == 2 {
						out[Text(pl[0])] = pl[1]
					}
				}
			}
		}
		return out, nil
	})
}

func isExprBuiltin(name string) bool {
	for _, b := range builtin.Names {
		if b == name {
			return true
		}
	}
	return false
}

func suggestFilter(name string) string {
	names := make([]string, 0, len(filterImpls))
	for n := range filterImpls {
		names = append(names, n)
	}
	sort.Strings(names)
	if s := diag.Suggest(name, names); s != "" {
		return s
	}
	return "filters ferry knows: " + strings.Join(names, ", ")
}

func suggestTest(name string) string {
	names := make([]string, 0, len(testImpls))
	for n := range testImpls {
		names = append(names, n)
	}
	sort.Strings(names)
	if s := diag.Suggest(name, names); s != "" {
		return s
	}
	return "tests ferry knows: " + strings.Join(names, ", ")
}

// wrap turns a jfunc into an expr function: a trailing kwargs argument is split off.
func wrap(f jfunc) func(params ...any) (any, error) {
	return func(params ...any) (any, error) {
		var kw kwargs
		if n := len(params); n > 0 {
			if k, ok := params[n-1].(kwargs); ok {
				kw, params = k, params[:n-1]
			}
		}
		return f(params, kw)
	}
}

func arg(a []any, i int) any {
	if i < len(a) {
		return a[i]
	}
	return nil
}

// opt is the i-th positional argument, else the keyword, else def.
func opt(a []any, kw kwargs, i int, name string, def any) any {
	if i < len(a) {
		return a[i]
	}
	if v, ok := kw[name]; ok {
		return v
	}
	return def
}

func one(f func(any) (any, error)) jfunc {
	return func(a []any, _ kwargs) (any, error) { return f(arg(a, 0)) }
}

func str1(f func(string) string) jfunc {
	return func(a []any, _ kwargs) (any, error) { return f(Text(arg(a, 0))), nil }
}

// truthy is Python's truth value (value.Truthy).
var truthy = value.Truthy

// toBool is Ansible's `bool` filter: what value.Bool accepts, else false.
func toBool(v any) bool {
	b, _ := value.Bool(v)
	return b
}

func jAdd(x, y any) (any, error) {
	if a, ok := toNumber(x); ok {
		if b, ok := toNumber(y); ok {
			if _, fa := x.(float64); !fa {
				if _, fb := y.(float64); !fb {
					return numResult(a + b), nil
				}
			}
			return a + b, nil
		}
	}
	if a, ok := x.(string); ok {
		if b, ok := y.(string); ok {
			return a + b, nil
		}
	}
	if a, err := toList(x); err == nil && !isString(x) && x != nil {
		if b, err := toList(y); err == nil && !isString(y) && y != nil {
			return append(append([]any{}, a...), b...), nil
		}
	}
	return nil, fmt.Errorf("+: cannot add %s and %s (use ~ to join as text)", Describe(x), Describe(y))
}

// jMethod is a Python method call on a value: 'a,b'.split(','), d.get('k', 0), d.items().
func jMethod(p ...any) (any, error) {
	if len(p) < 2 {
		return nil, errors.New("internal: bad method call")
	}
	recv, name, args := p[0], Text(p[1]), p[2:]
	switch r := recv.(type) {
	case string:
		switch name {
		case "split":
			return fSplit(append([]any{r}, args...), nil)
		case "strip":
			if len(args) > 0 {
				return strings.Trim(r, Text(args[0])), nil
			}
			return strings.TrimSpace(r), nil
		case "lstrip":
			return strings.TrimLeft(r, " \t\n"), nil
		case "rstrip":
			return strings.TrimRight(r, " \t\n"), nil
		case "lower":
			return strings.ToLower(r), nil
		case "upper":
			return strings.ToUpper(r), nil
		case "startswith":
			return strings.HasPrefix(r, Text(arg(args, 0))), nil
		case "endswith":
			return strings.HasSuffix(r, Text(arg(args, 0))), nil
		case "replace":
			return strings.ReplaceAll(r, Text(arg(args, 0)), Text(arg(args, 1))), nil
		case "find":
			return strings.Index(r, Text(arg(args, 0))), nil
		case "splitlines":
			return fSplit([]any{strings.TrimRight(r, "\n"), "\n"}, nil)
		case "join":
			return fJoin([]any{arg(args, 0), r}, nil)
		case "format":
			out := r
			for _, x := range args {
				out = strings.Replace(out, "{}", Text(x), 1)
			}
			return out, nil
		}
	case map[string]any:
		switch name {
		case "get":
			if v, ok := r[Text(arg(args, 0))]; ok {
				return v, nil
			}
			return arg(args, 1), nil
		case "keys":
			return toList(r)
		case "values":
			out := []any{}
			for _, k := range slices.Sorted(maps.Keys(r)) {
				out = append(out, r[k])
			}
			return out, nil
		case "items":
			out := []any{}
			for _, k := range slices.Sorted(maps.Keys(r)) {
				out = append(out, []any{k, r[k]})
			}
			return out, nil
		}
	case []any:
		switch name {
		case "index":
			for i, x := range r {
				if equal(x, arg(args, 0)) {
					return i, nil
				}
			}
			return nil, fmt.Errorf("index: %s is not in the list", Describe(arg(args, 0)))
		case "count":
			n := 0
			for _, x := range r {
				if equal(x, arg(args, 0)) {
					n++
				}
			}
			return n, nil
		}
	}
	return nil, fmt.Errorf("%s has no method %s()", Describe(recv), name)
}

func jRange(a []any, _ kwargs) (any, error) {
	nums := make([]int, len(a))
	for i, x := range a {
		n, ok := toNumber(x)
		if !ok {
			return nil, errors.New("range: want whole numbers")
		}
		nums[i] = int(n)
	}
	start, stop, step := 0, 0, 1
	switch len(nums) {
	case 1:
		stop = nums[0]
	case 2:
		start, stop = nums[0], nums[1]
	case 3:
		start, stop, step = nums[0], nums[1], nums[2]
	default:
		return nil, errors.New("range: 1 to 3 arguments")
	}
	if step == 0 || (stop-start)/step > 100000 {
		return nil, errors.New("range: step 0, or over 100000 items")
	}
	out := []any{}
	for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
		out = append(out, i)
	}
	return out, nil
}
